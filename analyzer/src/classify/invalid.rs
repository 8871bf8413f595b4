//! FPM answered but broke the FastCGI protocol (a header too big or unparseable,
//! stdout closed before the header): cause 7.

use super::{Confidence, Diagnosis};
use crate::context::ContextIndex;
use crate::failure::{FailedAttempt, Failure};
use crate::model::{AttemptEvent, Cause};
use crate::windows::DEATH_WINDOW_MS;

/// The byte NGINX read where a FastCGI version should be, when it is a printable
/// character: `unsupported FastCGI protocol version: 72` is HTTP's `H`.
fn foreign_reply(message: &str) -> Option<char> {
    let (_, n) = message.split_once("unsupported FastCGI protocol version: ")?;
    let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
    let b: u8 = digits.parse().ok()?;
    (b.is_ascii_graphic()).then_some(char::from(b))
}

pub(super) fn invalid_response(f: &Failure, a: &FailedAttempt, ctx: &ContextIndex) -> Diagnosis {
    if let Some(c) = foreign_reply(&a.message) {
        // Not FPM misbehaving: something else listens where fastcgi_pass points.
        let guess = match c {
            'H' => " (`H` as in `HTTP/1.1`: a web server)",
            '<' => " (`<` as in an HTML page)",
            'S' => " (`S` as in `SSH-2.0`)",
            _ => "",
        };
        let mut v = Diagnosis::new(
            Cause::WrongSocketPath,
            Confidence::Strong,
            format!("the server at {} answered with `{c}`{guess} where a FastCGI response starts with its version byte 1: fastcgi_pass points at a server that does not speak FastCGI, not at PHP-FPM", f.peer.as_ref().map_or("the upstream".to_string(), |p| p.to_string())),
        );
        v.facts.foreign_reply = Some(c);
        return v;
    }
    let what = match a.event {
        AttemptEvent::HeaderTooBig => {
            "FPM's response header (with PHP's stderr output) was larger than fastcgi_buffer_size"
        }
        AttemptEvent::InvalidHeader => "FPM sent a header NGINX could not parse",
        _ => "FPM broke the FastCGI protocol (e.g. closed stdout before the header)",
    };
    let mut v = Diagnosis::new(
        Cause::InvalidResponse,
        Confidence::Strong,
        format!("invalid response: {what}"),
    );
    v.facts.php_error = f.stderr.clone();
    let deaths = ctx.child_deaths(
        f.time.minus_ms(DEATH_WINDOW_MS),
        f.time.plus_ms(DEATH_WINDOW_MS),
    );
    if let Some(d) = deaths.first() {
        v = v.with(&d.evidence);
    }
    v
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

    #[test]
    fn another_protocol_on_the_fastcgi_address_is_a_wrong_address() {
        let mut f = failure(
            AttemptEvent::ProtocolError,
            Phase::Header,
            None,
            "127.0.0.1:8080",
        );
        f.attempts[0].message = "upstream sent unsupported FastCGI protocol version: 72".into();
        let v = classify(&f, &ContextIndex::default());
        assert_eq!(v.cause, Cause::WrongSocketPath);
        assert_eq!(v.facts.foreign_reply, Some('H'));
        assert!(v.reason.contains("HTTP"), "{}", v.reason);
        f.attempts[0].message = "upstream sent unsupported FastCGI protocol version: 0".into();
        assert_eq!(
            classify(&f, &ContextIndex::default()).cause,
            Cause::InvalidResponse
        );
    }

    #[test]
    fn invalid_headers() {
        let ctx = ContextIndex::default();
        for e in [
            AttemptEvent::HeaderTooBig,
            AttemptEvent::InvalidHeader,
            AttemptEvent::ProtocolError,
        ] {
            assert_eq!(
                classify(&failure(e, Phase::Header, None, SOCK), &ctx).cause,
                Cause::InvalidResponse
            );
        }
    }
}
