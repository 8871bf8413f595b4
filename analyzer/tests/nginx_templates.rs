//! The analyzer reads every NGINX 1.22/1.28 upstream message template as the module
//! does: the same table as `record/tests/templates.rs`, through the analyzer's own
//! entry splitting (`parse::nginx`), so that an error line and the record of the same
//! request carry the same event, errno and phase and join into one failure.

use gatelog_analyzer::parse::nginx::{self, LineFailure, UpstreamMessage};

// The analyzer does not read pasted lines without a tail through this table.
#[allow(dead_code)]
#[path = "../../record/tests/templates/table.rs"]
mod table;

use table::{cases, Expect};

#[test]
fn every_template_reads_as_the_module_reads_it() {
    for c in cases() {
        let line = c.line();
        let e = nginx::parse_entry(&line).unwrap_or_else(|| panic!("not an entry: {line}"));
        assert_eq!(e.message, c.message_with_errno(), "message of {line}");
        assert_eq!(e.action, c.action, "action of {line}");
        assert_eq!(e.context.upstream, c.upstream, "upstream of {line}");
        let got = nginx::classify_message(&e);
        match c.expect {
            Expect::Failure(event, phase) => match got {
                Some(UpstreamMessage::Failure(LineFailure {
                    event: ev,
                    phase: ph,
                    errno,
                    message,
                    ..
                })) => {
                    assert_eq!(ev, event, "event of {line}");
                    assert_eq!(ph, phase, "phase of {line}");
                    assert_eq!(errno, c.expected_errno(), "errno of {line}");
                    assert_eq!(message, c.message_with_errno(), "message of {line}");
                }
                other => panic!("{line} gave {other:?}"),
            },
            Expect::Stderr => match got {
                Some(UpstreamMessage::FastcgiStderr { text }) => {
                    assert!(c.message.contains(text) && !text.is_empty(), "{line}")
                }
                other => panic!("{line} gave {other:?}"),
            },
            Expect::NotUpstream(_) | Expect::ClientSide => {
                assert_eq!(got, None, "{line}")
            }
        }
    }
}
