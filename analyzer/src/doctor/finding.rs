//! What the doctor says: findings (problems, each pointing to one of the seven
//! causes where it is one), notes (advice and facts that are not problems) and the
//! checks it could not make, with why.

use serde::Serialize;

use crate::model::Cause;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Requests fail now (NGINX cannot connect, ...).
    Critical,
    /// Requests fail some of the time, or did within the history window.
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        }
    }
}

/// One thing seen: where (a command, a file:line, a system call) and the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seen {
    pub source: String,
    pub value: String,
}

impl Seen {
    pub fn new(source: impl Into<String>, value: impl Into<String>) -> Seen {
        Seen {
            source: source.into(),
            value: value.into(),
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The cause it points to; None for a problem that is none of the seven (the
    /// gatelog module itself, say).
    pub cause: Option<Cause>,
    pub severity: Severity,
    /// What it is about: `unix:/run/php/php8.2-fpm.sock`, `pool www`.
    pub subject: String,
    pub summary: String,
    pub evidence: Vec<Seen>,
    /// The remedy, with this host's values.
    pub fix: String,
}

/// Something worth knowing that is not a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// `status-page`, `timeouts`, `history`, `gatelog`, ...
    pub topic: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// A check that could not be made, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unchecked {
    pub check: String,
    pub reason: String,
}

/// Findings, notes and unchecked items as the checks add them.
#[derive(Debug, Default)]
pub struct Findings {
    pub found: Vec<Finding>,
    pub notes: Vec<Note>,
    pub unchecked: Vec<Unchecked>,
}

impl Findings {
    /// Adds a finding; one about the same cause and subject as an earlier one adds
    /// its evidence there (a saturated pool seen by the status page and by the
    /// socket's queue is one problem).
    pub fn find(&mut self, f: Finding) {
        if let Some(old) = self
            .found
            .iter_mut()
            .find(|o| o.cause == f.cause && o.subject == f.subject)
        {
            for e in f.evidence {
                if !old.evidence.contains(&e) {
                    old.evidence.push(e);
                }
            }
            old.severity = old.severity.min(f.severity);
            return;
        }
        self.found.push(f);
    }

    pub fn note(&mut self, topic: &'static str, text: String, fix: Option<String>) {
        self.notes.push(Note { topic, text, fix });
    }

    /// Adds what another check collected, as if it had been added here.
    pub fn absorb(&mut self, other: Findings) {
        for f in other.found {
            self.find(f);
        }
        self.notes.extend(other.notes);
        for u in other.unchecked {
            self.unchecked(u.check, u.reason);
        }
    }

    pub fn unchecked(&mut self, check: impl Into<String>, reason: impl Into<String>) {
        let u = Unchecked {
            check: check.into(),
            reason: reason.into(),
        };
        if !self.unchecked.contains(&u) {
            self.unchecked.push(u);
        }
    }
}

/// `13 (EACCES: Permission denied)` for an errno NGINX would print.
pub fn errno_text(e: i32) -> String {
    let name = gatelog_record::errno::errno_name(e).unwrap_or_else(|| "errno".to_string());
    let msg = std::io::Error::from_raw_os_error(e).to_string();
    // std appends " (os error N)".
    let msg = msg.split(" (os error").next().unwrap_or(&msg).to_string();
    format!("{name} ({e}: {msg})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_cause_and_subject_merge() {
        let mut s = Findings::default();
        let f = |sev, v: &str| Finding {
            cause: Some(Cause::MaxChildrenExhausted),
            severity: sev,
            subject: "pool www".into(),
            summary: "saturated".into(),
            evidence: vec![Seen::new("status", v)],
            fix: String::new(),
        };
        s.find(f(Severity::Warning, "listen queue 3"));
        s.find(f(Severity::Critical, "EAGAIN"));
        s.find(f(Severity::Critical, "EAGAIN"));
        assert_eq!(s.found.len(), 1);
        assert_eq!(s.found[0].evidence.len(), 2);
        assert_eq!(s.found[0].severity, Severity::Critical);
        assert_eq!(errno_text(13), "EACCES (13: Permission denied)");
        assert_eq!(errno_text(2), "ENOENT (2: No such file or directory)");
    }
}
