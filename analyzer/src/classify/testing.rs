//! Shared test helpers: failures and contexts as the parsers would build them, so
//! each cause file's tests state only what differs.

pub(crate) use std::sync::Arc;

pub(crate) use super::{Classifier, Confidence, Diagnosis};
pub(crate) use crate::context::{ContextIndex, PoolConf, Timed};
pub(crate) use crate::failure::{FailedAttempt, Failure, SeenIn};
pub(crate) use crate::join::History;
pub(crate) use crate::model::{
    AttemptEvent, Cause, Evidence, EvidenceSource, Peer, Phase, Protocol,
};
pub(crate) use crate::parse::fpm::FpmEvent;
pub(crate) use crate::parse::fpm_conf::FpmConfParser;
pub(crate) use crate::parse::journal::{UnitEvent, UnitMessage};
pub(crate) use crate::parse::kernel::KernelEvent;
pub(crate) use crate::time::EpochMs;

pub(crate) const T: i64 = 1_775_139_797_000;
pub(crate) const SOCK: &str = "unix:/run/php/php8.2-fpm.sock";

pub(crate) fn ev(source: EvidenceSource, text: &str) -> Evidence {
    Evidence::new(source, &Arc::from("test.log"), 1, text)
}

pub(crate) fn failure(
    event: AttemptEvent,
    phase: Phase,
    errno: Option<i32>,
    peer: &str,
) -> Failure {
    Failure {
        time: EpochMs(T),
        time_known: true,
        pid: Some(1234),
        conn: Some(5678),
        request_id: None,
        status: if event == AttemptEvent::TimedOut {
            504
        } else {
            502
        },
        status_inferred: true,
        peer: Some(Peer(peer.into())),
        upstream: None,
        protocol: Protocol::Fastcgi,
        request: Some("GET /report.php?id=7 HTTP/1.1".into()),
        client: None,
        server: None,
        host: None,
        attempts: vec![FailedAttempt {
            event,
            phase: Some(phase),
            errno,
            peer: Some(Peer(peer.into())),
            message: "test".into(),
        }],
        stderr: None,
        request_time_ms: None,
        read_timeout_ms: Some(30_000),
        seen_in: SeenIn::default(),
        evidence: vec![ev(EvidenceSource::Nginx, "line")],
    }
}

pub(crate) fn fpm(ctx: &mut ContextIndex, offset_ms: i64, event: FpmEvent) {
    ctx.has_fpm_log = true;
    ctx.fpm.push(Timed {
        at: Some(EpochMs(T + offset_ms)),
        boot_secs: None,
        evidence: ev(EvidenceSource::Fpm, &format!("{event:?}")),
        event,
    });
    ctx.finish();
}

pub(crate) fn kernel(ctx: &mut ContextIndex, offset_ms: i64, event: KernelEvent) {
    ctx.has_kernel_log = true;
    let at = EpochMs(T + offset_ms);
    ctx.kernel_span = Some((at, at));
    ctx.kernel.push(Timed {
        at: Some(at),
        boot_secs: None,
        evidence: ev(EvidenceSource::Kernel, &format!("{event:?}")),
        event,
    });
    ctx.finish();
}

pub(crate) fn pool(ctx: &mut ContextIndex, text: &str) {
    let mut p = FpmConfParser::new(Arc::from("www.conf"));
    for (i, l) in text.lines().enumerate() {
        p.feed(l, i as u64 + 1);
    }
    for pool in p.finish() {
        ctx.pools.push(PoolConf {
            file: Arc::from("www.conf"),
            pool,
        });
    }
    ctx.finish_configs();
}

pub(crate) fn exit(
    pid: u32,
    signal: Option<u32>,
    name: Option<&str>,
    code: Option<i32>,
) -> FpmEvent {
    FpmEvent::ChildExited {
        pool: "www".into(),
        pid,
        signal,
        signal_name: name.map(String::from),
        code,
        core_dumped: false,
    }
}

/// A context that has an FPM log with nothing relevant in it.
pub(crate) fn fpm_log_only() -> ContextIndex {
    let mut ctx = ContextIndex::default();
    fpm(&mut ctx, -3_600_000, FpmEvent::Ready);
    ctx
}

pub(crate) fn classify(f: &Failure, ctx: &ContextIndex) -> Diagnosis {
    Classifier::default().classify(f, ctx, &History::default())
}

/// The same failure as NGINX saw it on an upstream of `protocol`.
pub(crate) fn over(protocol: Protocol, mut f: Failure) -> Failure {
    f.protocol = protocol;
    f
}

/// The fix text for a diagnosis, with no memory figures given.
pub(crate) fn fix_text(v: &Diagnosis, f: &Failure, ctx: &ContextIndex) -> String {
    crate::fix::fix_for(v, f, ctx, Default::default())
}

/// An NGINX config read into the context as `file`.
pub(crate) fn nginx_conf(ctx: &mut ContextIndex, file: &str, text: &str) {
    use crate::parse::nginx_conf::{FileParser, NginxConf};
    let mut conf = NginxConf::default();
    let mut p = FileParser::new(Arc::from(file), Vec::new(), 0);
    for (i, l) in text.lines().enumerate() {
        p.feed(&mut conf, l, i as u64 + 1);
    }
    conf.resolve();
    ctx.nginx.push(conf);
}
