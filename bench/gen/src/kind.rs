//! The kinds of upstream failure the generator writes, one per way NGINX reports a failed
//! attempt to PHP-FPM (and their names in the manifest's ground truth).

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

impl Kind {
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
        }
    }
}
