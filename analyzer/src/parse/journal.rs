//! systemd's messages about the PHP-FPM unit (PID 1, `systemd-oomd`), as they appear
//! in `journalctl -u php8.2-fpm` and in /var/log/syslog. Both renderings of the unit
//! (`Started The PHP 8.2 FastCGI Process Manager.` on systemd 247 and
//! `Started php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager.` on 252+) are
//! understood.

/// What happened to the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitEvent {
    Starting,
    Started,
    Stopping,
    Stopped,
    FailedToStart,
    /// `Main process exited, code=exited|killed|dumped, status=78/CONFIG`.
    MainProcessExited {
        code: String,
        status: String,
    },
    /// `Failed with result 'oom-kill'` etc.
    FailedWithResult(String),
    /// cgroup v2: `A process of this unit has been killed by the OOM killer.`
    OomKillInUnit,
    /// `systemd-oomd killed N process(es) in this unit.` or systemd-oomd's own
    /// `Killed /system.slice/x.service due to memory pressure ...`.
    OomdKilled,
    /// `Deactivated successfully.` / `Succeeded.`
    Deactivated,
}

impl UnitEvent {
    /// Whether FPM is down after this event (None: the event does not say).
    pub fn fpm_down_after(&self) -> Option<bool> {
        match self {
            UnitEvent::Started => Some(false),
            UnitEvent::Stopped
            | UnitEvent::FailedToStart
            | UnitEvent::MainProcessExited { .. }
            | UnitEvent::FailedWithResult(_)
            | UnitEvent::OomdKilled
            | UnitEvent::Deactivated => Some(true),
            UnitEvent::Starting | UnitEvent::Stopping | UnitEvent::OomKillInUnit => None,
        }
    }
}

/// A unit message: the unit (when named) and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitMessage {
    pub unit: Option<String>,
    pub event: UnitEvent,
}

/// Whether a unit name or description is PHP-FPM's.
pub fn is_fpm_unit(name_or_description: &str) -> bool {
    let s = name_or_description.to_ascii_lowercase();
    s.contains("fpm") || s.contains("fastcgi process manager")
}

/// Parses a message of `systemd[1]` or `systemd-oomd`. Returns only messages about an
/// FPM unit; other units are not relevant here.
pub fn parse_message(ident: &str, msg: &str) -> Option<UnitMessage> {
    if ident == "systemd-oomd" {
        let rest = msg.strip_prefix("Killed ")?;
        let cgroup = rest.split(' ').next()?;
        let unit = cgroup.rsplit('/').next()?.to_string();
        return is_fpm_unit(&unit).then_some(UnitMessage {
            unit: Some(unit),
            event: UnitEvent::OomdKilled,
        });
    }
    if !ident.starts_with("systemd") {
        return None;
    }
    // `<unit>: <what>` messages.
    if let Some((unit, what)) = msg.split_once(": ") {
        if !unit.contains(' ') && unit.contains('.') {
            if !is_fpm_unit(unit) {
                return None;
            }
            let event = if let Some(rest) = what.strip_prefix("Main process exited, ") {
                let mut code = String::new();
                let mut status = String::new();
                for kv in rest.split(", ") {
                    if let Some(v) = kv.strip_prefix("code=") {
                        code = v.to_string();
                    } else if let Some(v) = kv.strip_prefix("status=") {
                        status = v.trim_end_matches('.').to_string();
                    }
                }
                UnitEvent::MainProcessExited { code, status }
            } else if let Some(rest) = what.strip_prefix("Failed with result '") {
                UnitEvent::FailedWithResult(rest.split('\'').next().unwrap_or("").to_string())
            } else if what.starts_with("A process of this unit has been killed by the OOM killer") {
                UnitEvent::OomKillInUnit
            } else if what.starts_with("systemd-oomd killed") {
                UnitEvent::OomdKilled
            } else if what.starts_with("Deactivated successfully") || what.starts_with("Succeeded")
            {
                UnitEvent::Deactivated
            } else {
                return None;
            };
            return Some(UnitMessage {
                unit: Some(unit.to_string()),
                event,
            });
        }
    }
    // Job messages: `Started <unit - description|description>.`
    let (event, subject) = if let Some(s) = msg.strip_prefix("Starting ") {
        (UnitEvent::Starting, s.trim_end_matches("..."))
    } else if let Some(s) = msg.strip_prefix("Started ") {
        (UnitEvent::Started, s.trim_end_matches('.'))
    } else if let Some(s) = msg.strip_prefix("Stopping ") {
        (UnitEvent::Stopping, s.trim_end_matches("..."))
    } else if let Some(s) = msg.strip_prefix("Stopped ") {
        (UnitEvent::Stopped, s.trim_end_matches('.'))
    } else if let Some(s) = msg.strip_prefix("Failed to start ") {
        (UnitEvent::FailedToStart, s.trim_end_matches('.'))
    } else {
        return None;
    };
    if !is_fpm_unit(subject) {
        return None;
    }
    let unit = subject
        .split_once(" - ")
        .map(|(u, _)| u.to_string())
        .filter(|u| !u.contains(' '));
    Some(UnitMessage { unit, event })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(msg: &str) -> Option<UnitEvent> {
        parse_message("systemd", msg).map(|m| m.event)
    }

    #[test]
    fn job_messages_both_renderings() {
        let m = parse_message(
            "systemd",
            "Started php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager.",
        )
        .unwrap();
        assert_eq!(m.unit.as_deref(), Some("php8.2-fpm.service"));
        assert_eq!(m.event, UnitEvent::Started);
        let m = parse_message("systemd", "Started The PHP 7.4 FastCGI Process Manager.").unwrap();
        assert_eq!(m.unit, None);
        assert_eq!(m.event, UnitEvent::Started);
        assert_eq!(
            ev("Starting php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager..."),
            Some(UnitEvent::Starting)
        );
        assert_eq!(
            ev("Stopping php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager..."),
            Some(UnitEvent::Stopping)
        );
        assert_eq!(
            ev("Stopped php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager."),
            Some(UnitEvent::Stopped)
        );
        assert_eq!(
            ev("Failed to start php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager."),
            Some(UnitEvent::FailedToStart)
        );
        assert_eq!(
            ev("Failed to start The PHP 7.4 FastCGI Process Manager."),
            Some(UnitEvent::FailedToStart)
        );
        assert_eq!(
            ev("Started nginx.service - A high performance web server."),
            None
        );
    }

    #[test]
    fn unit_messages() {
        assert_eq!(
            ev("php8.2-fpm.service: Main process exited, code=exited, status=78/CONFIG"),
            Some(UnitEvent::MainProcessExited {
                code: "exited".into(),
                status: "78/CONFIG".into()
            })
        );
        assert_eq!(
            ev("php8.2-fpm.service: Main process exited, code=killed, status=9/KILL"),
            Some(UnitEvent::MainProcessExited {
                code: "killed".into(),
                status: "9/KILL".into()
            })
        );
        assert_eq!(
            ev("php8.2-fpm.service: Failed with result 'oom-kill'."),
            Some(UnitEvent::FailedWithResult("oom-kill".into()))
        );
        assert_eq!(
            ev("php8.2-fpm.service: A process of this unit has been killed by the OOM killer."),
            Some(UnitEvent::OomKillInUnit)
        );
        assert_eq!(
            ev("php8.2-fpm.service: systemd-oomd killed 6 process(es) in this unit."),
            Some(UnitEvent::OomdKilled)
        );
        assert_eq!(
            ev("php8.2-fpm.service: Deactivated successfully."),
            Some(UnitEvent::Deactivated)
        );
        assert_eq!(
            ev("php7.4-fpm.service: Succeeded."),
            Some(UnitEvent::Deactivated)
        );
        assert_eq!(
            ev("php8.2-fpm.service: Consumed 1min 2.345s CPU time."),
            None
        );
        assert_eq!(ev("nginx.service: Deactivated successfully."), None);
        let m = parse_message("systemd-oomd", "Killed /system.slice/php8.2-fpm.service due to memory pressure for /system.slice being 72.31% > 50.00% for > 20s with reclaim activity").unwrap();
        assert_eq!(m.event, UnitEvent::OomdKilled);
        assert_eq!(m.unit.as_deref(), Some("php8.2-fpm.service"));
    }
}
