//! EACCES on connect: the NGINX worker user may not open FPM's socket.

use super::{Confidence, Diagnosis};
use crate::context::ContextIndex;
use crate::model::{Cause, Peer};
use crate::parse::fpm::FpmEvent;

pub(super) fn permission_denied(peer: Option<&Peer>, ctx: &ContextIndex) -> Diagnosis {
    // A TCP connect has no socket file: EACCES there comes from a security policy
    // (SELinux's httpd_can_network_connect, a firewall's output rule), never from
    // listen.owner/group/mode.
    if let Some(p) = peer.filter(|p| !p.is_unix()) {
        let mut v = Diagnosis::new(
            Cause::SocketPermissionDenied,
            Confidence::Likely,
            format!("connect() to {p} got EACCES: a TCP connection has no file permissions, so a security policy denied NGINX's connection to FPM (SELinux, or a firewall's output rule)"),
        );
        v.facts.policy_denied = true;
        return v;
    }
    let mut v = Diagnosis::new(
        Cause::SocketPermissionDenied,
        Confidence::Certain,
        "connect() got EACCES: the NGINX worker user may not open the FPM socket (listen.owner/listen.group/listen.mode)",
    );
    if let Some(pool) = peer.and_then(|p| ctx.pool_for_peer(p)) {
        for key in [
            "listen.owner",
            "listen.group",
            "listen.mode",
            "listen.acl_users",
        ] {
            if let Some(e) = pool.evidence(key) {
                v = v.with(&e);
            }
        }
    }
    for e in ctx.fpm_errors().filter(|e| {
        matches!(
            e.event,
            FpmEvent::ChownFailed { .. } | FpmEvent::UserError { .. }
        )
    }) {
        v = v.with(&e.evidence);
    }
    v
}
