//! `--format html` through the binary: on the logs of the real fault runs (all eleven
//! together, a mixed incident) the page's chart has one series per cause of the JSON
//! report with its counts, and on the guide's OOM example FPM's and the kernel's
//! lines of one kill are one marker. The browser's view is checked end to end in
//! tests/e2e (html_report_*).

use std::path::PathBuf;
use std::process::Command;

use regex::Regex;
use serde_json::Value;

fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
        .display()
        .to_string()
}

fn analyze(format: &str, dir: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_gatelog"))
        .args(["analyze", "--format", format, "--tz", "UTC", dir])
        .output()
        .expect("run gatelog");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("UTF-8")
}

#[test]
fn the_mixed_real_runs_chart_counts_what_the_json_report_counts() {
    let dir = fixture("real");
    let page = analyze("html", &dir);
    let json: Value = serde_json::from_str(&analyze("json", &dir)).expect("JSON");
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(page.ends_with("</html>\n"));
    let series =
        Regex::new(r#"<g class="series c-[a-z-]+" data-cause="([a-z-]+)" data-total="(\d+)">"#)
            .expect("regex");
    let mut got: Vec<(String, u64)> = series
        .captures_iter(&page)
        .map(|c| (c[1].to_string(), c[2].parse().expect("number")))
        .collect();
    got.sort();
    let mut want: Vec<(String, u64)> = json["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .map(|c| {
            (
                c["cause"].as_str().expect("slug").to_string(),
                c["count"].as_u64().expect("count"),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(want.len(), 7, "the real runs hold all seven causes");
    // Every failure is listed (far below the table's bound).
    let rows = page.matches("<tr data-cause=").count();
    assert_eq!(rows, json["failures"].as_array().expect("failures").len());
}

#[test]
fn an_oom_kill_in_the_fpm_and_kernel_logs_is_one_marker() {
    let page = analyze("html", &fixture("guide/6-worker-oom-killed"));
    let markers =
        Regex::new(r#"<g class="marker mk-([a-z-]+)" data-kind="[a-z-]+" data-count="(\d+)">"#)
            .expect("regex");
    let found: Vec<(String, String)> = markers
        .captures_iter(&page)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    assert_eq!(
        found,
        [("oom-kill".to_string(), "1".to_string())],
        "{found:?}"
    );
    // Its row in the chart's data names both lines.
    let row = Regex::new(r#"<tr data-kind="oom-kill">.*?</tr>"#)
        .expect("regex")
        .find(&page)
        .expect("a row for the OOM kill")
        .as_str();
    assert!(row.contains("dmesg.txt:"), "{row}");
    assert!(row.contains("php8.2-fpm.log:"), "{row}");
}
