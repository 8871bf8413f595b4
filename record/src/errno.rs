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

/// [`errno_name`] without an allocation, from a table of the Linux numbers (the module
/// names an errno in every record of a failure storm). `None` where [`errno_name`] is.
pub fn errno_name_str(errno: i32) -> Option<&'static str> {
    let name = *NAMES.get(usize::try_from(errno).ok()?)?;
    (!name.is_empty()).then_some(name)
}

/// Linux's errno names by number (include/uapi/asm-generic/errno-base.h and errno.h),
/// as nix names them; "" for numbers Linux does not use. Checked against nix below.
#[rustfmt::skip]
const NAMES: [&str; 134] = [
    "", "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO",
    "ENXIO", "E2BIG", "ENOEXEC", "EBADF", "ECHILD", "EAGAIN",
    "ENOMEM", "EACCES", "EFAULT", "ENOTBLK", "EBUSY", "EEXIST",
    "EXDEV", "ENODEV", "ENOTDIR", "EISDIR", "EINVAL", "ENFILE",
    "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC", "ESPIPE",
    "EROFS", "EMLINK", "EPIPE", "EDOM", "ERANGE", "EDEADLK",
    "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP", "",
    "ENOMSG", "EIDRM", "ECHRNG", "EL2NSYNC", "EL3HLT", "EL3RST",
    "ELNRNG", "EUNATCH", "ENOCSI", "EL2HLT", "EBADE", "EBADR",
    "EXFULL", "ENOANO", "EBADRQC", "EBADSLT", "", "EBFONT",
    "ENOSTR", "ENODATA", "ETIME", "ENOSR", "ENONET", "ENOPKG",
    "EREMOTE", "ENOLINK", "EADV", "ESRMNT", "ECOMM", "EPROTO",
    "EMULTIHOP", "EDOTDOT", "EBADMSG", "EOVERFLOW", "ENOTUNIQ", "EBADFD",
    "EREMCHG", "ELIBACC", "ELIBBAD", "ELIBSCN", "ELIBMAX", "ELIBEXEC",
    "EILSEQ", "ERESTART", "ESTRPIPE", "EUSERS", "ENOTSOCK", "EDESTADDRREQ",
    "EMSGSIZE", "EPROTOTYPE", "ENOPROTOOPT", "EPROTONOSUPPORT", "ESOCKTNOSUPPORT", "EOPNOTSUPP",
    "EPFNOSUPPORT", "EAFNOSUPPORT", "EADDRINUSE", "EADDRNOTAVAIL", "ENETDOWN", "ENETUNREACH",
    "ENETRESET", "ECONNABORTED", "ECONNRESET", "ENOBUFS", "EISCONN", "ENOTCONN",
    "ESHUTDOWN", "ETOOMANYREFS", "ETIMEDOUT", "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH",
    "EALREADY", "EINPROGRESS", "ESTALE", "EUCLEAN", "ENOTNAM", "ENAVAIL",
    "EISNAM", "EREMOTEIO", "EDQUOT", "ENOMEDIUM", "EMEDIUMTYPE", "ECANCELED",
    "ENOKEY", "EKEYEXPIRED", "EKEYREVOKED", "EKEYREJECTED", "EOWNERDEAD", "ENOTRECOVERABLE",
    "ERFKILL", "EHWPOISON",
];

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
    fn the_table_names_what_nix_names() {
        for e in -5..400 {
            assert_eq!(
                errno_name_str(e).map(str::to_owned),
                errno_name(e),
                "errno {e}"
            );
        }
    }

    #[test]
    fn unknown_numbers_have_no_name() {
        assert_eq!(errno_name(0), None);
        assert_eq!(errno_name(99_999), None);
        assert_eq!(errno_name(-1), None);
    }
}
