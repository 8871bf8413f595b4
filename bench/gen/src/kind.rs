//! The kinds of upstream failure the generator writes, one per way NGINX reports a failed
//! attempt to PHP-FPM, plus failures of another backend (an HTTP app behind `proxy_pass`),
//! and their names in the manifest's ground truth.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// connect() to unix:... failed (2: No such file or directory): FPM stopped.
    Enoent,
    /// same text, a socket path FPM does not listen on (php8.1 left in a vhost).
    WrongPath,
    /// connect() ... failed (13: Permission denied).
    Eacces,
    /// connect() ... failed (111: Connection refused): master dead, socket left / TCP pool down.
    Econnrefused,
    /// connect() ... failed (11: Resource temporarily unavailable): backlog full.
    Eagain,
    /// upstream timed out (110) while reading response header / connecting (TCP).
    Timeout,
    /// recv() failed (104: Connection reset by peer): child killed (OOM).
    Reset,
    /// upstream prematurely closed connection: child crashed (segfault) or killed.
    Closed,
    /// A failure of the HTTP app behind `proxy_pass` (refused, timed out, reset, closed):
    /// not PHP-FPM, so none of the seven FPM causes. Only in the incident input.
    OtherBackend,
}

pub(crate) const KINDS: [Kind; 8] = [
    Kind::Enoent,
    Kind::WrongPath,
    Kind::Eacces,
    Kind::Econnrefused,
    Kind::Eagain,
    Kind::Timeout,
    Kind::Reset,
    Kind::Closed,
];

/// Every kind: the FPM kinds in `KINDS` order (their index in the manifest's counters), then
/// the other backend's.
pub(crate) const ALL_KINDS: [Kind; 9] = [
    Kind::Enoent,
    Kind::WrongPath,
    Kind::Eacces,
    Kind::Econnrefused,
    Kind::Eagain,
    Kind::Timeout,
    Kind::Reset,
    Kind::Closed,
    Kind::OtherBackend,
];

impl Kind {
    /// Index in `ALL_KINDS` (and in the failure counters).
    pub(crate) fn index(self) -> usize {
        ALL_KINDS.iter().position(|k| *k == self).unwrap_or(0)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Enoent => "connect_enoent_fpm_down",
            Kind::WrongPath => "connect_enoent_wrong_path",
            Kind::Eacces => "connect_eacces",
            Kind::Econnrefused => "connect_econnrefused",
            Kind::Eagain => "connect_eagain",
            Kind::Timeout => "upstream_timed_out",
            Kind::Reset => "recv_reset_104",
            Kind::Closed => "prematurely_closed",
            Kind::OtherBackend => "other_backend",
        }
    }
}
