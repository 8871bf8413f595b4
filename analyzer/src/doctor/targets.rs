//! Every FastCGI address NGINX passes to: does it exist, is it a socket, may NGINX's
//! worker user reach it (each directory's search bit, the socket's owner, group,
//! mode and ACL), what a real connect() as that user returns, which pool listens
//! there (or the nearest one when none does), and what that means: the errno NGINX
//! would log mapped to its cause, with the fix in this host's values.

use serde::Serialize;

use super::connect::{self, Address, Tried};
use super::finding::{errno_text, Finding, Findings, Seen, Severity};
use super::host::Action;
use super::perms::{self, Need, Step};
use super::{Doctor, PoolRef};
use crate::context::php_version_in;
use crate::model::{Cause, Peer, Protocol};
use crate::parse::nginx_conf::Target;

/// One target as checked (for the report).
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// Normalised: `unix:/run/php/php8.2-fpm.sock`, `127.0.0.1:9000`.
    pub peer: String,
    pub protocol: String,
    /// The `*_pass` lines (file:line) that send requests there.
    pub passes: Vec<String>,
    /// Where the address is written, when not in the pass itself (a group's
    /// `server`, a `set`).
    pub written_at: Vec<String>,
    pub group: Option<String>,
    /// Each directory of a unix path and the socket: owner, group, mode.
    pub path: Vec<String>,
    /// `connect() as www-data`: the errno (0 = connected).
    pub connect_as: Option<String>,
    pub connect_errno: Option<i32>,
    pub connect_result: String,
    /// The kernel's listening socket there: accept queue and backlog, holder.
    pub listener: Option<String>,
    /// The pool whose `listen` is this address.
    pub pool: Option<String>,
}

/// NGINX's spelling of a pool's listen address (a bare port is reached locally).
fn nginx_form(listen: &Peer) -> String {
    match listen.as_str().rsplit_once(':') {
        Some((host, port))
            if !listen.is_unix() && matches!(host, "*" | "0.0.0.0" | "[::]" | "::" | "") =>
        {
            format!("127.0.0.1:{port}")
        }
        _ => listen.as_str().to_string(),
    }
}

/// Length of the common prefix of two addresses (to pick the nearest pool).
fn likeness(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// The pool most likely meant when no pool listens at `peer`: same kind of address,
/// running, most alike.
fn nearest<'a>(peer: &Peer, pools: &'a [PoolRef<'a>]) -> Option<&'a PoolRef<'a>> {
    pools
        .iter()
        .filter(|p| p.listen().is_some())
        .max_by_key(|p| {
            let l = p.listen().unwrap_or_else(|| Peer::from_nginx(""));
            (
                l.is_unix() == peer.is_unix(),
                p.master.is_some(),
                likeness(l.as_str(), peer.as_str()),
            )
        })
}

/// The targets of the config, one per address (the passes that share it listed).
fn fastcgi_targets(d: &Doctor) -> Vec<Vec<&Target>> {
    let Some(conf) = d.nginx.as_ref().and_then(|n| n.conf.as_ref()) else {
        return Vec::new();
    };
    let mut out: Vec<Vec<&Target>> = Vec::new();
    for t in conf
        .targets
        .iter()
        .filter(|t| t.protocol == Protocol::Fastcgi)
    {
        match out.iter_mut().find(|g| g[0].peer == t.peer) {
            Some(g) => g.push(t),
            None => out.push(vec![t]),
        }
    }
    out
}

fn step_line(s: &Step) -> String {
    let need = match s.need {
        Need::Search => "search",
        Need::Write => "write",
    };
    match s.allowed {
        Some(true) => format!("{} ({need}: ok)", s.describe()),
        Some(false) => format!("{} ({need}: DENIED)", s.describe()),
        None => s.describe(),
    }
}

/// Checks every FastCGI target; adds the findings.
pub fn check(d: &mut Doctor) -> Vec<TargetReport> {
    let groups: Vec<Vec<Target>> = fastcgi_targets(d)
        .into_iter()
        .map(|g| g.into_iter().cloned().collect())
        .collect();
    if d.nginx.as_ref().is_some_and(|n| n.conf.is_some()) && groups.is_empty() {
        d.findings.note(
            "targets",
            "the NGINX configuration has no fastcgi_pass: no FastCGI target to check".into(),
            None,
        );
    }
    let mut found = Findings::default();
    let pools = d.pools();
    let reports = groups
        .iter()
        .map(|g| check_one(d, g, &pools, &mut found))
        .collect();
    drop(pools);
    d.findings.absorb(found);
    reports
}

/// Checks one target (the `fastcgi_pass`es to one address): its report, with
/// what it found added to `found`.
fn check_one(d: &Doctor, g: &[Target], pools: &[PoolRef], found: &mut Findings) -> TargetReport {
    let t = &g[0];
    let peer = &t.peer;
    let mut passes: Vec<String> = Vec::new();
    let mut written: Vec<String> = Vec::new();
    for x in g {
        if !passes.contains(&x.pass.place()) {
            passes.push(x.pass.place());
        }
        if x.written_at.place() != x.pass.place() && !written.contains(&x.written_at.place()) {
            written.push(x.written_at.place());
        }
    }
    let at: Vec<&PoolRef> = pools
        .iter()
        .filter(|p| p.listen().is_some_and(|l| peer.reaches(&l)))
        .collect();
    let mut report = TargetReport {
        peer: peer.to_string(),
        protocol: t.protocol.slug().to_string(),
        passes,
        written_at: written,
        group: t.group.clone(),
        path: Vec::new(),
        connect_as: None,
        connect_errno: None,
        connect_result: String::new(),
        listener: None,
        pool: at.first().map(|p| p.name().to_string()),
    };
    let steps = path_steps(d, peer);
    report.path = steps.iter().map(step_line).collect();
    report.listener = listener_line(d, peer);
    let connected = try_connect(d, peer, found);
    report.connect_as = Some(connected.as_name.clone());
    let errno = match &connected.tried {
        Some(Tried::Errno(e)) => {
            report.connect_errno = Some(*e);
            report.connect_result = if *e == 0 {
                "connected".into()
            } else {
                errno_text(*e)
            };
            Some(*e)
        }
        Some(Tried::Failed(why)) => {
            report.connect_result = format!("not tried: {why}");
            found.unchecked(
                format!("connect() to {peer} as {}", connected.as_name),
                why.clone(),
            );
            None
        }
        None => None,
    };
    let ctx = TargetCheck {
        d,
        g,
        peer,
        at: &at,
        pools,
        steps: &steps,
        as_name: &connected.as_name,
        as_worker: connected.as_worker,
    };
    if let Some(f) = ctx.classify(errno) {
        found.find(f);
    }
    report
}

/// The unix path as the worker user sees it (empty for TCP).
fn path_steps(d: &Doctor, peer: &Peer) -> Vec<Step> {
    match (peer.unix_path(), &d.worker) {
        (Some(path), Some(w)) => perms::walk(std::path::Path::new(path), w),
        (Some(path), None) => {
            // Without the worker's credentials, still say what is there.
            let nobody = super::users::Account {
                name: "?".into(),
                uid: u32::MAX,
                gid: u32::MAX,
                group_name: "?".into(),
                groups: Vec::new(),
            };
            perms::walk(std::path::Path::new(path), &nobody)
                .into_iter()
                .map(|mut s| {
                    s.allowed = None;
                    s
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The kernel's listener on the peer: its accept queue and who holds it.
fn listener_line(d: &Doctor, peer: &Peer) -> Option<String> {
    let listener_note = match peer.unix_path() {
        Some(path) => d
            .unix_listener(path)
            .map(|l| (l.inode, l.queue, Some(l.backlog))),
        None => d.tcp_listener(peer).map(|l| (l.inode, l.queue, None)),
    };
    if let Some((inode, queue, backlog)) = listener_note {
        let holders = super::sockets::socket_holders(&[inode]);
        let held = holders
            .get(&inode)
            .map(|pids| {
                let names: Vec<String> = pids
                    .iter()
                    .take(3)
                    .map(|p| match d.procs.get(*p) {
                        Some(pr) => format!("{} {}", pr.pid, pr.cmdline),
                        None => p.to_string(),
                    })
                    .collect();
                format!(", held by {}", names.join("; "))
            })
            .unwrap_or_default();
        Some(format!(
            "listening: {queue} waiting in the accept queue{}{held}",
            backlog
                .map(|b: u32| format!(" (backlog {b})"))
                .unwrap_or_default()
        ))
    } else if d.unix.is_ok() || !peer.is_unix() {
        Some("nothing listens there".into())
    } else {
        None
    }
}

/// A real connect() and as whom it was made.
struct Connected {
    tried: Option<Tried>,
    as_name: String,
    /// Whether it was made as the NGINX worker user.
    as_worker: bool,
}

/// Connects to the peer as the worker user where this process can (root, or the
/// worker itself), else as this user.
fn try_connect(d: &Doctor, peer: &Peer, found: &mut Findings) -> Connected {
    let who = d.worker.as_ref();
    let as_worker = who.is_some_and(|w| d.root || d.me.as_ref().is_some_and(|m| m.uid == w.uid));
    let tried = match Address::from_peer(peer.as_str()) {
        Ok(addr) => {
            if as_worker {
                // Root drops to the worker; the worker itself just connects.
                let switch = if d.root && who.is_some_and(|w| w.uid != 0) {
                    who
                } else {
                    None
                };
                Some(connect::connect_as(&addr, switch, d.timeout))
            } else {
                if let Some(w) = who {
                    found.unchecked(
                        format!("connect() to {peer} as {}", w.name),
                        "switching to another user needs root: connected as this user instead; permissions predicted from mode bits and ACLs".to_string(),
                    );
                }
                Some(connect::connect_as(&addr, None, d.timeout))
            }
        }
        Err(e) => {
            found.unchecked(format!("connect() to {peer}"), e);
            None
        }
    };
    let as_name = match (as_worker, who, &d.me) {
        (true, Some(w), _) => w.name.clone(),
        (_, _, Some(me)) => me.name.clone(),
        _ => "this user".to_string(),
    };
    Connected {
        tried,
        as_name,
        as_worker,
    }
}

struct TargetCheck<'a> {
    d: &'a Doctor,
    g: &'a [Target],
    peer: &'a Peer,
    at: &'a [&'a PoolRef<'a>],
    pools: &'a [PoolRef<'a>],
    steps: &'a [Step],
    as_name: &'a str,
    as_worker: bool,
}

impl TargetCheck<'_> {
    fn connect_seen(&self, e: i32) -> Seen {
        Seen::new(
            format!("connect() to {} as {}", self.peer, self.as_name),
            if e == 0 {
                "connected".to_string()
            } else {
                errno_text(e)
            },
        )
    }

    fn pass_seen(&self) -> Vec<Seen> {
        let mut v = Vec::new();
        for t in self.g {
            let s = Seen::new(t.written_at.place(), t.written_at.text());
            if !v.contains(&s) {
                v.push(s);
            }
        }
        v
    }

    fn worker_name(&self) -> String {
        self.d
            .worker
            .as_ref()
            .map_or("the NGINX worker user".to_string(), |w| w.name.clone())
    }

    /// The finding the connect result (and what the path and pools show) means.
    fn classify(&self, errno: Option<i32>) -> Option<Finding> {
        let denied = perms::first_denied(self.steps);
        let missing = self.steps.iter().find(|s| s.kind.is_none()).cloned();
        match errno {
            Some(0) => {
                // Connected as someone else (not root): the prediction for the worker
                // still tells a permission problem.
                if !self.as_worker {
                    if let Some(s) = denied {
                        return Some(self.permission(s, None));
                    }
                }
                None
            }
            Some(libc::EACCES) | Some(libc::EPERM) => {
                if !self.as_worker && denied.is_none() {
                    return None;
                }
                match denied {
                    Some(s) => Some(self.permission(s, errno)),
                    None => Some(self.permission_unexplained(errno.unwrap_or(libc::EACCES))),
                }
            }
            Some(e @ (libc::ENOENT | libc::ECONNREFUSED | libc::ENOTDIR)) => {
                if !self.as_worker {
                    if let Some(s) = denied {
                        return Some(self.permission(s, None));
                    }
                }
                Some(self.not_there(e, missing.as_ref()))
            }
            Some(e @ (libc::EAGAIN | libc::ETIMEDOUT)) => Some(self.full(e)),
            Some(e) => Some(Finding {
                cause: None,
                severity: Severity::Critical,
                subject: self.peer.to_string(),
                summary: format!(
                    "connect() to {} fails with {}: NGINX answers 502 for every request passed there",
                    self.peer,
                    errno_text(e)
                ),
                evidence: [vec![self.connect_seen(e)], self.pass_seen()].concat(),
                fix: "Check the address and the network path to it (firewall, routing, the service there).".into(),
            }),
            None => None,
        }
    }

    fn permission(&self, s: &Step, errno: Option<i32>) -> Finding {
        let worker = self.worker_name();
        let mut evidence = Vec::new();
        match errno {
            Some(e) => evidence.push(self.connect_seen(e)),
            None => evidence.push(Seen::new(
                format!("mode bits and ACLs for {worker}"),
                "predicted EACCES (13: Permission denied): connect() as the worker needs root to try".to_string(),
            )),
        }
        evidence.push(Seen::new(format!("stat {}", s.path.display()), s.attrs()));
        if s.need == Need::Write {
            self.socket_not_writable(s, evidence)
        } else {
            self.directory_not_searchable(s, evidence)
        }
    }

    fn permission_finding(&self, summary: String, evidence: Vec<Seen>, fix: String) -> Finding {
        Finding {
            cause: Some(Cause::SocketPermissionDenied),
            severity: Severity::Critical,
            subject: self.peer.to_string(),
            summary,
            evidence,
            fix,
        }
    }

    /// The socket grants the worker no write permission: the fix is in the pool's
    /// listen.* settings.
    fn socket_not_writable(&self, s: &Step, mut evidence: Vec<Seen>) -> Finding {
        let worker = self.worker_name();
        let pool = self.at.first();
        let mut fix = String::new();
        let group = self
            .d
            .worker
            .as_ref()
            .map_or("www-data".to_string(), |w| w.group_name.clone());
        match pool {
                Some(p) => {
                    for key in ["listen.owner", "listen.group", "listen.mode", "listen.acl_users", "listen.acl_groups"] {
                        if let Some(ev) = p.conf.evidence(key) {
                            evidence.push(Seen::new(format!("{}:{}", ev.file, ev.line), ev.text));
                        }
                    }
                    if p.conf.pool.get("listen.acl_users").is_some() || p.conf.pool.get("listen.acl_groups").is_some() {
                        fix.push_str(&format!(
                            "The pool sets listen.acl_users/listen.acl_groups, which replace listen.owner/group: add {worker} there ({}), ",
                            p.place("listen.acl_users")
                        ));
                    } else {
                        fix.push_str(&format!(
                            "In pool {} ({}) set `listen.owner = {worker}`, `listen.group = {group}` and `listen.mode = 0660`",
                            p.name(),
                            p.conf.file
                        ));
                        let now: Vec<String> = ["listen.owner", "listen.group", "listen.mode"]
                            .iter()
                            .filter_map(|k| {
                                let v = p.conf.pool.get(k)?;
                                Some(format!("{k} = {v} at {}", p.place(k)))
                            })
                            .collect();
                        if !now.is_empty() {
                            fix.push_str(&format!(" (now {})", now.join(", ")));
                        }
                        fix.push_str(", ");
                    }
                    fix.push_str(&format!(
                        "then restart FPM (a reload does not recreate the socket): {}. ",
                        p.side.command(Action::Restart)
                    ));
                }
                None => fix.push_str(&format!(
                    "Make the socket writable for {worker}: the FPM pool that creates it needs `listen.owner = {worker}`, `listen.group = {group}`, `listen.mode = 0660`. "
                )),
            }
        fix.push_str(&format!("Verify: `ls -la {}`.", s.path.display()));
        let summary = format!(
                "{worker} may not connect to {}: the socket is {} and grants {worker} no write permission",
                s.path.display(),
                s.attrs()
            );
        self.permission_finding(summary, evidence, fix)
    }

    /// A directory on the socket's path lacks search permission for the worker.
    fn directory_not_searchable(&self, s: &Step, evidence: Vec<Seen>) -> Finding {
        let worker = self.worker_name();
        let summary = format!(
            "{worker} cannot reach {}: directory {} is {} without search (x) permission for {worker}; connect() needs it on every directory of the path",
            self.peer,
            s.path.display(),
            s.attrs()
        );
        let fix = format!(
            "Let {worker} search the directory: `sudo chmod o+x {dir}` (or `sudo chgrp {g} {dir} && sudo chmod g+x {dir}`), or move the socket to a directory {worker} can reach{pool}. Verify: `sudo -u {worker} test -w {sock} && echo ok`.",
            dir = s.path.display(),
            g = self.d.worker.as_ref().map_or("www-data".to_string(), |w| w.group_name.clone()),
            pool = self
                .at
                .first()
                .map(|p| format!(" (`listen = ...` at {})", p.place("listen")))
                .unwrap_or_default(),
            sock = self.peer.unix_path().unwrap_or(self.peer.as_str()),
        );
        self.permission_finding(summary, evidence, fix)
    }

    fn permission_unexplained(&self, e: i32) -> Finding {
        Finding {
            cause: Some(Cause::SocketPermissionDenied),
            severity: Severity::Critical,
            subject: self.peer.to_string(),
            summary: format!(
                "connect() to {} as {} is refused with {} although the mode bits allow it (an LSM such as SELinux or AppArmor, or a seccomp filter)",
                self.peer,
                self.as_name,
                errno_text(e)
            ),
            evidence: [vec![self.connect_seen(e)], self.steps.iter().map(|s| Seen::new(format!("stat {}", s.path.display()), s.attrs())).collect()].concat(),
            fix: "Check the security module's log (`sudo ausearch -m avc -ts recent`, `journalctl -k | grep DENIED`) for the worker's denials.".into(),
        }
    }

    /// ENOENT / ECONNREFUSED: FPM not running there, or NGINX connects to the wrong
    /// place.
    fn not_there(&self, e: i32, missing: Option<&Step>) -> Finding {
        let mut evidence = vec![self.connect_seen(e)];
        let stale = self.peer.is_unix() && missing.is_none() && e == libc::ECONNREFUSED;
        if let Some(m) = missing {
            evidence.push(Seen::new(
                format!("stat {}", m.path.display()),
                "does not exist",
            ));
        } else if let Some(sock) = self.peer.unix_path() {
            if let Some(s) = self.steps.last() {
                evidence.push(Seen::new(format!("stat {sock}"), s.attrs()));
            }
            if stale {
                evidence.push(Seen::new(
                    "listening unix sockets (sock_diag)",
                    format!("none bound to {sock}: a stale socket file"),
                ));
            }
        }
        match self.at.first() {
            Some(p) => self.pool_there_not_listening(p, e, stale, evidence),
            None => self.no_pool_there(evidence),
        }
    }

    /// A pool is configured where NGINX connects, yet nothing listens: FPM is not
    /// running, or its master runs without the socket.
    fn pool_there_not_listening(
        &self,
        p: &PoolRef,
        e: i32,
        stale: bool,
        mut evidence: Vec<Seen>,
    ) -> Finding {
        if let Some(ev) = p.conf.evidence("listen") {
            evidence.push(Seen::new(format!("{}:{}", ev.file, ev.line), ev.text));
        }
        let config = p
            .side
            .config
            .as_ref()
            .map_or_else(|| p.side.source.clone(), |c| c.display().to_string());
        match self.at.iter().find(|p| p.master.is_some()) {
            None => {
                evidence.push(Seen::new(
                    "processes (/proc)",
                    format!("no php-fpm master runs {config}{}", pid_file_note(p)),
                ));
                self.fpm_stopped(p, e, stale, evidence)
            }
            Some(running) => {
                // Its master runs, yet nothing listens: the socket was removed, or
                // another config is running.
                let m = running.master.map(|m| m.pid).unwrap_or(0);
                evidence.push(Seen::new(
                    "processes (/proc)",
                    format!("php-fpm master {m} runs {config}"),
                ));
                Finding {
                    cause: Some(Cause::FpmNotRunning),
                    severity: Severity::Critical,
                    subject: self.peer.to_string(),
                    summary: format!(
                        "pool {} is configured on {} and its master {m} runs, but nothing listens there (the socket file was removed, or the master runs an older config)",
                        running.name(),
                        self.peer
                    ),
                    evidence,
                    fix: format!(
                        "Restart PHP-FPM so it binds {} again: {}.",
                        self.peer,
                        running.side.command(Action::Restart)
                    ),
                }
            }
        }
    }

    /// The pool configured there has no running master.
    fn fpm_stopped(&self, p: &PoolRef, e: i32, stale: bool, evidence: Vec<Seen>) -> Finding {
        let mut fix = String::new();
        if stale {
            fix.push_str(&format!(
                "Remove the stale socket: `sudo rm -f {}`. ",
                self.peer.unix_path().unwrap_or("")
            ));
        }
        fix.push_str(&format!("Start PHP-FPM: {}", p.side.command(Action::Start)));
        if let Some(unit) = p.side.unit() {
            fix.push_str(&format!(
                " and `sudo systemctl enable {unit}`; see why it stopped: `sudo journalctl -u {unit} --no-pager -n 50`"
            ));
        }
        if let Some(log) = p.side.global("error_log") {
            fix.push_str(&format!(" and `sudo tail -50 {log}`"));
        }
        fix.push_str(&format!(
            ". Verify: `ls -la {}`.",
            self.peer.unix_path().unwrap_or(self.peer.as_str())
        ));
        Finding {
            cause: Some(Cause::FpmNotRunning),
            severity: Severity::Critical,
            subject: self.peer.to_string(),
            summary: format!(
                "PHP-FPM is not running: pool {} should listen on {} but {}",
                p.name(),
                self.peer,
                if stale {
                    "only a stale socket file is left"
                } else if e == libc::ECONNREFUSED {
                    "nothing listens there"
                } else {
                    "the socket does not exist"
                }
            ),
            evidence,
            fix,
        }
    }

    /// NGINX names an address no pool listens on while pool `p` listens nearby.
    fn wrong_address(&self, p: &PoolRef, mut evidence: Vec<Seen>) -> Finding {
        let l = p.listen().unwrap_or_else(|| Peer::from_nginx(""));
        if let Some(ev) = p.conf.evidence("listen") {
            evidence.push(Seen::new(format!("{}:{}", ev.file, ev.line), ev.text));
        }
        let state = match p.master {
            Some(m) => format!("running, master {}", m.pid),
            None => "not running".to_string(),
        };
        evidence.push(Seen::new(
            "PHP-FPM pools read",
            format!(
                "no pool listens on {}; pool {} listens on {} ({state})",
                self.peer,
                p.name(),
                l
            ),
        ));
        evidence.extend(self.pass_seen());
        let mut why = String::new();
        if let (Some(a), Some(b)) = (
            php_version_in(self.peer.as_str()),
            php_version_in(l.as_str()),
        ) {
            if a != b {
                why = format!(" (NGINX names PHP {a}; the pool is PHP {b})");
            }
        }
        let to = nginx_form(&l);
        let changes: Vec<String> = self
            .g
            .iter()
            .map(|t| {
                let now = t.written_at.text();
                let new = now.replace(&t.address, &to);
                format!("`{now}` -> `{new}` at {}", t.written_at.place())
            })
            .collect();
        Finding {
            cause: Some(Cause::WrongSocketPath),
            severity: Severity::Critical,
            subject: self.peer.to_string(),
            summary: format!(
                "NGINX passes to {}, where no PHP-FPM pool listens; pool {} listens on {}{why}",
                self.peer,
                p.name(),
                l
            ),
            evidence,
            fix: format!(
                "Point NGINX at the pool: {}; then `sudo nginx -t && sudo systemctl reload nginx`. Or, if NGINX is right, make the pool listen there: `listen = {}` at {} and restart FPM.",
                changes.join("; "),
                self.peer.unix_path().unwrap_or(self.peer.as_str()),
                p.place("listen")
            ),
        }
    }

    /// No pool read listens where NGINX connects: the nearest pool's address is
    /// likely what NGINX should name.
    fn no_pool_there(&self, mut evidence: Vec<Seen>) -> Finding {
        let near = nearest(self.peer, self.pools);
        let any_running = self.pools.iter().any(|p| p.master.is_some());
        match near {
            Some(p) if any_running || p.master.is_some() || !self.pools.is_empty() => {
                self.wrong_address(p, evidence)
            }
            _ => {
                evidence.extend(self.pass_seen());
                evidence.push(Seen::new(
                    "PHP-FPM pools read",
                    if self.pools.is_empty() {
                        "none (no FPM config could be read)".to_string()
                    } else {
                        "none listens there".to_string()
                    },
                ));
                Finding {
                    cause: Some(Cause::FpmNotRunning),
                    severity: Severity::Critical,
                    subject: self.peer.to_string(),
                    summary: format!(
                        "nothing listens on {} and no PHP-FPM pool read is configured there: FPM is not running, or NGINX names the wrong address",
                        self.peer
                    ),
                    evidence,
                    fix: "Start the PHP-FPM that should listen there (`sudo systemctl start php-fpm` or your PHP version's unit), or point fastcgi_pass at a running pool's `listen`; give its config with --fpm-conf to compare.".into(),
                }
            }
        }
    }

    /// EAGAIN on a unix socket (backlog full) / a TCP connect timeout: the pool is
    /// saturated.
    fn full(&self, e: i32) -> Finding {
        let subject = self
            .at
            .first()
            .map_or_else(|| self.peer.to_string(), |p| format!("pool {}", p.name()));
        let what = if e == libc::EAGAIN {
            "the socket's accept queue is full"
        } else {
            "the connection was not accepted in time (SYNs dropped: the accept queue is full)"
        };
        let mut evidence = vec![self.connect_seen(e)];
        if let Some(p) = self.at.first() {
            if let Some(ev) = p.conf.evidence("pm.max_children") {
                evidence.push(Seen::new(format!("{}:{}", ev.file, ev.line), ev.text));
            }
        }
        Finding {
            cause: Some(Cause::MaxChildrenExhausted),
            severity: Severity::Critical,
            subject,
            summary: format!(
                "connect() to {} fails with {}: {what}, every worker is busy",
                self.peer,
                errno_text(e)
            ),
            evidence,
            fix: self
                .at
                .first()
                .map(|p| format!("Raise pm.max_children ({}) within memory (see the pool's formula), or make the slow requests faster; a larger listen.backlog only queues them longer.", p.place("pm.max_children")))
                .unwrap_or_else(|| "Raise pm.max_children of the pool listening there, within memory.".into()),
        }
    }
}

fn pid_file_note(p: &PoolRef) -> String {
    match p.side.global("pid") {
        Some(f) => match std::fs::read_to_string(f) {
            Ok(t) => format!(" (pid file {f} names {}, which is not running)", t.trim()),
            Err(e) => format!(
                " (pid file {f}: {})",
                if e.kind() == std::io::ErrorKind::NotFound {
                    "does not exist".to_string()
                } else {
                    e.to_string()
                }
            ),
        },
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_spelling_of_listen() {
        assert_eq!(nginx_form(&Peer::from_fpm_listen("9000")), "127.0.0.1:9000");
        assert_eq!(
            nginx_form(&Peer::from_fpm_listen("0.0.0.0:9001")),
            "127.0.0.1:9001"
        );
        assert_eq!(
            nginx_form(&Peer::from_fpm_listen("/run/php/php8.2-fpm.sock")),
            "unix:/run/php/php8.2-fpm.sock"
        );
        assert!(
            likeness(
                "unix:/run/php/php8.2-fpm.sock",
                "unix:/run/php/php8.1-fpm.sock"
            ) > 15
        );
    }
}
