//! FPM answered but broke the FastCGI protocol (a header too big or unparseable,
//! stdout closed before the header): cause 7.

use super::{Confidence, Verdict};
use crate::context::Context;
use crate::failure::{Attempt, Failure};
use crate::model::{AttemptEvent, Cause};
use crate::windows::DEATH_WINDOW_MS;

pub(super) fn invalid_response(f: &Failure, a: &Attempt, ctx: &Context) -> Verdict {
    let what = match a.event {
        AttemptEvent::HeaderTooBig => {
            "FPM's response header (with PHP's stderr output) was larger than fastcgi_buffer_size"
        }
        AttemptEvent::InvalidHeader => "FPM sent a header NGINX could not parse",
        _ => "FPM broke the FastCGI protocol (e.g. closed stdout before the header)",
    };
    let mut v = Verdict::new(
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
    fn invalid_headers() {
        let ctx = Context::default();
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
