//! `-` as a path: standard input (`kubectl logs ... | gatelog analyze -`, a ticket's
//! paste, `nginx -T | gatelog analyze --nginx-conf -`). A file is recognised by its
//! first lines and may be read twice (once per side, for a stream that mixes NGINX
//! and PHP-FPM lines), which a pipe cannot do: standard input is first copied to a
//! private temporary file, streamed (memory stays flat), and the file is removed
//! when the run ends.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The name standard input goes by in evidence and the input summary.
pub const NAME: &str = "stdin";

pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Standard input copied to a temporary file; the file goes when this is dropped.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
}

impl Spool {
    pub fn from_stdin() -> io::Result<Spool> {
        let (spool, mut file) = Spool::create()?;
        io::copy(&mut io::stdin().lock(), &mut file)?;
        file.sync_data().ok();
        Ok(spool)
    }

    /// A new empty file only this user can read (logs hold addresses and URIs).
    fn create() -> io::Result<(Spool, File)> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last_err = None;
        for attempt in 0..16u32 {
            let path = std::env::temp_dir().join(format!(
                "gatelog-stdin-{}-{nanos}-{attempt}",
                std::process::id()
            ));
            let mut opts = OpenOptions::new();
            // Readable too: a scratch file is read back through the same handle.
            opts.read(true).write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(&path) {
                Ok(file) => return Ok((Spool { path }, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no temporary file name left")))
    }

    /// A private scratch file that is gone from the directory at once (only the
    /// handle keeps it): nothing is left behind, whatever ends the run.
    pub fn scratch() -> io::Result<File> {
        let (spool, file) = Spool::create()?;
        drop(spool);
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_spool_file_is_private_and_removed() {
        let (spool, mut file) = Spool::create().unwrap();
        file.write_all(b"line\n").unwrap();
        let path = spool.path().to_path_buf();
        assert_eq!(std::fs::read(&path).unwrap(), b"line\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(spool);
        assert!(!path.exists());
        assert!(is_stdin(Path::new("-")));
        assert!(!is_stdin(Path::new("./-x")));
    }
}
