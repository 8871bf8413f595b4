//! A unique, world-traversable temporary directory per test.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::env::KEEP_ENV;

static COUNTER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static DEFERRED: RefCell<Option<Vec<PathBuf>>> = const { RefCell::new(None) };
}

/// From now on, prefixes dropped on this thread are not removed but collected; the
/// test runner removes them with [`finish_deferred`] when the test passed and keeps
/// them (for inspection) when it failed.
pub fn defer_removal() {
    DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
}

/// Ends [`defer_removal`]: removes the collected prefixes when `remove` (and
/// GATELOG_E2E_KEEP is not set); returns their paths.
pub fn finish_deferred(remove: bool) -> Vec<PathBuf> {
    let list = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
    if remove && !keep_env() {
        for p in &list {
            let _ = fs::remove_dir_all(p);
        }
    }
    list
}

/// 32 random bits from the kernel (the time, should getrandom(2) fail).
fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom(2) writes at most 4 bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 4 {
        u32::from_ne_bytes(b)
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    }
}

fn keep_env() -> bool {
    std::env::var(KEEP_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `/tmp/gatelog-e2e-<pid>-<random>-<n>-<label>` with `logs/ run/ www/ tmp/ conf/` inside, all
/// mode 0755 so NGINX and PHP-FPM workers running as www-data reach sockets and
/// scripts. Removed on drop unless [`Prefix::keep`] was called, the thread is
/// panicking, `GATELOG_E2E_KEEP` is set, or removal is deferred to the test runner
/// ([`defer_removal`]).
#[derive(Debug)]
pub struct Prefix {
    root: PathBuf,
    keep: AtomicBool,
}

impl Prefix {
    /// Creates a fresh prefix. `label` becomes part of the name (sanitised, short).
    pub fn new(label: &str) -> Result<Prefix, String> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let mut clean: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        // Unix socket paths are limited to 107 bytes: keep the prefix short.
        clean.truncate(24);
        // The pid alone is not unique: test runs in other PID namespaces share /tmp
        // and may have the same pid. A random token makes the name unique, and the
        // directory is created exclusively: an existing one is never reused or removed.
        let root = loop {
            let root = PathBuf::from(format!(
                "/tmp/gatelog-e2e-{}-{:08x}-{}-{}",
                std::process::id(),
                random_u32(),
                n,
                clean
            ));
            match fs::create_dir(&root) {
                Ok(()) => break root,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("mkdir {}: {e}", root.display())),
            }
        };
        let p = Prefix {
            root,
            keep: AtomicBool::new(false),
        };
        for d in ["", "logs", "run", "www", "tmp", "conf", "out"] {
            p.mkdir(d)?;
        }
        Ok(p)
    }

    fn mkdir(&self, rel: &str) -> Result<PathBuf, String> {
        let d = self.root.join(rel);
        fs::create_dir_all(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", d.display()))?;
        Ok(d)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the prefix.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `content` to `rel` with the given mode.
    pub fn write(&self, rel: &str, content: &str, mode: u32) -> Result<PathBuf, String> {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
        }
        fs::write(&p, content).map_err(|e| format!("writing {}: {e}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", p.display()))?;
        Ok(p)
    }

    /// Keeps the directory after the test (for a failing test).
    pub fn keep(&self) {
        self.keep.store(true, Ordering::SeqCst);
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let keep = self.keep.load(Ordering::SeqCst) || std::thread::panicking() || keep_env();
        let deferred = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
            Some(list) => {
                list.push(self.root.clone());
                true
            }
            None => false,
        });
        if !keep && !deferred {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}
