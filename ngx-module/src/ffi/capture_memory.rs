//! Where a request's capture lives: word blocks from the worker's [`BlockPool`],
//! chained and bump-allocated, given back by a cleanup of the request's pool.
//!
//! The request's pool holds only that cleanup's 24-byte node. Kept in the pool, the
//! capture (its header and a copied line, ~450 bytes in a 502 storm) made NGINX take
//! another pool block, a malloc and a free, for most failing requests (measured with
//! callgrind on NGINX 1.22's default `request_pool_size`).

use core::ffi::c_void;
use core::ptr;
use std::cell::RefCell;

use super::guard;
use crate::capture::{Arena, BlockPool, Capture, BLOCK_WORDS};

thread_local! {
    /// This worker's free blocks (NGINX runs a worker's requests on one thread).
    static BLOCKS: RefCell<BlockPool> = const { RefCell::new(BlockPool::new()) };
}

/// The first words of every block: the chain of one capture's blocks.
#[repr(C)]
struct Link {
    next: *mut Link,
    words: usize,
}

const LINK_WORDS: usize = size_of::<Link>().div_ceil(8);

/// One capture's memory: the chain of its blocks and the free room in the newest.
pub struct CaptureMemory {
    blocks: *mut Link,
    at: *mut u8,
    end: *mut u8,
}

/// A request's capture and the memory its lines live in, at the start of its first
/// block.
pub struct CaptureHome {
    pub capture: Capture,
    pub memory: CaptureMemory,
}

// Blocks are u64 words: enough alignment for the link and the home.
const _: () = assert!(core::mem::align_of::<CaptureHome>() <= 8);
const _: () = assert!(LINK_WORDS * 8 + size_of::<CaptureHome>() <= BLOCK_WORDS * 8);

/// A block of at least `words` words from this worker's pool, with its link written;
/// `None` when out of memory.
fn take_block(words: usize) -> Option<*mut Link> {
    let block = match BLOCKS.try_with(|b| b.try_borrow_mut().ok().map(|mut b| b.take(words))) {
        Ok(Some(taken)) => taken?,
        // The worker's pool is not reachable (thread teardown): a block of its own.
        _ => BlockPool::new().take(words)?,
    };
    let len = block.len();
    let link = Box::into_raw(block).cast::<u64>().cast::<Link>();
    // SAFETY: the block has at least LINK_WORDS words (every block does: BLOCK_WORDS or
    // more), aligned for a Link; it is ours until `give_back`.
    unsafe {
        link.write(Link {
            next: ptr::null_mut(),
            words: len,
        })
    };
    Some(link)
}

/// Returns a block `take_block` made.
///
/// # Safety
/// `link` came from `take_block` and nothing uses the block any more.
unsafe fn give_back(link: *mut Link) {
    // SAFETY: the block is `words` u64s that Box::into_raw gave up (take_block).
    let block = unsafe {
        let words = (*link).words;
        Box::from_raw(ptr::slice_from_raw_parts_mut(link.cast::<u64>(), words))
    };
    let mut block = Some(block);
    let _ = BLOCKS.try_with(|b| {
        if let (Ok(mut b), Some(block)) = (b.try_borrow_mut(), block.take()) {
            b.give(block);
        }
    });
    // Freed here when the worker's pool could not take it.
    drop(block);
}

impl CaptureMemory {
    /// Adds a block for at least `bytes` bytes and makes it the current one; false
    /// when out of memory (the current block stays).
    fn grow(&mut self, bytes: usize) -> bool {
        let words = (LINK_WORDS + bytes.div_ceil(8)).max(BLOCK_WORDS);
        let Some(link) = take_block(words) else {
            return false;
        };
        // SAFETY: `link` is a fresh block of its `words` words (take_block).
        unsafe {
            (*link).next = self.blocks;
            self.blocks = link;
            let base = link.cast::<u64>();
            self.at = base.add(LINK_WORDS).cast();
            self.end = base.add((*link).words).cast();
        }
        true
    }
}

impl Arena for CaptureMemory {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let size = size.next_multiple_of(8);
        if (self.end as usize) - (self.at as usize) < size && !self.grow(size) {
            return ptr::null_mut();
        }
        let p = self.at;
        // SAFETY: `size` bytes fit between `at` and `end` of the current block (checked,
        // or a block of at least that room was just made).
        self.at = unsafe { self.at.add(size) };
        p
    }
}

/// A new capture in a block of its own, NULL when out of memory (the request then
/// goes without one, as with any other allocation NGINX refuses). Release it with
/// [`release_capture`].
pub fn new_capture() -> *mut CaptureHome {
    let mut memory = CaptureMemory {
        blocks: ptr::null_mut(),
        at: ptr::null_mut(),
        end: ptr::null_mut(),
    };
    if !memory.grow(size_of::<CaptureHome>()) {
        return ptr::null_mut();
    }
    let home = memory.alloc(size_of::<CaptureHome>()).cast::<CaptureHome>();
    // SAFETY: `home` is word-aligned room for a CaptureHome in the block just made.
    unsafe {
        home.write(CaptureHome {
            capture: Capture::new(),
            memory,
        })
    };
    home
}

/// The pool cleanup of a request's capture: its blocks go back to the worker.
///
/// # Safety
/// A pool cleanup whose data is a `new_capture` result, run once, when nothing reads
/// the capture any more (the request's pool is being destroyed).
pub unsafe extern "C" fn release_capture(data: *mut c_void) {
    guard((), || {
        let home = data.cast::<CaptureHome>();
        if home.is_null() {
            return;
        }
        // SAFETY: `home` is a live capture (caller); its chain holds blocks of this
        // worker only, each given back once. The home itself is in the first block,
        // read before any block is given back.
        unsafe {
            let mut link = (*home).memory.blocks;
            while !link.is_null() {
                let next = (*link).next;
                give_back(link);
                link = next;
            }
        }
    })
}
