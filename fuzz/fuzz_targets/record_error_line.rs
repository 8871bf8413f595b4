//! The one parser of NGINX's upstream error lines (gatelog-record), as the module's
//! error-log tap and the analyzer use it: any bytes, with and without the action.
#![no_main]

use gatelog_record::message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = message::classify(data, None);
    if let Some(p) = message::split_prefix(data) {
        let _ = message::classify(p.rest, None);
        let _ = message::classify(p.rest, Some(b"reading response header from upstream"));
        let _ = message::classify(p.rest, Some(b"connecting to upstream"));
        let _ = message::may_concern_upstream(p.rest);
        let _ = message::connect_peer(p.rest);
        for complete in [true, false] {
            let _ = message::classify_message(p.rest, None, complete);
        }
    }
});
