//! What NGINX saw that is none of the seven causes: the diagnosis is `unknown`, and
//! the reason says what it was.

use super::{Confidence, Diagnosis};
use crate::failure::{FailedAttempt, Failure};
use crate::model::Cause;

pub(super) fn upstream_status(f: &Failure) -> Diagnosis {
    Diagnosis::new(
        Cause::Unknown,
        Confidence::Ambiguous,
        format!(
            "the upstream itself answered {} (NGINX passed its status on): an application status, not a connection failure",
            f.status
        ),
    )
}

pub(super) fn resolve_failed() -> Diagnosis {
    Diagnosis::new(
        Cause::Unknown,
        Confidence::Strong,
        "the upstream's name could not be resolved (DNS), not one of the seven causes",
    )
}

pub(super) fn tls_failed() -> Diagnosis {
    Diagnosis::new(
        Cause::Unknown,
        Confidence::Strong,
        "TLS to the upstream failed, not one of the seven causes",
    )
}

pub(super) fn unrecognised(a: &FailedAttempt) -> Diagnosis {
    Diagnosis::new(
        Cause::Unknown,
        Confidence::Weak,
        format!("unrecognised upstream error: {}", a.message),
    )
}

/// An access-log 502/504 that no context explains.
pub(super) fn access_only(f: &Failure) -> Diagnosis {
    Diagnosis::new(
        Cause::Unknown,
        Confidence::Weak,
        format!(
            "the access log shows {} but no error-log line or record says why (error_log level above error, or the upstream itself answered {})",
            f.status, f.status
        ),
    )
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

    #[test]
    fn unknown_with_a_reason() {
        let ctx = ContextIndex::default();
        for f in [
            failure(
                AttemptEvent::ConnectFailed,
                Phase::Connect,
                Some(99),
                "10.0.0.2:9000",
            ),
            failure(AttemptEvent::UpstreamStatus, Phase::Header, None, SOCK),
            failure(
                AttemptEvent::ResolveFailed,
                Phase::Resolve,
                None,
                "php.internal:9000",
            ),
            failure(AttemptEvent::NoLiveUpstreams, Phase::Connect, None, "php"),
        ] {
            let v = classify(&f, &ctx);
            assert_eq!(v.cause, Cause::Unknown, "{:?}", f.attempts[0].event);
            assert!(!v.reason.is_empty());
        }
    }
}
