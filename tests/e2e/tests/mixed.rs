//! The mixed incident's world, shared by the analyzer's mixed run
//! (`analyzer_mixed_fpm_lifecycle`) and the HTML report's (`html_report_mixed_incident`):
//! one NGINX and one PHP-FPM pool whose state changes between the faults (stopped,
//! restarted with a socket only root may open, restarted with a single worker), and
//! the evidence directory it leaves.

use std::path::PathBuf;
use std::time::Duration;

use gatelog_e2e::client::Response;
use gatelog_e2e::fpm::{Fpm, Pm, Pool};
use gatelog_e2e::kmsg;
use gatelog_e2e::lab::{Lab, Timeouts};
use gatelog_e2e::net::free_port;
use gatelog_e2e::nginx::Nginx;
use gatelog_e2e::scenarios::{self, pids_in_fpm_log, wait_text};

use super::analyzer::{kernel_lines, settle};

/// The pause around a change of state (a worker's death, FPM stopping or
/// starting): NGINX's and FPM's logs have whole seconds, so events less than a
/// second apart cannot be told apart by anyone.
pub(super) const PAUSE: Duration = Duration::from_millis(1200);

/// A running mixed incident.
pub(super) struct MixedLab<'a> {
    lab: &'a Lab,
    kmark: Result<kmsg::Mark, String>,
    pool: Pool,
    pub(super) fpm: Fpm,
    /// Every FPM master and worker seen (for the kernel lines of the run).
    pids: Vec<u32>,
    nginx: Nginx,
    /// The port NGINX listens on.
    pub(super) port: u16,
    /// The socket `/wrong.php` passes to while FPM runs: nobody listens on it.
    pub(super) wrong: PathBuf,
}

impl<'a> MixedLab<'a> {
    /// A static pool of two workers (FFI on, for the segfault; one busy worker of two
    /// is not a saturated pool) on a unix socket, and NGINX with timeouts 2 s / 3 s /
    /// 1 s (connect / send / read): `= /wrong.php` passes to a socket that does not
    /// exist, `~ \.php$` to the pool.
    pub(super) fn start(lab: &'a Lab) -> Result<MixedLab<'a>, String> {
        let kmark = kmsg::mark();
        let pool = Pool::unix(&lab.prefix, "www", 2).admin("ffi.enable", "1");
        let fpm = Fpm::start(&lab.prefix, pool.clone(), None)?;
        let mut pids = vec![fpm.master_pid()];
        pids.extend(fpm.worker_pids());
        let port = free_port()?;
        let t = Timeouts::new(2000, 3000, 1000);
        let wrong = lab.prefix.path("run/php8.1-fpm.sock");
        let wrong_loc = lab.php_location(
            "= /wrong.php",
            &format!("unix:{}", wrong.display()),
            t,
            "            fastcgi_param SCRIPT_FILENAME $document_root/ok.php;",
        );
        let main = lab.php_location("~ \\.php$", &pool.listen.nginx_addr(), t, "");
        let http = format!(
            "{}{}",
            lab.default_gatelog(),
            lab.server(port, &format!("{wrong_loc}{main}"))
        );
        let nginx = lab.start_nginx(http, &[port])?;
        Ok(MixedLab {
            lab,
            kmark,
            pool,
            fpm,
            pids,
            nginx,
            port,
            wrong,
        })
    }

    /// The pool's `listen` address as NGINX names it (`unix:...`).
    pub(super) fn pool_addr(&self) -> String {
        self.pool.listen.nginx_addr()
    }

    /// Stops FPM cleanly (SIGTERM: the socket goes) and waits up to `wait` for its
    /// goodbye.
    pub(super) fn stop_fpm(&mut self, wait: Duration) -> Result<(), String> {
        self.pids.extend(self.fpm.worker_pids());
        self.fpm.stop_clean()?;
        wait_text(&self.fpm.log, "exiting, bye-bye!", wait)?;
        Ok(())
    }

    /// Starts the (stopped) pool again with a socket only root may open.
    pub(super) fn restart_root_only(&mut self) -> Result<(), String> {
        self.pool.owner = "root".into();
        self.pool.group = "root".into();
        self.pool.mode = "0600".into();
        self.restart()
    }

    /// Stops FPM and starts it right again (www-data 0660) with a single worker
    /// (pm = dynamic logs max_children when it is saturated).
    pub(super) fn restart_single_worker(&mut self) -> Result<(), String> {
        self.fpm.stop_clean()?;
        self.pool.owner = "www-data".into();
        self.pool.group = "www-data".into();
        self.pool.mode = "0660".into();
        self.pool.pm = Pm::Dynamic(1);
        self.restart()
    }

    fn restart(&mut self) -> Result<(), String> {
        // What dropping the old instance would do, before the new one starts.
        self.fpm.kill9();
        self.fpm = Fpm::start(&self.lab.prefix, self.pool.clone(), None)?;
        self.pids.push(self.fpm.master_pid());
        self.pids.extend(self.fpm.worker_pids());
        Ok(())
    }

    /// Waits for the access log lines of `responses` and the records of the `failed`
    /// ones, stops NGINX and FPM and leaves the evidence in the lab's `out/`
    /// ([`scenarios::save_logs`], the kernel lines of this run's FPM processes).
    /// Returns that directory and the FPM log's text.
    pub(super) fn finish(
        self,
        responses: &[&Response],
        failed: usize,
    ) -> Result<(PathBuf, String), String> {
        let MixedLab {
            lab,
            kmark,
            fpm,
            mut pids,
            nginx,
            ..
        } = self;
        settle(lab, responses, failed)?;
        drop(nginx);
        let fpm_text = fpm.log_text();
        pids.extend(fpm.worker_pids());
        pids.extend(pids_in_fpm_log(&fpm_text));
        pids.sort_unstable();
        pids.dedup();
        let kernel = kernel_lines(&kmark, &pids, None);
        let (fpm_log, fpm_conf) = (fpm.log.clone(), fpm.conf.clone());
        drop(fpm);
        let dir = lab.prefix.path("out");
        scenarios::save_logs(lab, &dir, Some(&fpm_log), Some(&fpm_conf), &kernel)?;
        Ok((dir, fpm_text))
    }
}
