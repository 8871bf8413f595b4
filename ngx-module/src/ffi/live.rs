//! The live objects of one kind in this process (record files, syslog destinations), for the
//! report each makes at exit. An intrusive list through the objects themselves (which
//! live in configuration pools): a heap-allocated registry in a static would outlive
//! the module's unloading at exit and show up as a leak.

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

/// An object that can be on a [`Live`] list.
pub trait Linked {
    /// The link to the next object (NULL at the end).
    fn next_live(&mut self) -> &mut *mut Self;
}

pub struct Live<T> {
    head: AtomicPtr<T>,
}

impl<T: Linked> Live<T> {
    pub const fn new() -> Live<T> {
        Live {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Adds `p` (at its final address).
    ///
    /// # Safety
    /// `p` is valid until [`Live::remove`] is called for it; NGINX's event loop is the
    /// only thread using the list.
    pub unsafe fn push(&self, p: *mut T) {
        // SAFETY: the caller guarantees `p`.
        unsafe { *(*p).next_live() = self.head.load(Ordering::Relaxed) };
        self.head.store(p, Ordering::Relaxed);
    }

    /// Removes `p` if it is on the list.
    ///
    /// # Safety
    /// Every object on the list is valid.
    pub unsafe fn remove(&self, p: *mut T) {
        let mut link: *mut *mut T = self.head.as_ptr();
        // SAFETY: `link` points to the head or to the link of a valid object.
        unsafe {
            while !(*link).is_null() {
                if *link == p {
                    *link = *(*p).next_live();
                    return;
                }
                link = (**link).next_live();
            }
        }
    }

    /// Calls `f` for each object.
    ///
    /// # Safety
    /// Every object on the list is valid; `f` does not remove objects.
    pub unsafe fn each(&self, mut f: impl FnMut(&mut T)) {
        let mut p = self.head.load(Ordering::Relaxed);
        while !p.is_null() {
            // SAFETY: objects on the list are valid (caller).
            unsafe {
                let next = *(*p).next_live();
                f(&mut *p);
                p = next;
            }
        }
    }
}
