//! The fix for a verdict, written with the user's own values (socket paths, unit
//! names, pool settings, timeouts, memory figures) as the troubleshooting guide
//! prescribes them.

use crate::classify::{Facts, Verdict};
use crate::context::{parse_fpm_duration_secs, Context, PoolConf};
use crate::failure::Failure;
use crate::model::{Cause, Peer};

/// Memory figures the user can give for the pm.max_children formula.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryOverrides {
    pub ram_mb: Option<u64>,
    pub reserved_mb: Option<u64>,
    pub worker_mb: Option<u64>,
}

/// The guide's formula: max_children = (RAM - reserved) / average worker memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildrenFormula {
    pub ram_mb: u64,
    pub reserved_mb: u64,
    pub worker_mb: u64,
    pub max_children: u64,
}

impl ChildrenFormula {
    pub fn text(&self) -> String {
        if self.max_children == 0 {
            return format!(
                "not even one worker of {} MB fits in (RAM {} MB - reserved {} MB): lower memory_limit or give PHP more memory",
                self.worker_mb, self.ram_mb, self.reserved_mb
            );
        }
        format!(
            "pm.max_children = (RAM {} MB - reserved {} MB) / worker {} MB = {}",
            self.ram_mb, self.reserved_mb, self.worker_mb, self.max_children
        )
    }
}

/// Computes the formula from the overrides and what the OOM dumps showed. The
/// reserve defaults to a quarter of RAM (the guide's 4 GB of 16 GB).
pub fn children_formula(
    ctx: &Context,
    facts: &Facts,
    o: MemoryOverrides,
) -> Option<ChildrenFormula> {
    let mem = &ctx.memory;
    // A memory cgroup limit is FPM's own budget: nothing else to reserve in it.
    let (ram_mb, default_reserve) = match (o.ram_mb, mem.memcg_limit_kb, mem.ram_kb) {
        (Some(r), _, _) => (r, r / 4),
        (None, Some(l), _) => (l / 1024, 0),
        (None, None, Some(r)) => (r / 1024, r / 1024 / 4),
        _ => return None,
    };
    let worker_mb = o
        .worker_mb
        .or(mem.avg_worker_kb().map(|k| k / 1024))
        .or(facts.victim_rss_kb.map(|k| k / 1024))
        .or(mem.victim_rss_kb_max.map(|k| k / 1024))?
        .max(1);
    let reserved_mb = o.reserved_mb.unwrap_or(default_reserve);
    let max_children = ram_mb.saturating_sub(reserved_mb) / worker_mb;
    Some(ChildrenFormula {
        ram_mb,
        reserved_mb,
        worker_mb,
        max_children,
    })
}

/// The systemd unit of FPM: from the journal, else from a Debian socket name
/// (`/run/php/php8.2-fpm.sock` -> `php8.2-fpm`), else a placeholder.
fn fpm_unit(ctx: &Context, peer: Option<&Peer>) -> String {
    if let Some(u) = ctx.units.iter().find_map(|u| u.event.unit.clone()) {
        return u.trim_end_matches(".service").to_string();
    }
    let from_path = peer
        .and_then(Peer::unix_path)
        .and_then(|p| p.rsplit('/').next())
        .and_then(|f| f.strip_suffix(".sock"))
        .filter(|s| s.starts_with("php") && s.contains("fpm"));
    from_path.unwrap_or("php-fpm").to_string()
}

fn pool_of<'a>(ctx: &'a Context, facts: &Facts) -> Option<&'a PoolConf> {
    facts
        .peer
        .as_ref()
        .and_then(|p| ctx.pool_for_peer(p))
        .or_else(|| {
            facts
                .pool
                .as_ref()
                .and_then(|n| ctx.pools.iter().find(|p| &p.pool.name == n))
        })
        .or_else(|| (ctx.pools.len() == 1).then(|| &ctx.pools[0]))
}

fn setting_at(pool: &PoolConf, key: &str) -> String {
    match pool.pool.setting(key) {
        Some(s) => format!("{} ({}:{})", s.value, pool.file, s.line),
        None => "unset".to_string(),
    }
}

/// The fix text for one failure.
pub fn fix_for(v: &Verdict, f: &Failure, ctx: &Context, mem: MemoryOverrides) -> String {
    let facts = &v.facts;
    let peer = facts.peer.as_ref().or(f.peer.as_ref());
    let peer_s = peer.map_or("the FPM socket".to_string(), |p| p.0.to_string());
    let unit = fpm_unit(ctx, peer);
    let pool = pool_of(ctx, facts);
    match v.cause {
        Cause::FpmNotRunning => {
            let mut s = String::new();
            if facts.unix_refused {
                if let Some(path) = peer.and_then(Peer::unix_path) {
                    s.push_str(&format!("Remove the stale socket (`sudo rm -f {path}`), then start"));
                } else {
                    s.push_str("Start");
                }
            } else {
                s.push_str("Start");
            }
            s.push_str(&format!(
                " PHP-FPM: `sudo systemctl start {unit}` and `sudo systemctl enable {unit}`; check why it stopped with `sudo journalctl -u {unit} --no-pager -n 50`."
            ));
            if let Some(e) = &facts.start_error {
                s.push_str(&format!(" Its last start-up error: {e}"));
            }
            if let Some(path) = peer.and_then(Peer::unix_path) {
                s.push_str(&format!(" Verify with `ls -la {path}`."));
            }
            s
        }
        Cause::SocketPermissionDenied => {
            let user = ctx.nginx_user().unwrap_or_else(|| "www-data".to_string());
            let mut s = match pool {
                Some(p) => format!(
                    "In {} ([{}]) set `listen.owner = {user}`, `listen.group = {user}`, `listen.mode = 0660` (now: listen.owner {}, listen.group {}, listen.mode {}).",
                    p.file,
                    p.pool.name,
                    setting_at(p, "listen.owner"),
                    setting_at(p, "listen.group"),
                    setting_at(p, "listen.mode"),
                ),
                None => format!(
                    "In the FPM pool config (e.g. /etc/php/*/fpm/pool.d/www.conf) set `listen.owner = {user}`, `listen.group = {user}`, `listen.mode = 0660` so that NGINX's worker user ({user}) may open the socket."
                ),
            };
            s.push_str(&format!(" Then `sudo systemctl restart {unit}` (reload does not re-create the socket)"));
            if let Some(path) = peer.and_then(Peer::unix_path) {
                s.push_str(&format!(" and check `ls -la {path}`"));
            }
            s.push('.');
            s
        }
        Cause::WrongSocketPath => {
            let target = facts
                .fpm_listen
                .as_ref()
                .map(|l| l.0.to_string())
                .or_else(|| pool.and_then(|p| p.listen()).map(|l| l.0.to_string()));
            let mut s = match &target {
                Some(t) => format!("NGINX connects to {peer_s} but PHP-FPM listens on {t}. Change the NGINX config to `fastcgi_pass {t};`"),
                None => format!(
                    "NGINX connects to {peer_s}, which does not exist while PHP-FPM runs. Find FPM's socket (`sudo grep -r '^listen' /etc/php/*/fpm/pool.d/`) and point `fastcgi_pass` at it"
                ),
            };
            let lines = peer.map(|p| ctx.nginx_passes_to(p)).unwrap_or_default();
            if !lines.is_empty() {
                s.push_str(&format!(" (now: {})", lines.join("; ")));
            }
            s.push_str(", then `sudo nginx -t && sudo systemctl reload nginx`.");
            s
        }
        Cause::MaxChildrenExhausted => {
            let mut s = match pool {
                Some(p) => format!(
                    "Raise pm.max_children in {} ([{}], now {}; pm = {}).",
                    p.file,
                    p.pool.name,
                    setting_at(p, "pm.max_children"),
                    p.pool.pm()
                ),
                None => match facts.max_children {
                    Some(n) => format!("Raise pm.max_children (FPM reports the limit {n}) in the pool config."),
                    None => "Raise pm.max_children in the pool config.".to_string(),
                },
            };
            match children_formula(ctx, facts, mem) {
                Some(formula) => s.push_str(&format!(" Size it with the memory you have: {}.", formula.text())),
                None => s.push_str(
                    " Size it as (total RAM MB - reserved MB) / average worker MB (`ps --no-headers -o rss -C php-fpm` for the worker size; or give --ram-mb/--worker-mb).",
                ),
            }
            s.push_str(&format!(" Then `sudo systemctl restart {unit}`."));
            s
        }
        Cause::ReadTimeout => {
            let current = ctx
                .nginx_read_timeout_ms()
                .map(|(_, where_)| where_)
                .or_else(|| facts.read_timeout_ms.map(|ms| format!("{} s", ms / 1000)))
                .unwrap_or_else(|| "60 s (default)".to_string());
            let path = f.request.as_deref().map(crate::context::request_path).unwrap_or("/slow-endpoint");
            let mut s = format!(
                "The request ran longer than fastcgi_read_timeout (now {current}). Make {} faster, or raise the timeout for that endpoint only: `location = {path} {{ fastcgi_read_timeout 300s; ... }}`, then `sudo nginx -t && sudo systemctl reload nginx`.",
                facts.script.as_deref().unwrap_or(path)
            );
            if let Some(p) = pool {
                if let Some(rt) = p.pool.get("request_terminate_timeout") {
                    let secs = parse_fpm_duration_secs(rt).unwrap_or(0);
                    if secs > 0 {
                        s.push_str(&format!(
                            " FPM's request_terminate_timeout = {rt} ({}:{}) also kills long requests (NGINX then answers 502): keep it at or above the script's run time.",
                            p.file,
                            p.pool.setting("request_terminate_timeout").map_or(0, |x| x.line)
                        ));
                    }
                }
            }
            s
        }
        Cause::WorkerOomKilled => {
            let mut s = String::from("The kernel killed a PHP worker for memory");
            if let (Some(pid), Some(kb)) = (facts.dead_pid, facts.victim_rss_kb) {
                s.push_str(&format!(" (pid {pid} used {} MB)", kb / 1024));
            }
            s.push_str(". Cap memory per request with php.ini `memory_limit` (e.g. 256M) and fix the script's memory use;");
            match children_formula(ctx, facts, mem) {
                Some(formula) => s.push_str(&format!(" keep all workers within RAM: {}", formula.text())),
                None => s.push_str(" keep pm.max_children x worker memory within RAM: (RAM MB - reserved MB) / worker MB"),
            }
            if let Some(p) = pool {
                s.push_str(&format!(" (now {} in {})", setting_at(p, "pm.max_children"), p.file));
            }
            s.push_str("; `pm.max_requests = 500` recycles leaking workers. If systemd stopped the unit after the kill (OOMPolicy=stop), start it again: ");
            s.push_str(&format!("`sudo systemctl start {unit}`."));
            s
        }
        Cause::InvalidResponse => {
            let mut s = String::new();
            if let Some(c) = &facts.crash_detail {
                s.push_str(&format!("The worker crashed ({c}): update or disable the extension named there (e.g. opcache, JIT), and enable core dumps to debug it. "));
            } else if let Some(sig) = &facts.signal {
                s.push_str(&format!("The worker died on {sig}: look for a crashing extension or a process that kills workers. "));
            }
            if let Some(e) = &facts.php_error {
                s.push_str(&format!("PHP said: {}. Fix that error (a fatal error, e.g. memory_limit or a missing class after a deploy: clear opcache with `sudo systemctl reload {unit}`). ", crate::model::clip(e, 200)));
            }
            if f.attempts.iter().any(|a| a.event == crate::model::AttemptEvent::HeaderTooBig) {
                let now = ctx
                    .nginx
                    .iter()
                    .find_map(|c| c.tuning_value("fastcgi_buffer_size"))
                    .map(|d| format!(" (now {}:{}: {})", d.file, d.line, d.text()))
                    .unwrap_or_default();
                s.push_str(&format!("Raise the header buffers: `fastcgi_buffer_size 32k; fastcgi_buffers 16 16k;`{now}, and reduce what PHP writes to stderr. "));
            }
            if s.is_empty() {
                s.push_str(&format!(
                    "FPM closed the connection without a valid response: read the PHP-FPM log (`sudo tail -50 /var/log/{unit}.log`) and enable `catch_workers_output = yes` and php.ini `log_errors = On` to see the fatal error or crash."
                ));
            }
            s.trim_end().to_string()
        }
        Cause::Unknown => format!(
            "No fix can be derived from the evidence ({}). Give the PHP-FPM log, the kernel log (dmesg/journal) and the configs for a verdict.",
            v.reason
        ),
    }
}
