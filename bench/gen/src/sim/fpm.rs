//! The PHP-FPM log: master start/stop/reload, children dying and being respawned.

use super::{Child, Sim};
use crate::site::{FPM_CONF, MAX_CHILDREN, SOCK};
use crate::writer::LogWriter;

impl Sim {
    pub(crate) fn fpm_line(&mut self, level: &str) -> &mut LogWriter {
        self.stamp();
        self.fpm.b(&self.st.fpm).s(" ").s(level).s(": ");
        &mut self.fpm
    }

    pub(crate) fn fpm_start(&mut self) {
        self.fpm_master = self.pid();
        let pid = self.fpm_master;
        self.fpm_line("NOTICE")
            .s("fpm is running, pid ")
            .n(pid)
            .nl();
        self.fpm_line("NOTICE")
            .s("ready to handle connections")
            .nl();
        self.fpm_line("NOTICE")
            .s("systemd monitor interval set to 10000ms")
            .nl();
        self.children.clear();
        for _ in 0..MAX_CHILDREN {
            let pid = self.pid();
            self.children.push(Child {
                pid,
                born_us: self.t_us,
            });
        }
        self.fpm_up = true;
    }

    pub(crate) fn fpm_stop(&mut self) {
        self.fpm_line("NOTICE").s("Terminating ...").nl();
        self.fpm_line("NOTICE").s("exiting, bye-bye!").nl();
        self.fpm_up = false;
    }

    pub(crate) fn fpm_reload(&mut self) {
        self.fpm_line("NOTICE").s("Reloading in progress ...").nl();
        let conf = FPM_CONF;
        self.fpm_line("NOTICE")
            .s("reloading: execvp(\"/usr/sbin/php-fpm8.2\", {\"/usr/sbin/php-fpm8.2\", \"--nodaemonize\", \"--fpm-config\", \"")
            .s(conf)
            .s("\"})")
            .nl();
        self.fpm_line("NOTICE")
            .s("using inherited socket fd=7, \"")
            .s(SOCK)
            .s("\"")
            .nl();
        self.fpm_start();
    }

    /// A child dies (signal or code); FPM respawns it. Returns the dead pid.
    pub(crate) fn child_dies(&mut self, how: &str, pid: Option<u64>) -> u64 {
        let i = match pid.and_then(|p| self.children.iter().position(|c| c.pid == p)) {
            Some(i) => i,
            None => self.rng.below(self.children.len() as u64) as usize,
        };
        self.replace_child(i, how)
    }

    pub(crate) fn some_child(&mut self) -> u64 {
        self.rng.pick(&self.children).pid
    }

    pub(crate) fn bury_first(&mut self, how: &str) {
        self.replace_child(0, how);
    }

    /// FPM's two lines for child `i` exiting `how` and its replacement starting; returns
    /// the dead pid.
    fn replace_child(&mut self, i: usize, how: &str) -> u64 {
        let pid = self.children[i].pid;
        let age_us =
            self.t_us.saturating_sub(self.children[i].born_us) + self.rng.range(1, 999_999);
        self.fpm_line("WARNING")
            .s("[pool www] child ")
            .n(pid)
            .s(" exited ")
            .s(how)
            .s(" after ")
            .n(age_us / 1_000_000)
            .s(".")
            .nz(age_us % 1_000_000, 6)
            .s(" seconds from start")
            .nl();
        let new = self.pid();
        self.fpm_line("NOTICE")
            .s("[pool www] child ")
            .n(new)
            .s(" started")
            .nl();
        self.children[i] = Child {
            pid: new,
            born_us: self.t_us,
        };
        pid
    }
}
