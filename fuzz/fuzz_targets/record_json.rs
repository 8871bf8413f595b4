//! gatelog.v1 records: anything that parses as a Record is written back as one
//! JSON line that parses to the same Record (a feed for pipelines never mangles).
#![no_main]

use gatelog_record::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rec) = serde_json::from_slice::<Record>(data) else {
        return;
    };
    let mut line = Vec::new();
    rec.write_line(&mut line);
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    let back: Record = serde_json::from_slice(&line).expect("the written line parses");
    assert_eq!(back, rec);
});
