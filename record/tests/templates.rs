//! Every upstream error message template of NGINX 1.22 and 1.28 through the one
//! reader, `gatelog_record::message`: the table is `templates/table.rs` (one case per
//! template, naming the NGINX file and function); `templates/nginx-templates.tsv` is
//! the list extracted from the NGINX sources (`templates/extract.py`) that the table
//! must cover.

use std::collections::BTreeSet;

use gatelog_record::message::{
    classify, may_concern_upstream, split_prefix, FailureMessage, UpstreamLine,
};
use gatelog_record::{Event, Phase};

#[path = "templates/table.rs"]
mod table;

use table::{cases, Case, Expect};

const TSV: &str = include_str!("templates/nginx-templates.tsv");

/// The part of a line after `... pid#tid: *conn `.
fn rest_of(line: &str) -> &str {
    let i = line.find(": *1187 ").expect("the table's prefix");
    &line[i + ": *1187 ".len()..]
}

fn describe(c: &Case) -> String {
    format!("{} {}: {}", c.file, c.function, c.line())
}

/// The phase the line states without its action: only what the event implies.
fn phase_without_action(event: Event) -> Option<Phase> {
    match event {
        Event::ConnectFailed | Event::NoLiveUpstreams => Some(Phase::Connect),
        Event::ResolveFailed => Some(Phase::Resolve),
        Event::SslFailed => Some(Phase::Tls),
        _ => None,
    }
}

fn check_failure(
    c: &Case,
    got: Option<UpstreamLine<'_>>,
    event: Event,
    phase: Option<Phase>,
    how: &str,
) {
    match got {
        Some(UpstreamLine::Failure(FailureMessage {
            event: e,
            errno,
            phase: p,
            message,
            ..
        })) => {
            assert_eq!(e, event, "{how}: event of {}", describe(c));
            assert_eq!(errno, c.expected_errno(), "{how}: errno of {}", describe(c));
            assert_eq!(p, phase, "{how}: phase of {}", describe(c));
            assert_eq!(
                message,
                c.message_with_errno().as_bytes(),
                "{how}: message of {}",
                describe(c)
            );
        }
        other => panic!("{how}: {} gave {other:?}", describe(c)),
    }
}

#[test]
fn every_template_reads_the_same_for_the_module_and_from_a_file() {
    for c in cases() {
        let line = c.line();
        let rest = rest_of(&line);
        // The module's tap gets levels up to error only, through split_prefix.
        match split_prefix(line.as_bytes()) {
            Some(p) => assert_eq!(p.rest, rest.as_bytes(), "{}", describe(&c)),
            None => assert_eq!(c.level, "debug", "prefix of {}", describe(&c)),
        }
        let module = classify(rest.as_bytes(), c.action.map(str::as_bytes));
        let file = classify(rest.as_bytes(), None);
        let bare_line = c.bare_line();
        let bare = classify(rest_of(&bare_line).as_bytes(), None);
        // The cheap pre-check never skips a line the reader would read.
        for (how, text, got) in [("line", rest, &file), ("bare", rest_of(&bare_line), &bare)] {
            if got.is_some() {
                assert!(
                    may_concern_upstream(text.as_bytes()),
                    "{how}: pre-check skips {}",
                    describe(&c)
                );
            }
        }
        match c.expect {
            Expect::Failure(event, phase) => {
                check_failure(&c, module, event, phase, "module");
                check_failure(&c, file, event, phase, "file");
                // Pasted without ` while ...` and context: same event and errno.
                let event = c.bare_event.unwrap_or(event);
                check_failure(&c, bare, event, phase_without_action(event), "bare");
            }
            Expect::Stderr => {
                for (how, got) in [("module", module), ("file", file)] {
                    match got {
                        Some(UpstreamLine::FastcgiStderr { text, truncated }) => {
                            assert!(!truncated, "{how}: {}", describe(&c));
                            let quoted = c
                                .message
                                .strip_prefix("FastCGI sent in stderr: \"")
                                .unwrap();
                            assert_eq!(text, quoted.strip_suffix('"').unwrap().as_bytes(), "{how}");
                        }
                        other => panic!("{how}: {} gave {other:?}", describe(&c)),
                    }
                }
                assert!(
                    matches!(bare, Some(UpstreamLine::FastcgiStderr { .. })),
                    "bare"
                );
            }
            Expect::NotUpstream(why) => {
                assert_eq!(module, None, "module: {} ({why})", describe(&c));
                assert_eq!(file, None, "file: {} ({why})", describe(&c));
                assert_eq!(bare, None, "bare: {} ({why})", describe(&c));
            }
            Expect::ClientSide => {
                assert_eq!(module, None, "module: {}", describe(&c));
                assert_eq!(file, None, "file: {}", describe(&c));
                // Without its action the line cannot tell the client's connection from
                // the upstream's; that is the one case where a pasted line reads more.
                assert!(bare.is_some(), "bare: {}", describe(&c));
            }
        }
    }
}

/// `nginx-templates.tsv` rows: (versions, file, functions, format).
fn extracted() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    TSV.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            let mut next = || f.next().expect("four tab-separated fields");
            (next(), next(), next(), next())
        })
        .collect()
}

#[test]
fn the_table_covers_every_template_nginx_has() {
    let rows = extracted();
    assert!(
        rows.len() > 150,
        "the extracted list looks cut: {}",
        rows.len()
    );
    for v in ["1.22.1", "1.28.3"] {
        assert!(
            rows.iter().any(|r| r.0.split(',').any(|x| x == v)),
            "no {v} rows"
        );
    }
    let in_table: BTreeSet<(&str, &str)> = cases().iter().map(|c| (c.file, c.format)).collect();
    let missing: Vec<String> = rows
        .iter()
        .filter(|(_, file, _, format)| !in_table.contains(&(*file, *format)))
        .map(|(v, file, funcs, format)| format!("{v} {file} {funcs}: {format}"))
        .collect();
    assert!(
        missing.is_empty(),
        "templates without a case:\n{}",
        missing.join("\n")
    );
    let listed: BTreeSet<(&str, &str)> = rows.iter().map(|r| (r.1, r.3)).collect();
    for c in cases().iter().filter(|c| !c.file.is_empty()) {
        assert!(
            listed.contains(&(c.file, c.format)),
            "case not in nginx-templates.tsv: {} {}",
            c.file,
            c.format
        );
        let row = rows
            .iter()
            .find(|r| r.1 == c.file && r.3 == c.format)
            .unwrap();
        for f in c.function.split(',') {
            assert!(
                row.2.split(',').any(|x| x == f),
                "{f} does not log {}",
                c.format
            );
        }
    }
}

#[test]
fn each_message_is_formatted_from_its_template() {
    for c in cases().iter().filter(|c| !c.file.is_empty()) {
        let mut msg = c.message;
        // ngx_ssl_error appends the OpenSSL error queue.
        if let Some(i) = msg.find(" (SSL: ") {
            if msg.starts_with("SSL_") || c.file.ends_with("ngx_event_openssl.c") {
                msg = &msg[..i];
            }
        }
        assert!(
            instance_of(c.format, msg),
            "{:?} is not formatted from {:?}",
            c.message,
            c.format
        );
    }
}

/// Whether `msg` is `format` with its conversions (`%V`, `%*s`, `%uz`, `%02xd`, ...)
/// filled in.
fn instance_of(format: &str, msg: &str) -> bool {
    // The C literal's escapes.
    let format = format.replace("\\\"", "\"").replace("\\\\", "\\");
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = format.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            parts.last_mut().unwrap().push(ch);
            continue;
        }
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || *c == '*')
        {
            chars.next();
        }
        if chars.peek().is_some_and(|c| matches!(c, 'u' | 'x' | 'X')) {
            chars.next();
        }
        let conv = chars.next();
        assert!(
            matches!(
                conv,
                Some('V' | 's' | 'd' | 'i' | 'l' | 'O' | 'p' | 'z' | 'A')
            ),
            "unknown conversion in {format}"
        );
        parts.push(String::new());
    }
    let (first, rest) = parts.split_first().expect("one part at least");
    let Some(mut tail) = msg.strip_prefix(first.as_str()) else {
        return false;
    };
    for (i, part) in rest.iter().enumerate() {
        if i + 1 == rest.len() {
            // A conversion may print nothing (`%V` of an empty string).
            return tail.ends_with(part.as_str());
        }
        match tail.find(part.as_str()) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.is_empty()
}
