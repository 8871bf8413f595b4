//! What happens next: episodes of one failure kind (FPM stopped, a reload with a bad user,
//! the master OOM-killed, a full backlog, ...), sporadic failures, reloads and noise.

use super::{Episode, Sim};
use crate::kind::{Kind, KINDS};
use crate::site::MAX_CHILDREN;

impl Sim {
    pub(crate) fn start_episode(&mut self) {
        // weights per kind: Enoent, WrongPath, Eacces, Econnrefused, Eagain, Timeout, Reset, Closed
        // Every kind comes once per round of eight episodes, in a shuffled order, so that
        // even a small input holds all of them.
        if self.rotation.is_empty() {
            let mut order = KINDS.to_vec();
            for i in (1..order.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
            self.rotation = order;
        }
        let k = self.rotation.pop().unwrap();
        let secs = self.rng.range(15, 150);
        let rate = match k {
            Kind::Reset | Kind::Closed => 25_000,
            Kind::Timeout => 60_000,
            Kind::WrongPath => 150_000,
            _ => 300_000,
        };
        self.episode_begins(k);
        self.episode = Some(Episode {
            kind: k,
            until_us: self.t_us + secs * 1_000_000,
            rate,
        });
    }

    pub(crate) fn end_episode(&mut self) {
        let e = self.episode.take().unwrap();
        match e.kind {
            Kind::Enoent | Kind::Econnrefused => self.fpm_start(),
            Kind::Eacces => self.fpm_reload(),
            _ => {}
        }
    }

    pub(crate) fn step(&mut self) {
        self.t_us += self.rng.range(1, 40_000);
        if let Some(e) = &self.episode {
            if self.t_us >= e.until_us {
                self.end_episode();
            }
        }
        self.background();
        if let Some(e) = &self.episode {
            if self.rng.chance(e.rate) {
                let k = e.kind;
                self.failure(k);
                return;
            }
        } else if self.rng.chance(100) {
            self.start_episode();
            return;
        }
        if self.rng.chance(12_000) {
            // sporadic failures outside (or inside) episodes
            let k = KINDS[self.rng.weighted(&[0, 0, 0, 2, 2, 12, 2, 4])];
            if self.fpm_up || !matches!(k, Kind::Reset | Kind::Closed) {
                self.failure(k);
                return;
            }
        }
        if self.rng.chance(15) {
            self.nginx_reload();
            return;
        }
        if self.rng.chance(8) {
            self.reopen_logs();
            return;
        }
        self.nginx_noise();
    }

    /// What the logs say when an episode of `k` begins (FPM stopped, reloaded with a bad
    /// user, its master OOM-killed, its backlog full), and the state that follows.
    pub(crate) fn episode_begins(&mut self, k: Kind) {
        match k {
            Kind::Enoent => self.fpm_stop(),
            Kind::Eacces => {
                self.fpm_reload();
                if self.rng.chance(500_000) {
                    self.fpm_line("ERROR")
                        .s("[pool www] cannot get uid for user 'www-data2': Success (0)")
                        .nl();
                }
            }
            Kind::Econnrefused => {
                // the master was OOM-killed: it writes nothing, the socket file stays
                let m = self.fpm_master;
                self.kern_oom(m);
                self.fpm_up = false;
            }
            Kind::Eagain => {
                self.fpm_line("WARNING")
                    .s("[pool www] server reached pm.max_children setting (")
                    .n(MAX_CHILDREN)
                    .s("), consider raising it")
                    .nl();
                self.fpm_line("WARNING")
                    .s("[pool www] seems busy (you may need to increase pm.start_servers, or pm.min/max_spare_servers), spawning 8 children, there are 0 idle, and ")
                    .n(MAX_CHILDREN)
                    .s(" total children")
                    .nl();
            }
            _ => {}
        }
    }

    /// What goes on whatever the upstreams do: kernel noise, FPM children recycled or
    /// traced as slow.
    pub(crate) fn background(&mut self) {
        if self.t_us >= self.kern_noise_due_us {
            self.kern_noise();
            self.kern_noise_due_us = self.t_us + self.rng.range(1, 1_500_000);
        }
        if self.t_us >= self.fpm_recycle_due_us {
            if self.fpm_up {
                if self.rng.chance(700_000) {
                    self.child_dies("with code 0", None);
                } else {
                    let child = self.some_child();
                    let script = *self.rng.pick(&[
                        "/var/www/html/report.php",
                        "/var/www/html/export.php",
                        "/var/www/html/index.php",
                    ]);
                    let secs = self.rng.range(5, 20);
                    let frac = self.rng.below(1_000_000);
                    self.fpm_line("WARNING")
                        .s("[pool www] child ")
                        .n(child)
                        .s(", script '")
                        .s(script)
                        .s("' (request: \"GET /")
                        .s(&script[14..])
                        .s("\") executing too slow (")
                        .n(secs)
                        .s(".")
                        .nz(frac, 6)
                        .s(" sec), logging")
                        .nl();
                    self.fpm_line("NOTICE")
                        .s("child ")
                        .n(child)
                        .s(" stopped for tracing")
                        .nl();
                    self.fpm_line("NOTICE").s("about to trace ").n(child).nl();
                    self.fpm_line("NOTICE")
                        .s("finished trace of ")
                        .n(child)
                        .nl();
                }
            }
            self.fpm_recycle_due_us = self.t_us + self.rng.range(1_000_000, 60_000_000);
        }
    }

    /// logrotate's postrotate: NGINX and FPM reopen their logs.
    pub(crate) fn reopen_logs(&mut self) {
        self.fpm_line("NOTICE").s("error log file re-opened").nl();
        let m = self.master_pid;
        self.err_head("notice", m, 0);
        self.err
            .s("signal 10 (SIGUSR1) received from 1, reopening logs")
            .nl();
        self.err_head("notice", m, 0);
        self.err.s("reopening logs").nl();
    }
}
