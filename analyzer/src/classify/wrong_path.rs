//! ENOENT or ECONNREFUSED on connect: nothing is there. Either FPM is down (cause 1)
//! or it is up and listens elsewhere (cause 3, a wrong address in the NGINX config);
//! this file weighs which, from FPM's state, its pools' `listen` (every NGINX target
//! is compared with every pool), the PHP versions the inputs show, and the stream.

use super::not_running::{self, fpm_error_evidence, start_error_before};
use super::{Confidence, Diagnosis};
use crate::context::{ContextIndex, FpmState, Listen};
use crate::failure::Failure;
use crate::join::History;
use crate::model::{Cause, Evidence, EvidenceSource, Peer};
use crate::time::EpochMs;
use crate::windows::OTHER_PEER_ALIVE_MS;

/// ECONNREFUSED: nothing listens on the peer. When the pool configs say FPM listens
/// elsewhere (no pool on the peer) and FPM runs, NGINX points at the wrong address
/// (cause 3); otherwise FPM is not running there, or a killed master left its socket
/// behind (cause 1). Not from the stream alone: logs of several FPMs (hosts, runs)
/// show FPM answering elsewhere without saying that it was this one.
pub(super) fn refused(
    f: &Failure,
    peer: Option<&Peer>,
    ctx: &ContextIndex,
    hist: &History,
) -> Diagnosis {
    let stopped = || not_running::refused(f, peer, ctx, hist);
    let Some(p) = peer else {
        return stopped();
    };
    let listens = ctx.listens();
    if listens.iter().any(|Listen { address: l, .. }| p.reaches(l)) {
        return stopped();
    }
    let elsewhere = listens.first();
    let v = match (ctx.fpm_state_at(f.time), elsewhere) {
        (
            FpmState::Down(_),
            Some(Listen {
                address: l,
                evidence: lev,
                ..
            }),
        ) => {
            let mut v = stopped();
            if v.cause == Cause::FpmNotRunning {
                v.reason
                    .push_str(&format!("; note: FPM's config listens on {l}, not {p}"));
                v = v.with(lev);
            }
            return v;
        }
        (
            FpmState::Up(ev),
            Some(Listen {
                address: l,
                evidence: lev,
                ..
            }),
        ) => {
            let mut v = Diagnosis::new(
                Cause::WrongSocketPath,
                Confidence::Certain,
                format!("PHP-FPM was running and listens on {l}, but NGINX connects to {p}, where nothing listens (connection refused)"),
            )
            .with(lev)
            .with(&ev);
            v.facts.fpm_listen = Some(l.clone());
            v
        }
        (
            FpmState::Unknown,
            Some(Listen {
                address: l,
                evidence: lev,
                ..
            }),
        ) => {
            let mut v = Diagnosis::new(
                Cause::WrongSocketPath,
                Confidence::Strong,
                format!("FPM's pool config listens on {l}, but NGINX connects to {p}, where nothing listens (connection refused; no FPM log to confirm FPM was up)"),
            )
            .with(lev);
            v.facts.fpm_listen = Some(l.clone());
            v
        }
        _ => return stopped(),
    };
    with_config_lines(v, p, ctx)
}

/// The NGINX config lines that write `peer` (the lines to change), as evidence.
fn with_config_lines(mut v: Diagnosis, peer: &Peer, ctx: &ContextIndex) -> Diagnosis {
    for d in ctx.nginx_lines_for(peer) {
        v = v.with(&Evidence::new(
            EvidenceSource::NginxConf,
            &d.file,
            d.line,
            &d.text(),
        ));
    }
    v
}

/// A peer named for a PHP version no input shows an FPM for (`php7.2-fpm.sock`
/// while the pool, the FPM log's name or the journal's unit say 7.0).
fn version_mismatch(
    peer: Option<&Peer>,
    ctx: &ContextIndex,
    confidence: Confidence,
) -> Option<Diagnosis> {
    let p = peer?;
    let (wanted, seen) = ctx.php_version_mismatch(p)?;
    let shown: Vec<String> = seen
        .iter()
        .map(|s| format!("PHP {} ({})", s.version, s.seen_in))
        .collect();
    let mut v = Diagnosis::new(
        Cause::WrongSocketPath,
        confidence,
        format!(
            "NGINX connects to {p}, a socket named for PHP {wanted}, but the inputs show PHP-FPM only for {}",
            shown.join("; ")
        ),
    );
    // The pool of the version that is there, when its config says where it listens.
    let there = ctx.listens().into_iter().find(|Listen { address: l, .. }| {
        l.unix_path()
            .and_then(crate::context::php_version_in)
            .is_some_and(|v| v != wanted)
    });
    if let Some(Listen {
        address: l,
        evidence: lev,
        ..
    }) = there
    {
        v.facts.fpm_listen = Some(l);
        v = v.with(&lev);
    }
    Some(v)
}

/// ENOENT: FPM down (cause 1) or FPM up elsewhere (cause 3).
pub(super) fn no_such_socket(
    f: &Failure,
    peer: Option<&Peer>,
    ctx: &ContextIndex,
    hist: &History,
) -> Diagnosis {
    let t = f.time;
    let listens = ctx.listens();
    let m = MissingSocket {
        peer,
        peer_name: peer.map_or("the socket".to_string(), |p| p.0.to_string()),
        served_here: peer
            .is_some_and(|p| listens.iter().any(|Listen { address: l, .. }| p.reaches(l))),
        elsewhere: listens
            .iter()
            .find(|Listen { address: l, .. }| peer.is_none_or_not_reaching(l)),
    };
    let mut v = match ctx.fpm_state_at(t) {
        FpmState::Down(ev) => m.fpm_down(ev),
        FpmState::Up(ev) => m.fpm_up(ev, ctx),
        FpmState::Unknown => m.fpm_state_unknown(t, ctx, hist),
    };
    v.facts.start_error = start_error_before(ctx, t);
    if v.cause == Cause::FpmNotRunning {
        if let Some(e) = fpm_error_evidence(ctx, t) {
            v = v.with(&e);
        }
    }
    match (v.cause, peer) {
        (Cause::WrongSocketPath, Some(p)) => with_config_lines(v, p, ctx),
        _ => v,
    }
}

/// A socket that does not exist, and what the pool configs say about it.
struct MissingSocket<'a> {
    peer: Option<&'a Peer>,
    peer_name: String,
    /// A pool config listens on the peer.
    served_here: bool,
    /// A pool config that listens somewhere else.
    elsewhere: Option<&'a Listen<'a>>,
}

impl MissingSocket<'_> {
    /// FPM's last lifecycle line says it was stopped.
    fn fpm_down(&self, ev: Evidence) -> Diagnosis {
        let MissingSocket {
            peer_name,
            served_here,
            elsewhere,
            ..
        } = self;
        let served_here = *served_here;
        let mut v = Diagnosis::new(
            Cause::FpmNotRunning,
            Confidence::Certain,
            format!("{peer_name} does not exist and PHP-FPM was stopped at that time (last lifecycle line says so)"),
        )
        .with(&ev);
        if let Some(Listen {
            address: l,
            evidence: lev,
            ..
        }) = elsewhere.filter(|_| !served_here)
        {
            v.reason.push_str(&format!(
                "; note: FPM's config listens on {l}, not {peer_name}"
            ));
            v = v.with(lev);
        }
        v
    }

    /// FPM's log shows it running.
    fn fpm_up(&self, ev: Evidence, ctx: &ContextIndex) -> Diagnosis {
        let MissingSocket {
            peer,
            peer_name,
            served_here,
            elsewhere,
        } = self;
        let peer = *peer;
        match (*served_here, *elsewhere) {
            (false, Some(Listen { address: l, evidence: lev, .. })) => {
                let mut v = Diagnosis::new(
                    Cause::WrongSocketPath,
                    Confidence::Certain,
                    format!("PHP-FPM was running and listens on {l}, but NGINX connects to {peer_name}"),
                )
                .with(lev)
                .with(&ev);
                v.facts.fpm_listen = Some(l.clone());
                v
            }
            (true, _) => Diagnosis::new(
                Cause::FpmNotRunning,
                Confidence::Ambiguous,
                format!("{peer_name} is FPM's configured listen address but the socket file was missing although the FPM log shows it running: FPM (or its socket) went away without a log line"),
            )
            .with(&ev),
            (false, None) => match version_mismatch(peer, ctx, Confidence::Strong) {
                Some(v) => v.with(&ev),
                None => Diagnosis::new(
                    Cause::WrongSocketPath,
                    Confidence::Likely,
                    format!("PHP-FPM was running (per its log) but {peer_name} does not exist: FPM listens somewhere else (give the pool config to see where)"),
                )
                .with(&ev),
            },
        }
    }

    /// No FPM log: the pool configs, then NGINX's own history, decide.
    fn fpm_state_unknown(&self, t: EpochMs, ctx: &ContextIndex, hist: &History) -> Diagnosis {
        let MissingSocket {
            peer,
            peer_name,
            served_here,
            elsewhere,
        } = self;
        let (peer, served_here) = (*peer, *served_here);
        if let (
            false,
            Some(Listen {
                address: l,
                evidence: lev,
                ..
            }),
        ) = (served_here, *elsewhere)
        {
            let mut v = Diagnosis::new(
                Cause::WrongSocketPath,
                Confidence::Strong,
                format!("FPM's pool config listens on {l}, but NGINX connects to {peer_name} (no FPM log to confirm FPM was up)"),
            )
            .with(lev);
            v.facts.fpm_listen = Some(l.clone());
            v
        } else if served_here {
            Diagnosis::new(
                Cause::FpmNotRunning,
                Confidence::Likely,
                format!("{peer_name} is FPM's configured listen address and does not exist: FPM is not running (no FPM log to confirm)"),
            )
        } else if let Some(p) = peer.filter(|p| hist.alive.contains_key(*p)) {
            Diagnosis::new(
                Cause::FpmNotRunning,
                Confidence::Likely,
                format!("NGINX reached FPM at {p} earlier and now the socket is gone: FPM stopped (from the NGINX log alone)"),
            )
        } else if let Some(v) = version_mismatch(peer, ctx, Confidence::Likely) {
            v
        } else if let Some(other) =
            peer.and_then(|p| hist.other_peer_alive(p, t, OTHER_PEER_ALIVE_MS))
        {
            let mut v = Diagnosis::new(
                Cause::WrongSocketPath,
                Confidence::Likely,
                format!("FPM answered at {other} around the same time, while {peer_name} does not exist (from the NGINX log alone)"),
            );
            v.facts.fpm_listen = Some(other.clone());
            v
        } else {
            let mut v = Diagnosis::new(
                Cause::FpmNotRunning,
                Confidence::Ambiguous,
                format!("{peer_name} does not exist: FPM is not running, or NGINX points at a wrong path; give the FPM log or pool config to tell them apart"),
            );
            v.facts.also_possible = Some(Cause::WrongSocketPath);
            v
        }
    }
}

trait NotReaching {
    fn is_none_or_not_reaching(&self, listen: &Peer) -> bool;
}

impl NotReaching for Option<&Peer> {
    fn is_none_or_not_reaching(&self, listen: &Peer) -> bool {
        self.map_or(true, |p| !p.reaches(listen))
    }
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

    #[test]
    fn enoent_with_fpm_stopped_is_fpm_not_running() {
        let mut ctx = ContextIndex::default();
        fpm(&mut ctx, -60_000, FpmEvent::Running { pid: 812 });
        fpm(&mut ctx, -10_000, FpmEvent::Terminating);
        fpm(&mut ctx, -10_000, FpmEvent::Exiting);
        let v = classify(
            &failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(2), SOCK),
            &ctx,
        );
        assert_eq!(v.cause, Cause::FpmNotRunning);
        assert_eq!(v.confidence, Confidence::Certain);
        assert!(!v.evidence.is_empty());
    }

    #[test]
    fn enoent_never_started_is_fpm_not_running() {
        let mut ctx = ContextIndex::default();
        fpm(&mut ctx, 60_000, FpmEvent::Running { pid: 812 });
        let v = classify(
            &failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(2), SOCK),
            &ctx,
        );
        assert_eq!(v.cause, Cause::FpmNotRunning);
    }

    /// NGINX config text as a context's config (one file, `nginx.conf`).
    fn nginx(ctx: &mut ContextIndex, text: &str) {
        use crate::parse::nginx_conf::{FileParser, NginxConf};
        let mut conf = NginxConf::default();
        let mut p = FileParser::new(Arc::from("/etc/nginx/sites-enabled/app"), Vec::new(), 0);
        for (i, l) in text.lines().enumerate() {
            p.feed(&mut conf, l, i as u64 + 1);
        }
        conf.resolve();
        ctx.nginx.push(conf);
    }

    fn refused(peer: &str) -> Failure {
        failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(111), peer)
    }

    fn up(ctx: &mut ContextIndex) {
        fpm(ctx, -60_000, FpmEvent::Running { pid: 812 });
        fpm(ctx, -60_000, FpmEvent::Ready);
    }

    #[test]
    fn refused_on_another_tcp_port_is_wrong_socket_path() {
        // FPM up on 127.0.0.1:9000 (its log says ready), NGINX passes to :9001.
        let mut ctx = ContextIndex::default();
        up(&mut ctx);
        pool(&mut ctx, "[www]\nlisten = 127.0.0.1:9000\n");
        nginx(
            &mut ctx,
            "server {\n    location ~ \\.php$ {\n        fastcgi_pass 127.0.0.1:9001;\n    }\n}\n",
        );
        let f = refused("127.0.0.1:9001");
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WrongSocketPath, "{}", v.reason);
        assert_eq!(v.confidence, Confidence::Certain);
        assert!(v.reason.contains("127.0.0.1:9000") && v.reason.contains("127.0.0.1:9001"));
        assert!(v
            .evidence
            .iter()
            .any(|e| e.source == EvidenceSource::NginxConf && e.line == 3));
        let fix = crate::fix::fix_for(&v, &f, &ctx, Default::default());
        assert!(
            fix.contains("in /etc/nginx/sites-enabled/app:3 change `fastcgi_pass 127.0.0.1:9001;` to `fastcgi_pass 127.0.0.1:9000;`"),
            "{fix}"
        );
        assert!(fix.contains("www.conf:2"), "{fix}");
        // A bare port in the pool is reached on the loopback.
        let mut ctx2 = ContextIndex::default();
        up(&mut ctx2);
        pool(&mut ctx2, "[www]\nlisten = 9000\n");
        let v = classify(&f, &ctx2);
        assert_eq!(v.cause, Cause::WrongSocketPath);
        let fix = crate::fix::fix_for(&v, &f, &ctx2, Default::default());
        assert!(fix.contains("`fastcgi_pass 127.0.0.1:9000;`"), "{fix}");
    }

    #[test]
    fn refused_inside_an_upstream_group_names_the_server_line() {
        let mut ctx = ContextIndex::default();
        up(&mut ctx);
        pool(&mut ctx, "[www]\nlisten = 127.0.0.1:9000\n");
        nginx(
            &mut ctx,
            "upstream php {\n    server 127.0.0.1:9001 weight=5;\n}\nserver {\n    location / { fastcgi_pass php; }\n}\n",
        );
        let f = refused("127.0.0.1:9001");
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WrongSocketPath);
        let fix = crate::fix::fix_for(&v, &f, &ctx, Default::default());
        assert!(
            fix.contains("app:2 change `server 127.0.0.1:9001 weight=5;` to `server 127.0.0.1:9000 weight=5;`"),
            "{fix}"
        );
    }

    #[test]
    fn refused_keeps_fpm_not_running_when_the_pool_is_there() {
        // FPM stopped, right address: not running.
        let mut ctx = ContextIndex::default();
        fpm(&mut ctx, -60_000, FpmEvent::Running { pid: 812 });
        fpm(&mut ctx, -10_000, FpmEvent::Exiting);
        pool(&mut ctx, "[www]\nlisten = 127.0.0.1:9000\n");
        let v = classify(&refused("127.0.0.1:9000"), &ctx);
        assert_eq!(v.cause, Cause::FpmNotRunning);
        // A stale socket after the master was killed (its log still says running).
        let mut ctx = ContextIndex::default();
        up(&mut ctx);
        pool(&mut ctx, "[www]\nlisten = /var/run/php/php8.2-fpm.sock\n");
        let v = classify(&refused(SOCK), &ctx);
        assert_eq!(v.cause, Cause::FpmNotRunning);
        assert!(v.facts.unix_refused);
        // FPM stopped and the address wrong too: stopped first, the mismatch noted.
        let mut ctx = ContextIndex::default();
        fpm(&mut ctx, -60_000, FpmEvent::Running { pid: 812 });
        fpm(&mut ctx, -10_000, FpmEvent::Exiting);
        pool(&mut ctx, "[www]\nlisten = 127.0.0.1:9000\n");
        let v = classify(&refused("127.0.0.1:9001"), &ctx);
        assert_eq!(v.cause, Cause::FpmNotRunning);
        assert!(
            v.reason
                .contains("note: FPM's config listens on 127.0.0.1:9000"),
            "{}",
            v.reason
        );
        // No pool config: the refusal alone does not say where FPM is.
        let mut ctx = ContextIndex::default();
        up(&mut ctx);
        let v = classify(&refused("127.0.0.1:9001"), &ctx);
        assert_eq!(v.cause, Cause::FpmNotRunning);
    }

    #[test]
    fn socket_for_a_php_version_with_no_pool_is_wrong_socket_path() {
        use crate::context::PhpVersionSeen;
        let peer = "unix:/run/php/php7.2-fpm.sock";
        let f = failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(2), peer);
        // Only the FPM log's name says 7.0 (no pool config, FPM state unknown).
        let mut ctx = ContextIndex::default();
        ctx.note_php_version(PhpVersionSeen {
            version: "7.0".into(),
            seen_in: "the FPM log file php7.0-fpm.log".into(),
        });
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WrongSocketPath, "{}", v.reason);
        assert_eq!(v.confidence, Confidence::Likely);
        assert!(
            v.reason.contains("PHP 7.2") && v.reason.contains("php7.0-fpm.log"),
            "{}",
            v.reason
        );
        let fix = crate::fix::fix_for(&v, &f, &ctx, Default::default());
        assert!(
            fix.contains("PHP 7.0 pool") && !fix.contains("/run/php/php7.0-fpm.sock"),
            "{fix}"
        );
        // The 7.0 pool's config names its socket: that goes into the fix.
        let mut ctx = ContextIndex::default();
        up(&mut ctx);
        pool(&mut ctx, "[www]\nlisten = /run/php/php7.0-fpm.sock\n");
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WrongSocketPath);
        let fix = crate::fix::fix_for(&v, &f, &ctx, Default::default());
        assert!(
            fix.contains("`fastcgi_pass unix:/run/php/php7.0-fpm.sock;`"),
            "{fix}"
        );
        // The version the socket names is there: not a version mismatch.
        let mut ctx = ContextIndex::default();
        ctx.note_php_version(PhpVersionSeen {
            version: "7.2".into(),
            seen_in: "unit php7.2-fpm.service in the journal".into(),
        });
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::FpmNotRunning);
    }

    #[test]
    fn enoent_with_fpm_up_elsewhere_is_wrong_socket_path() {
        let mut ctx = ContextIndex::default();
        fpm(&mut ctx, -60_000, FpmEvent::Running { pid: 812 });
        fpm(&mut ctx, -60_000, FpmEvent::Ready);
        pool(&mut ctx, "[www]\nlisten = /run/php/php8.2-fpm.sock\n");
        let f = failure(
            AttemptEvent::ConnectFailed,
            Phase::Connect,
            Some(2),
            "unix:/run/php/php8.1-fpm.sock",
        );
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WrongSocketPath);
        assert_eq!(v.facts.fpm_listen, Some(Peer(SOCK.into())));
        let fix = crate::fix::fix_for(&v, &f, &ctx, Default::default());
        assert!(
            fix.contains("fastcgi_pass unix:/run/php/php8.2-fpm.sock;"),
            "{fix}"
        );
    }

    // connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or
    // directory), with neither FPM log nor configs.
    #[test]
    fn enoent_alone_is_ambiguous_and_the_fix_covers_both() {
        let f = failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(2), SOCK);
        let ctx = ContextIndex::default();
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::FpmNotRunning);
        assert!(v.confidence <= Confidence::Ambiguous);
        assert_eq!(v.facts.also_possible, Some(Cause::WrongSocketPath));
        assert!(
            v.reason.contains("not running") && v.reason.contains("wrong path"),
            "{}",
            v.reason
        );
        let fix = fix_text(&v, &f, &ctx);
        for check in [
            "ls -l /run/php/php8.2-fpm.sock",
            "pgrep -a php-fpm",
            "grep -rn '^listen' /etc/php*",
            // Debian's socket name names the unit.
            "sudo systemctl start php8.2-fpm",
        ] {
            assert!(fix.contains(check), "{check} missing: {fix}");
        }
        // A socket named for no unit: the fix says how to find it, never a guess.
        let f = failure(
            AttemptEvent::ConnectFailed,
            Phase::Connect,
            Some(2),
            "unix:/run/php/www.sock",
        );
        let v = classify(&f, &ctx);
        let fix = fix_text(&v, &f, &ctx);
        assert!(
            fix.contains("systemctl list-units --type=service --all '*fpm*'"),
            "{fix}"
        );
        assert!(fix.contains("systemctl start <unit>"), "{fix}");
        assert!(
            !fix.contains("php-fpm.service") && !fix.contains("start php-fpm"),
            "{fix}"
        );
    }
}
