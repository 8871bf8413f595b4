//! The renderer on hostile input, on a large stream, and against its own numbers.

use std::sync::Arc;

use regex::Regex;

use super::buckets::FINE_LIMIT;
use super::sample::MAX_ROWS;
use super::*;
use crate::classify::{Confidence, Diagnosis, Facts};
use crate::context::markers::Markers;
use crate::context::{Alignment, Timed};
use crate::failure::{FailedAttempt, Failure, SeenIn};
use crate::input::stats::InputStats;
use crate::input::{DetectedBy, Input, Skipped};
use crate::model::{AttemptEvent, EvidenceSource, InputKind, Peer, Phase, Protocol};
use crate::parse::fpm;

const T0: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

const HOSTILE: &str = r#"<script>alert(1)</script><img src=x onerror=alert(2)>"'><svg onload=alert(3)>&amp;</td></tr></table>"#;

fn failure(t: i64, request: &str, peer: &str, evidence: &str, file: &str) -> Failure {
    let file: Arc<str> = Arc::from(file);
    Failure {
        time: EpochMs(t),
        time_known: true,
        pid: Some(1234),
        conn: Some(8),
        request_id: None,
        status: 502,
        status_inferred: false,
        peer: Some(Peer(Arc::from(peer))),
        upstream: None,
        protocol: Protocol::Fastcgi,
        request: Some(request.to_string()),
        client: Some(format!("127.0.0.1{HOSTILE}")),
        server: None,
        host: Some(HOSTILE.to_string()),
        attempts: vec![FailedAttempt {
            event: AttemptEvent::Reset,
            phase: Some(Phase::Header),
            errno: Some(104),
            peer: None,
            message: format!("recv() failed (104: Connection reset by peer) {HOSTILE}"),
        }],
        stderr: None,
        request_time_ms: None,
        read_timeout_ms: None,
        seen_in: SeenIn::default(),
        evidence: vec![Evidence::new(EvidenceSource::Nginx, &file, 7, evidence)],
    }
}

fn classified(f: Failure, cause: Cause, reason: &str, fix: &str) -> Classified {
    Classified {
        failure: f,
        diagnosis: Diagnosis {
            cause,
            confidence: Confidence::Strong,
            reason: reason.to_string(),
            evidence: Vec::new(),
            facts: Facts::default(),
        },
        fix: fix.to_string(),
    }
}

fn run_info(name: &str, markers: Markers) -> RunInfo {
    let mut stats = InputStats::new(&Input {
        path: name.into(),
        name: Arc::from(name),
        kind: InputKind::NginxError,
        detected_by: DetectedBy::Content,
        size: 10,
        kinds: vec![InputKind::NginxError],
    });
    stats.lines_read = 3;
    stats.not_understood(2, HOSTILE);
    RunInfo {
        inputs: vec![stats],
        skipped: vec![Skipped {
            name: format!("skipped{HOSTILE}"),
            reason: HOSTILE.to_string(),
        }],
        zone: Zone::utc(),
        alignment: Alignment::default(),
        since: None,
        until: None,
        dropped_events: 0,
        outside_window: 0,
        joined_lines: 0,
        markers,
    }
}

/// Renders a report of `failures`.
fn render(failures: &[Classified], run: &RunInfo) -> (String, Summary) {
    let mut out = Vec::new();
    let mut summary = Summary::default();
    {
        let mut r = HtmlReport::new(&mut out, Zone::utc());
        for c in failures {
            summary.add(c);
            r.failure(c).expect("in memory");
        }
        r.finish(&summary, run).expect("in memory");
    }
    (String::from_utf8(out).expect("UTF-8"), summary)
}

fn hostile_markers() -> Markers {
    let mut m = Markers::default();
    let line = "[23-Nov-2026 00:00:05] WARNING: [pool www] child 77 exited on signal 11 (SIGSEGV) after 0.1 seconds from start";
    let parsed = fpm::parse_line(line).expect("an FPM line");
    m.fpm(&Timed {
        at: Some(EpochMs(T0 + 5_000)),
        boot_secs: None,
        evidence: Evidence::new(
            EvidenceSource::Fpm,
            &Arc::from(HOSTILE),
            3,
            &format!("{line}{HOSTILE}"),
        ),
        event: parsed.event,
    });
    m
}

#[test]
fn hostile_input_stays_text() {
    let f = failure(
        T0 + 1_000,
        &format!("GET /{HOSTILE} HTTP/1.1"),
        &format!("unix:/run/{HOSTILE}.sock"),
        &format!("2026/11/23 00:00:01 [error] 1#1: *8 {HOSTILE}\nsecond line {HOSTILE}"),
        &format!("/var/log/{HOSTILE}.log"),
    );
    let c = classified(
        f,
        Cause::InvalidResponse,
        &format!("worker died {HOSTILE}"),
        &format!("Run `sudo {HOSTILE}` then {HOSTILE}"),
    );
    let run = run_info(&format!("in{HOSTILE}.log"), hostile_markers());
    let (page, _) = render(&[c], &run);
    // The only markup is ours: one script block, no image, no event handler, the
    // tables closed where we close them.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert_eq!(page.matches("</script>").count(), 1);
    assert!(!page.contains("<img"));
    assert!(!page.contains("<svg onload"));
    let handler = Regex::new(r"<[a-zA-Z][^<>]*\son[a-z]+\s*=").expect("regex");
    assert!(handler.find(&page).is_none(), "{:?}", handler.find(&page));
    assert_eq!(
        page.matches("<table").count(),
        page.matches("</table>").count()
    );
    // The text is all there, escaped: request, peer, evidence, file, reason, fix,
    // input name, not-understood line, skipped entry, marker.
    let escaped = esc(HOSTILE);
    assert!(escaped.contains("&lt;script&gt;") && escaped.contains("&quot;&#39;&gt;"));
    let n = page.matches(&escaped).count();
    assert!(n >= 12, "escaped hostile text found {n} times");
    assert!(page.contains(&format!("<code>sudo {escaped}</code>")));
    // The marker's tooltip and its row.
    assert!(page.contains(r#"data-kind="worker-death""#));
}

#[test]
fn the_page_loads_nothing_and_allows_only_its_own_blocks() {
    let f = failure(
        T0,
        "GET / HTTP/1.1",
        "unix:/run/php.sock",
        "line",
        "error.log",
    );
    let (page, _) = render(
        &[classified(f, Cause::FpmNotRunning, "r", "f")],
        &run_info("error.log", Markers::default()),
    );
    let csp = Regex::new(r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src '(sha256-[^']+)'; script-src '(sha256-[^']+)';"#)
        .expect("regex");
    let caps = csp.captures(&page).expect("a CSP meta element");
    assert_eq!(format!("'{}'", &caps[1]), csp_hash(STYLE));
    assert_eq!(format!("'{}'", &caps[2]), csp_hash(SCRIPT));
    // The blocks hashed are the blocks in the page, byte for byte.
    assert!(page.contains(&format!("<style>{STYLE}</style>")));
    assert!(page.contains(&format!("<script>{SCRIPT}</script>")));
    // No reference that a browser would fetch; the SVG namespace is a name.
    let without_ns = page.replace(r#"xmlns="http://www.w3.org/2000/svg""#, "");
    let src = Regex::new(r"<[a-zA-Z][^<>]*\s(src|srcset|data|poster|action)\s*=").expect("regex");
    assert!(src.find(&page).is_none(), "{:?}", src.find(&page));
    for needle in ["http:", "https:", "//", "url(", "@import"] {
        let hits: Vec<_> = without_ns.match_indices(needle).take(3).collect();
        // `//` appears in comments of the script; nothing else may hold it.
        if needle == "//" {
            let outside_script = without_ns.replace(SCRIPT, "");
            assert!(!outside_script.contains("//"), "// outside the script");
            continue;
        }
        assert!(hits.is_empty(), "{needle} in the page: {hits:?}");
    }
    for href in Regex::new(r#"href="([^"]*)""#)
        .expect("regex")
        .captures_iter(&page)
    {
        assert!(
            href[1].starts_with('#'),
            "link out of the page: {}",
            &href[1]
        );
    }
}

/// `data-*` numbers of the page: series totals, rect counts per series, legend.
fn chart_numbers(page: &str) -> Vec<(String, u64, u64, u64)> {
    let series = Regex::new(
        r#"<g class="series c-[a-z-]+" data-cause="([a-z-]+)" data-total="(\d+)">(.*?)</g>"#,
    )
    .expect("regex");
    let rect = Regex::new(r#"<rect [^>]*data-count="(\d+)""#).expect("regex");
    series
        .captures_iter(page)
        .map(|c| {
            let slug = c[1].to_string();
            let total: u64 = c[2].parse().expect("number");
            let rects: u64 = rect
                .captures_iter(&c[3])
                .map(|r| r[1].parse::<u64>().expect("number"))
                .sum();
            let legend = Regex::new(&format!(r#"<li data-cause="{slug}" data-count="(\d+)""#))
                .expect("regex")
                .captures(page)
                .map_or(0, |l| l[1].parse().expect("number"));
            (slug, total, rects, legend)
        })
        .collect()
}

#[test]
fn a_large_stream_keeps_memory_and_page_bounded_and_counts_exact() {
    // 300,000 failures over three days, four causes, one every 864 ms.
    let causes = [
        Cause::FpmNotRunning,
        Cause::MaxChildrenExhausted,
        Cause::ReadTimeout,
        Cause::WorkerOomKilled,
    ];
    let n = 300_000u64;
    let mut out = Vec::new();
    let mut summary = Summary::default();
    let run = run_info("error.log", Markers::default());
    let mut r = HtmlReport::new(&mut out, Zone::utc());
    let base = failure(
        T0,
        "GET /index.php HTTP/1.1",
        "unix:/run/php.sock",
        "line",
        "e.log",
    );
    for i in 0..n {
        let mut f = base.clone();
        f.time = EpochMs(T0 + i as i64 * 864);
        let c = classified(f, causes[(i % 4) as usize], "r", "fix");
        summary.add(&c);
        r.failure(&c).expect("in memory");
        if i % 10_000 == 0 {
            assert!(r.sample.held() <= MAX_ROWS);
            assert!(r
                .buckets
                .as_ref()
                .is_some_and(|b| b.held() as i64 <= FINE_LIMIT));
        }
    }
    assert!(r.sample.held() <= MAX_ROWS);
    r.finish(&summary, &run).expect("in memory");
    drop(r);
    let page = String::from_utf8(out).expect("UTF-8");
    assert!(page.len() < 2_000_000, "page of {} bytes", page.len());
    assert_eq!(page.matches("<tr data-cause=").count(), 4 * 200);
    assert!(page.contains(r#"data-total="300000""#));
    let numbers = chart_numbers(&page);
    assert_eq!(numbers.len(), 4, "{numbers:?}");
    for (slug, total, rects, legend) in numbers {
        assert_eq!((total, rects, legend), (n / 4, n / 4, n / 4), "{slug}");
    }
    // Three days: the bars are an hour wide.
    assert!(page.contains(r#"data-bar-ms="3600000""#));
}

#[test]
fn the_chart_has_one_series_per_cause_with_exact_counts() {
    let mut failures = Vec::new();
    let plan = [
        (Cause::ReadTimeout, 0, 3),
        (Cause::InvalidResponse, 20, 1),
        (Cause::FpmNotRunning, 40, 5),
        (Cause::SocketPermissionDenied, 50, 2),
    ];
    for (cause, at_s, k) in plan {
        for j in 0..k {
            let f = failure(
                T0 + (at_s + j) * 1000,
                "GET /x HTTP/1.1",
                "unix:/s",
                "l",
                "e.log",
            );
            failures.push(classified(f, cause, "r", "f"));
        }
    }
    let (page, summary) = render(&failures, &run_info("e.log", Markers::default()));
    let numbers = chart_numbers(&page);
    assert_eq!(numbers.len(), summary.causes.len());
    for (slug, total, rects, legend) in &numbers {
        let want = summary
            .causes
            .values()
            .find(|c| c.cause.slug() == slug)
            .map(|c| c.count)
            .expect("a cause of the summary");
        assert_eq!((*total, *rects, *legend), (want, want, want), "{slug}");
    }
    // 53 s of failures: one bar per second.
    assert!(page.contains(r#"data-bar-ms="1000""#));
    assert_eq!(page.matches("<tr data-cause=").count(), 11);
}

#[test]
fn markers_near_the_failures_are_drawn_and_counted() {
    let mut m = Markers::default();
    for (at, line) in [
        (T0 - 2_000, "[22-Nov-2026 23:59:58] NOTICE: Terminating ..."),
        (
            T0 - 2_000,
            "[22-Nov-2026 23:59:58] NOTICE: exiting, bye-bye!",
        ),
        // FPM back 40 s after the last failure: the chart shows it.
        (
            T0 + 59_000,
            "[23-Nov-2026 00:00:59] NOTICE: ready to handle connections",
        ),
        // Hours later: not on the chart, in the table.
        (
            T0 + 7_200_000,
            "[23-Nov-2026 02:00:00] NOTICE: Reloading in progress ...",
        ),
    ] {
        let parsed = fpm::parse_line(line).expect("an FPM line");
        m.fpm(&Timed {
            at: Some(EpochMs(at)),
            boot_secs: None,
            evidence: Evidence::new(EvidenceSource::Fpm, &Arc::from("php-fpm.log"), 1, line),
            event: parsed.event,
        });
    }
    let failures: Vec<Classified> = (0..20)
        .map(|i| {
            let f = failure(T0 + i * 1000, "GET / HTTP/1.1", "unix:/s", "l", "e.log");
            classified(f, Cause::FpmNotRunning, "r", "f")
        })
        .collect();
    let (page, _) = render(&failures, &run_info("e.log", m));
    assert_eq!(page.matches(r#"<g class="marker mk-fpm-stop""#).count(), 1);
    assert_eq!(page.matches(r#"<g class="marker mk-fpm-start""#).count(), 1);
    assert_eq!(
        page.matches(r#"<g class="marker mk-fpm-reload""#).count(),
        0
    );
    assert!(page.contains("1 more event(s)"));
    assert_eq!(page.matches(r#"<tr data-kind="#).count(), 3);
}

#[test]
fn failures_without_a_date_are_counted_not_charted() {
    let dated = failure(T0, "GET /a HTTP/1.1", "unix:/s", "l", "e.log");
    let mut undated = failure(T0, "GET /b HTTP/1.1", "unix:/s", "l", "e.log");
    undated.time_known = false;
    let failures = [
        classified(dated, Cause::FpmNotRunning, "r", "f"),
        classified(undated, Cause::FpmNotRunning, "r", "f"),
    ];
    let (page, _) = render(&failures, &run_info("e.log", Markers::default()));
    let numbers = chart_numbers(&page);
    // The chart has the dated one; legend and section count both.
    assert_eq!(numbers, [("fpm-not-running".to_string(), 1, 1, 2)]);
    assert!(page.contains("1 failed request(s) had no date in any input"));
    assert!(page.contains("(1 without any date)"));
    assert!(page.contains("<dt>Time unknown</dt><dd>1</dd>"));
    assert_eq!(
        page.matches(r#"<tr data-cause="fpm-not-running"><td class="nowrap">unknown</td>"#)
            .count(),
        1
    );

    // None dated: no chart, the header says so.
    let mut only = failure(T0, "GET /c HTTP/1.1", "unix:/s", "l", "e.log");
    only.time_known = false;
    let (page, _) = render(
        &[classified(only, Cause::Unknown, "r", "f")],
        &run_info("e.log", Markers::default()),
    );
    assert!(page.contains("When is unknown: the lines have no dates"));
    assert!(!page.contains(r#"<svg class="timeline""#));
}

#[test]
fn no_failures_is_a_page_too() {
    let (page, _) = render(&[], &run_info("e.log", hostile_markers()));
    assert!(page.contains("No 502/504 responses were found in the inputs"));
    assert!(!page.contains("<svg class=\"timeline\""));
    assert!(page.contains(r#"id="events""#));
    assert!(page.ends_with("</html>\n"));
}

#[test]
fn durations_and_numbers_read_well() {
    assert_eq!(duration(350), "350 ms");
    assert_eq!(duration(8_000), "8 s");
    assert_eq!(duration(250_000), "4 min 10 s");
    assert_eq!(duration(7_500_000), "2 h 5 min");
    assert_eq!(duration(3 * 86_400_000), "3 days");
    assert_eq!(thousands(1_234_567), "1,234,567");
    assert_eq!(thousands(12), "12");
}
