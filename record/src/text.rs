//! Turning NGINX bytes into JSON-safe text without losing them.

/// Request bytes as a `String` for JSON. Valid UTF-8 is kept as is (serde_json then
/// escapes quotes and control bytes); every byte that is not part of valid UTF-8 is
/// written as `%XX`, the URI's own escape, so the bytes stay recoverable and the
/// record stays one valid JSON line whatever the client sent.
pub fn lossless_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Cuts `text` to at most `max` bytes on a character boundary; returns whether it cut.
pub fn truncate_at_char(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_utf8_and_escapes_invalid_bytes() {
        assert_eq!(lossless_text(b"/caf\xc3\xa9"), "/café");
        assert_eq!(lossless_text(b"/a\xffb\xc3"), "/a%FFb%C3");
        assert_eq!(lossless_text(b"\"q\"\n"), "\"q\"\n");
    }

    #[test]
    fn truncates_on_a_boundary() {
        let mut s = String::from("aé");
        assert!(truncate_at_char(&mut s, 2));
        assert_eq!(s, "a");
        let mut t = String::from("abc");
        assert!(!truncate_at_char(&mut t, 3));
    }
}
