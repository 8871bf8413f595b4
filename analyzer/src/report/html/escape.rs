//! HTML escaping for everything the inputs control (URIs, hosts, file names, log
//! text): a log line is data, never markup. Control characters are shown as `\xNN`
//! so that an ANSI colour code or a NUL in a log stays visible instead of vanishing
//! or confusing the page.

use std::fmt::{self, Write};

/// Text escaped for element content and for double- or single-quoted attribute
/// values.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut from = 0;
        for (i, c) in s.char_indices() {
            let rep: Option<&str> = match c {
                '&' => Some("&amp;"),
                '<' => Some("&lt;"),
                '>' => Some("&gt;"),
                '"' => Some("&quot;"),
                '\'' => Some("&#39;"),
                '\t' | '\n' => None,
                c if c.is_control() => {
                    f.write_str(&s[from..i])?;
                    write!(f, "\\x{:02X}", c as u32)?;
                    from = i + c.len_utf8();
                    continue;
                }
                _ => None,
            };
            if let Some(rep) = rep {
                f.write_str(&s[from..i])?;
                f.write_str(rep)?;
                from = i + 1;
            }
        }
        f.write_str(&s[from..])
    }
}

/// `esc(s)` as a String.
pub fn esc(s: &str) -> String {
    Esc(s).to_string()
}

/// A fix or reason with `code` spans (the analyzer writes commands and settings in
/// backticks): the text is escaped, the backtick pairs become `<code>`. An unpaired
/// backtick stays a backtick.
pub fn with_code(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    let mut out = String::with_capacity(s.len() + 32);
    let paired = parts.len() % 2 == 1;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if i % 2 == 1 && (paired || !last) {
            let _ = write!(out, "<code>{}</code>", Esc(part));
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            let _ = write!(out, "{}", Esc(part));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_log_text_stays_text() {
        let hostile = r#"GET /<script>alert(1)</script>?a="b"&c='d' HTTP/1.1"#;
        assert_eq!(
            esc(hostile),
            "GET /&lt;script&gt;alert(1)&lt;/script&gt;?a=&quot;b&quot;&amp;c=&#39;d&#39; HTTP/1.1"
        );
        // An attribute cannot be closed from inside.
        assert!(!esc(r#"x" onmouseover="alert(1)"#).contains('"'));
        assert!(!esc("x' onmouseover='alert(1)").contains('\''));
    }

    #[test]
    fn control_characters_are_shown_not_passed() {
        assert_eq!(esc("a\u{1b}[31mred\u{0}b\rc"), "a\\x1B[31mred\\x00b\\x0Dc");
        assert_eq!(esc("tab\tand\nnewline"), "tab\tand\nnewline");
        assert_eq!(esc("C1 \u{85} DEL \u{7f}"), "C1 \\x85 DEL \\x7F");
        // Multibyte text is kept as it is.
        assert_eq!(esc("café ⏎ 日本"), "café ⏎ 日本");
    }

    #[test]
    fn fixes_get_code_spans_and_stay_escaped() {
        assert_eq!(
            with_code("Run `sudo systemctl start php-fpm` and check `ls -la /run/<x>`."),
            "Run <code>sudo systemctl start php-fpm</code> and check <code>ls -la /run/&lt;x&gt;</code>."
        );
        assert_eq!(with_code("a ` b"), "a ` b");
        assert_eq!(with_code("`<b>`"), "<code>&lt;b&gt;</code>");
        assert_eq!(with_code("x `a` y ` z"), "x <code>a</code> y ` z");
    }
}
