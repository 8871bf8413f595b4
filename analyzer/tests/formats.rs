//! The three report formats, run through the binary, and the exit statuses. The JSON
//! report is checked against docs/gatelog.report.v2.schema.json by the `jsonschema`
//! crate, the validator the end-to-end tests use too.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(dir: &str) -> String {
    root()
        .join("tests/fixtures/guide")
        .join(dir)
        .display()
        .to_string()
}

fn gatelog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatelog"))
        .args(args)
        .output()
        .expect("run gatelog")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A report read as each failure whole (its shared texts put back in place).
fn whole(json: &str) -> Value {
    let mut report: Value = serde_json::from_str(json).expect("JSON report");
    gatelog_analyzer::report::shared::inline(&mut report);
    report
}

/// The report schema, compiled.
fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("../docs/gatelog.report.v2.schema.json"))
        .expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

/// Every violation of the report schema, as `<JSON pointer>: <what is wrong>`.
fn violations(report: &Value) -> Vec<String> {
    schema()
        .iter_errors(report)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

#[test]
fn json_report_matches_its_schema() {
    for dir in [
        "1-fpm-not-running",
        "3-wrong-socket-path",
        "6-worker-oom-killed",
        "7-invalid-response",
    ] {
        let o = gatelog(&[
            "analyze",
            "--format",
            "json",
            "--tz",
            "Europe/Berlin",
            &fixture(dir),
        ]);
        assert_eq!(o.status.code(), Some(0));
        let mut report: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
        let errors = violations(&report);
        assert!(errors.is_empty(), "{dir}: {errors:#?}");
        assert_eq!(report["schema"], "gatelog.report.v2");
        // What the schema cannot say: every index names an entry of its table.
        let len = |t: &str| report[t].as_array().map_or(0, Vec::len) as u64;
        for f in report["failures"].as_array().unwrap() {
            assert!(f["reason"].as_u64().unwrap() < len("reasons"), "{dir}: {f}");
            assert!(f["fix"].as_u64().unwrap() < len("fixes"), "{dir}: {f}");
            for i in f["evidence"].as_array().unwrap() {
                assert!(i.as_u64().unwrap() < len("lines"), "{dir}: {f}");
            }
        }
        gatelog_analyzer::report::shared::inline(&mut report);
        // The fields the end-to-end tests rely on.
        let f = &report["failures"][0];
        for key in [
            "time",
            "conn",
            "request_id",
            "status",
            "peer",
            "cause",
            "confidence",
            "evidence",
            "fix",
        ] {
            assert!(f.get(key).is_some(), "{dir}: failures[0].{key}");
        }
        assert!(f["evidence"][0]["file"].as_str().unwrap().ends_with(".log"));
        assert_eq!(report["time"]["tz"], "Europe/Berlin");
        assert_eq!(report["time"]["tz_source"], "--tz");
        let causes = report["causes"].as_array().unwrap();
        let total: u64 = causes.iter().map(|c| c["count"].as_u64().unwrap()).sum();
        assert_eq!(total as usize, report["failures"].as_array().unwrap().len());
    }
}

#[test]
fn a_broken_report_fails_the_validator() {
    // The validator must be able to fail, or the test above proves nothing.
    let o = gatelog(&[
        "analyze",
        "--format",
        "json",
        &fixture("6-worker-oom-killed"),
    ]);
    let mut report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        violations(&report).is_empty(),
        "the unbroken report is valid"
    );
    report["failures"][0]["cause"] = Value::from("oom");
    report["failures"][0].as_object_mut().unwrap().remove("fix");
    let errors = violations(&report);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors.iter().any(|e| e.starts_with("/failures/0/cause:")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("/failures/0:") && e.contains("fix")),
        "{errors:#?}"
    );
}

#[test]
fn time_zone_is_applied_and_reported() {
    let o = gatelog(&[
        "analyze",
        "--format",
        "json",
        "--tz",
        "Europe/Berlin",
        &fixture("2-socket-permission-denied"),
    ]);
    let report = whole(&stdout(&o));
    // 14:23:17 local in Berlin (CEST) is 12:23:17Z; shown with its offset.
    assert_eq!(
        report["failures"][0]["time"],
        "2026-04-02T14:23:17.000+02:00"
    );
}

#[test]
fn text_report() {
    let o = gatelog(&["analyze", &fixture("6-worker-oom-killed")]);
    assert_eq!(o.status.code(), Some(0));
    let t = stdout(&o);
    assert!(t.contains("worker-oom-killed"), "{t}");
    assert!(t.contains("1 failure(s)"), "{t}");
    assert!(t.contains("dmesg.txt:1"), "{t}");
    assert!(t.contains("php8.2-fpm.log:1"), "{t}");
    assert!(t.contains("fix: "), "{t}");
    assert!(t.contains("pid 28491 used 1024 MB"), "{t}");
    assert!(t.contains("kernel times: pid 28491"), "{t}");
}

#[test]
fn markdown_report() {
    let o = gatelog(&[
        "analyze",
        "--format",
        "markdown",
        &fixture("3-wrong-socket-path"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let m = stdout(&o);
    for needle in [
        "# Post-incident report",
        "## Summary",
        "## Timeline",
        "## 3. Wrong socket path in the NGINX config (`wrong-socket-path`)",
        "**Fix:**",
        "fastcgi_pass unix:/run/php/php8.2-fpm.sock;",
        "## Inputs",
        "| Cause | Failures |",
    ] {
        assert!(m.contains(needle), "missing {needle:?} in:\n{m}");
    }
}

#[test]
fn exit_statuses() {
    // Bad usage: 2.
    assert_eq!(
        gatelog(&[
            "analyze",
            "--format",
            "yaml",
            &fixture("7-invalid-response")
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(gatelog(&["analyze"]).status.code(), Some(2));
    assert_eq!(
        gatelog(&[
            "analyze",
            "--tz",
            "Mars/Olympus",
            &fixture("7-invalid-response")
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(gatelog(&["frobnicate"]).status.code(), Some(2));
    // Unreadable input: 1, named.
    let o = gatelog(&["analyze", "/nonexistent/error.log"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/error.log"));
    // Ran, found nothing: 0.
    let empty = std::env::temp_dir().join(format!("gatelog-empty-{}.log", std::process::id()));
    std::fs::write(
        &empty,
        "2026/04/02 14:23:17 [notice] 1#1: signal process started\n",
    )
    .unwrap();
    let o = gatelog(&["analyze", "--format", "json", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let report = whole(&stdout(&o));
    assert_eq!(report["failures"].as_array().unwrap().len(), 0);
    std::fs::remove_file(&empty).ok();
}

#[test]
fn lines_not_understood_are_counted_and_shown() {
    let dir = std::env::temp_dir().join(format!("gatelog-junk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("error.log");
    std::fs::write(
        &log,
        "2026/04/02 14:23:17 [crit] 1#1: *1 connect() to unix:/x.sock failed (13: Permission denied) while connecting to upstream, client: 1.2.3.4, server: a, upstream: \"fastcgi://unix:/x.sock:\"\n\
         garbage before the next entry? no: a continuation line\n\
         2026/04/02 14:23:18 [bogus] 1#1: *2 not a level\n\
         \u{0}\u{1}binary\n",
    )
    .unwrap();
    let o = gatelog(&[
        "analyze",
        "--format",
        "json",
        "--nginx-log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let report = whole(&stdout(&o));
    let input = &report["inputs"][0];
    assert_eq!(input["detected_by"], "flag");
    assert_eq!(input["lines_read"], 4);
    assert_eq!(input["lines_not_understood"], 1, "{input}");
    assert_eq!(input["not_understood_examples"][0]["line"], 3);
    assert_eq!(report["failures"][0]["cause"], "socket-permission-denied");
    std::fs::remove_dir_all(&dir).ok();
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gatelog-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn guide_formula_for_max_children_with_the_users_memory() {
    // The guide's example: 16 GB, 4 GB reserved, 80 MB workers -> 153.
    let o = gatelog(&[
        "analyze",
        "--format",
        "json",
        "--ram-mb",
        "16384",
        "--reserved-mb",
        "4096",
        "--worker-mb",
        "80",
        &fixture("4-max-children-exhausted"),
    ]);
    let report = whole(&stdout(&o));
    let fix = report["failures"][0]["fix"].as_str().unwrap();
    assert!(fix.contains("= 153"), "{fix}");
    assert!(fix.contains("now 5"), "{fix}");
}

#[test]
fn since_and_until_bound_the_failures() {
    let dir = fixture("1-fpm-not-running");
    let count = |extra: &[&str]| {
        let mut args = vec!["analyze", "--format", "json", "--tz", "UTC"];
        args.extend_from_slice(extra);
        args.push(&dir);
        let report = whole(&stdout(&gatelog(&args)));
        (
            report["failures"].as_array().unwrap().len(),
            report["summary"]["outside_window"].as_u64().unwrap(),
        )
    };
    assert_eq!(count(&[]), (2, 0));
    assert_eq!(count(&["--since", "2026-04-02 14:23:18"]), (0, 2));
    assert_eq!(count(&["--until", "2026-04-02T14:23:17Z"]), (2, 0));
    assert_eq!(count(&["--until", "2026-04-02 14:00:00"]), (0, 2));
}

#[test]
fn rotated_and_compressed_inputs_in_a_directory() {
    use std::io::Write;
    let src = root().join("tests/fixtures/guide/6-worker-oom-killed");
    let dir = temp_dir("rotated");
    // error.log.1 (plain) and php8.2-fpm.log.2.gz (gzip), dmesg as is.
    std::fs::copy(src.join("error.log"), dir.join("error.log.1")).unwrap();
    std::fs::copy(src.join("dmesg.txt"), dir.join("dmesg.txt")).unwrap();
    let fpm = std::fs::read(src.join("php8.2-fpm.log")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&fpm).unwrap();
    std::fs::write(dir.join("php8.2-fpm.log.2.gz"), gz.finish().unwrap()).unwrap();
    let o = gatelog(&["analyze", "--format", "json", dir.to_str().unwrap()]);
    let report = whole(&stdout(&o));
    assert_eq!(
        report["failures"][0]["cause"], "worker-oom-killed",
        "{report}"
    );
    let kinds: Vec<_> = report["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["kernel", "nginx-error", "fpm"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn record_error_line_and_access_entry_are_one_failure() {
    let dir = temp_dir("join");
    std::fs::write(
        dir.join("gatelog.jsonl"),
        r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.120+00:00","pid":1234,"conn":5678,"request_id":"abc","status":502,"origin":"nginx","recovered":false,"client":"10.0.0.1","server":"example.com","host":"example.com","method":"GET","uri":"/","protocol":"HTTP/1.1","request_time_ms":3,"upstream":"unix:/run/php/php8.2-fpm.sock","attempts":[{"peer":"unix:/run/php/php8.2-fpm.sock","phase":"connect","errno":13,"errno_name":"EACCES","error":"Permission denied","event":"connect_failed","message":"connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied)","level":"crit","status":502,"connect_ms":null,"header_ms":null,"response_ms":null}],"timeouts_ms":{"connect":60000,"send":60000,"read":60000},"fastcgi_stderr":null}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("error.log"),
        "2026/04/02 14:23:17 [crit] 1234#1234: *5678 connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied) while connecting to upstream, client: 10.0.0.1, server: example.com, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"example.com\"\n\
         2026/04/02 14:23:40 [crit] 1234#1234: *5678 connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied) while connecting to upstream, client: 10.0.0.1, server: example.com, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"example.com\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("access.json"),
        "{\"msec\":\"1775139797.121\",\"status\":\"502\",\"request_id\":\"abc\",\"connection\":\"5678\",\"request\":\"GET / HTTP/1.1\"}\n\
         {\"msec\":\"1775139820.001\",\"status\":\"502\",\"request_id\":\"def\",\"connection\":\"5678\",\"request\":\"GET / HTTP/1.1\"}\n",
    )
    .unwrap();
    let o = gatelog(&[
        "analyze",
        "--format",
        "json",
        "--tz",
        "UTC",
        dir.to_str().unwrap(),
    ]);
    let report = whole(&stdout(&o));
    let failures = report["failures"].as_array().unwrap();
    // The first request was seen three times, the second (23 s later, same
    // keepalive connection) twice.
    assert_eq!(failures.len(), 2, "{report:#}");
    assert_eq!(failures[0]["request_id"], "abc");
    assert_eq!(
        failures[0]["seen_in"],
        serde_json::json!(["record", "error_log", "access_log"])
    );
    assert_eq!(failures[1]["request_id"], "def");
    assert_eq!(failures[1]["status_inferred"], false);
    assert_eq!(report["summary"]["joined_lines"], 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn configs_read_through_includes_match_the_schema() {
    // Included files get their own input rows (`detected_by: include`), a missing one
    // a row with its error, a glob matching nothing a `skipped` entry.
    let dir = temp_dir("includes");
    let nginx = dir.join("nginx/nginx.conf");
    std::fs::create_dir_all(dir.join("nginx/sites-enabled")).unwrap();
    std::fs::write(
        &nginx,
        "http {\n    include sites-enabled/*;\n    include conf.d/*.conf;\n    include missing.conf;\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("nginx/sites-enabled/app"),
        "server {\n    location ~ \\.php$ { fastcgi_pass unix:/run/php/php7.2-fpm.sock; }\n}\n",
    )
    .unwrap();
    let error = root().join("tests/fixtures/conf/php-version/error.log");
    let o = gatelog(&[
        "analyze",
        "--format",
        "json",
        nginx.to_str().unwrap(),
        error.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let errors = violations(&report);
    assert!(errors.is_empty(), "{errors:#?}");
    let inputs = report["inputs"].as_array().unwrap();
    let by = |suffix: &str| {
        inputs
            .iter()
            .find(|i| i["file"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} in {inputs:#?}"))
    };
    assert_eq!(by("sites-enabled/app")["detected_by"], "include");
    assert_eq!(by("sites-enabled/app")["lines_used"], 1);
    assert!(by("missing.conf")["error"]
        .as_str()
        .unwrap()
        .contains("nginx.conf:4"));
    let skipped = report["skipped"].as_array().unwrap();
    assert!(skipped
        .iter()
        .any(|s| s["file"].as_str().unwrap().ends_with("conf.d/*.conf")));
}
