//! Linux errno numbers to their symbolic names (`2` -> `ENOENT`).

use nix::errno::Errno;

/// The symbolic name of a Linux errno, or `None` for a number the C library does
/// not know (NGINX prints whatever the kernel returned, so unknown numbers happen).
pub fn errno_name(errno: i32) -> Option<String> {
    let e = Errno::from_raw(errno);
    if e == Errno::UnknownErrno {
        return None;
    }
    // nix's Errno is a fieldless enum whose variant names are the C names.
    Some(format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_upstream_errnos() {
        assert_eq!(errno_name(2).as_deref(), Some("ENOENT"));
        assert_eq!(errno_name(11).as_deref(), Some("EAGAIN"));
        assert_eq!(errno_name(13).as_deref(), Some("EACCES"));
        assert_eq!(errno_name(32).as_deref(), Some("EPIPE"));
        assert_eq!(errno_name(104).as_deref(), Some("ECONNRESET"));
        assert_eq!(errno_name(110).as_deref(), Some("ETIMEDOUT"));
        assert_eq!(errno_name(111).as_deref(), Some("ECONNREFUSED"));
        assert_eq!(errno_name(113).as_deref(), Some("EHOSTUNREACH"));
    }

    #[test]
    fn unknown_numbers_have_no_name() {
        assert_eq!(errno_name(0), None);
        assert_eq!(errno_name(99_999), None);
        assert_eq!(errno_name(-1), None);
    }
}
