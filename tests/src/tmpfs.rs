//! A small tmpfs that a test can fill: a real full disk (ENOSPC, short writes at the
//! page boundary) without touching any disk the machine uses.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A mounted tmpfs, lazily unmounted on drop (also when a test fails).
#[derive(Debug)]
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes (mode 0755) on the existing directory `path`.
    /// `Err` is why it cannot be done here (the test then reports itself ignored).
    pub fn mount(path: &Path, size: u64) -> Result<Tmpfs, String> {
        let c = |s: &str| std::ffi::CString::new(s).map_err(|e| e.to_string());
        let target = c(&path.display().to_string())?;
        let fstype = c("tmpfs")?;
        let opts = c(&format!("size={size},mode=0755"))?;
        // SAFETY: NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                fstype.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                opts.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(format!(
                "mount -t tmpfs -o size={size} on {} was refused: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes still free.
    pub fn free(&self) -> Result<u64, String> {
        let p =
            std::ffi::CString::new(self.path.display().to_string()).map_err(|e| e.to_string())?;
        // SAFETY: statvfs into a zeroed struct owned here.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(p.as_ptr(), &mut st) } != 0 {
            return Err(format!(
                "statvfs {}: {}",
                self.path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(st.f_bavail as u64 * st.f_frsize as u64)
    }

    /// Writes `name` until only `leave` bytes are free (or the disk is full).
    pub fn fill(&self, name: &str, leave: u64) -> Result<(), String> {
        let path = self.path.join(name);
        let mut f = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let chunk = vec![b'x'; 4096];
        while self.free()? > leave {
            let n = (self.free()? - leave).min(chunk.len() as u64) as usize;
            match f.write(&chunk[..n]) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(format!("filling {}: {e}", path.display())),
            }
        }
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Ok(p) = std::ffi::CString::new(self.path.display().to_string()) {
            // SAFETY: a NUL-terminated path; MNT_DETACH also succeeds while NGINX (killed
            // just before) may still hold a descriptor.
            unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
