//! Headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`), to check pages the analyzer writes as a browser sees them:
//! evaluate script in the page (the DOM after parsing), read the console, take a
//! full-page screenshot, measure DOMContentLoaded, and prove that no request left
//! the machine.
//!
//! The browser runs with a fresh profile and background networking off; host names
//! resolve nowhere (`--host-resolver-rules`) and every request goes to a local port
//! that refuses (`--proxy-server`), so nothing can leave the machine, the page's
//! requests nor the browser's own (Chromium still tries a few: component updates,
//! sign-in). Whether the page tried is read from two independent records: the page's
//! network events (ChromeDriver's performance log) and Chromium's NetLog of the
//! whole browser (`--log-net-log`), where each request names its initiator.
//!
//! The WebDriver protocol is JSON over HTTP/1.1 on a loopback port: spoken here with
//! a plain `TcpStream`, one request per connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::net::{free_port, RefusedPort};
use crate::proc::ProcGuard;

/// The browser binary ChromeDriver starts (Debian's wrapper script execs it).
const CHROMIUM: [&str; 2] = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"];
const CHROMEDRIVER: [&str; 2] = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

/// Environment variables naming another browser or driver binary (only that one
/// is then tried).
pub const CHROMIUM_ENV: &str = "GATELOG_E2E_CHROMIUM";
pub const CHROMEDRIVER_ENV: &str = "GATELOG_E2E_CHROMEDRIVER";

/// Why the browser tests cannot run here (reported as ignored), or the binaries.
pub fn find() -> Result<(PathBuf, PathBuf), String> {
    let pick = |env: &str, c: &[&str]| match std::env::var_os(env).filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => c.iter().map(PathBuf::from).find(|p| p.is_file()),
    };
    match (pick(CHROMIUM_ENV, &CHROMIUM), pick(CHROMEDRIVER_ENV, &CHROMEDRIVER)) {
        (Some(b), Some(d)) => Ok((b, d)),
        (None, _) => Err(format!("chromium is not installed (apt-get install chromium chromium-driver; scripts/setup installs both; or name it in {CHROMIUM_ENV})")),
        (_, None) => Err(format!("chromedriver is not installed (apt-get install chromium-driver; scripts/setup installs it; or name it in {CHROMEDRIVER_ENV})")),
    }
}

/// One browser session.
pub struct Browser {
    _driver: ProcGuard,
    _proxy: RefusedPort,
    port: u16,
    session: String,
    pub netlog: PathBuf,
}

/// What the browser logged while showing a page.
#[derive(Debug, Default)]
pub struct PageLog {
    /// Console messages and page errors at level SEVERE.
    pub errors: Vec<String>,
    /// URLs of every request the page made.
    pub requests: Vec<String>,
}

/// One WebDriver call: `method path` with an optional JSON body; returns `value`.
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("connecting to chromedriver on port {port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| format!("socket timeout: {e}"))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("writing to chromedriver: {e}"))?;
    // ChromeDriver keeps the connection open: read the header, then as many bytes
    // as it announces (or chunks up to the last one).
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let read_err = |e: std::io::Error| format!("reading from chromedriver ({method} {path}): {e}");
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            return Err(format!(
                "chromedriver closed the connection during {method} {path}"
            ));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut payload = raw[split + 4..].to_vec();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let complete = match length {
            Some(n) => payload.len() >= n,
            None if chunked => payload.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        let n = s.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        payload.extend_from_slice(&buf[..n]);
    }
    if chunked {
        payload = dechunk(&payload)?;
    }
    let v: Value = serde_json::from_slice(&payload).map_err(|e| {
        format!(
            "chromedriver's answer to {method} {path} is not JSON ({e}): {}",
            String::from_utf8_lossy(&payload[..payload.len().min(500)])
        )
    })?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if let Some(err) = value.get("error").and_then(Value::as_str) {
        return Err(format!(
            "chromedriver {method} {path}: {err}: {}",
            value.get("message").and_then(Value::as_str).unwrap_or("")
        ));
    }
    Ok(value)
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked encoding")?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size_text:?}: {e}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium with a fresh profile in `dir`.
    pub fn start(dir: &Path) -> Result<Browser, String> {
        let (chromium, chromedriver) = find()?;
        std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let port = free_port()?;
        let mut cmd = Command::new(&chromedriver);
        cmd.arg(format!("--port={port}"));
        let driver = ProcGuard::spawn("chromedriver", cmd, &dir.join("chromedriver.log"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while call(port, "GET", "/status", None).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "chromedriver did not answer on port {port} within 20 s:\n{}",
                    std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let refused = RefusedPort::new()?;
        let profile = dir.join("profile");
        let netlog = dir.join("netlog.json");
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--disable-domain-reliability".into(),
            "--disable-client-side-phishing-detection".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--hide-scrollbars".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--log-net-log={}", netlog.display()),
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter,AutofillServerCommunication".into(),
            // Nothing resolves, and every request goes to a local port that refuses:
            // whatever the page or the browser asks for, nothing leaves the machine.
            "--host-resolver-rules=MAP * ~NOTFOUND".into(),
            format!("--proxy-server=http://127.0.0.1:{}", refused.port),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
                "perfLoggingPrefs": {"enableNetwork": true, "enablePage": false},
            },
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
        }}});
        let v = call(port, "POST", "/session", Some(&caps))?;
        let session = v
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no sessionId in {v}"))?
            .to_string();
        Ok(Browser {
            _driver: driver,
            _proxy: refused,
            port,
            session,
            netlog,
        })
    }

    fn s(&self, method: &str, rest: &str, body: Option<&Value>) -> Result<Value, String> {
        call(
            self.port,
            method,
            &format!("/session/{}{rest}", self.session),
            body,
        )
    }

    /// Loads `path` (a local file) and waits for the load event.
    pub fn open(&self, path: &Path) -> Result<(), String> {
        let url = format!("file://{}", path.display());
        self.s("POST", "/url", Some(&json!({ "url": url })))
            .map(|_| ())
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub fn eval(&self, script: &str) -> Result<Value, String> {
        self.s(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": []})),
        )
    }

    /// A Chrome DevTools command.
    fn cdp(&self, cmd: &str, params: Value) -> Result<Value, String> {
        self.s(
            "POST",
            "/goog/cdp/execute",
            Some(&json!({"cmd": cmd, "params": params})),
        )
    }

    /// Screenshot of the whole page (not only the window) as PNG; returns its size.
    pub fn screenshot(&self, out: &Path, width: u32) -> Result<(u32, u32), String> {
        let h = self
            .eval("return Math.ceil(document.documentElement.scrollHeight);")?
            .as_u64()
            .unwrap_or(900) as u32;
        let v = self.cdp(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": width, "height": h, "scale": 1}}),
        )?;
        let data = v
            .get("data")
            .and_then(Value::as_str)
            .ok_or("no screenshot data")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("screenshot is not base64: {e}"))?;
        std::fs::write(out, &png).map_err(|e| format!("writing {}: {e}", out.display()))?;
        png_size(&png).ok_or_else(|| format!("{} is not a PNG", out.display()))
    }

    /// Emulates a CSS media type (`print`, `screen`, or "" for the default) and
    /// `prefers-color-scheme` (`light`, `dark`, or "" for the default).
    pub fn emulate(&self, media: &str, scheme: &str) -> Result<(), String> {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"media": media,
                   "features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .map(|_| ())
    }

    /// Sets the window's size (the viewport of screenshots and layout).
    pub fn resize(&self, width: u32, height: u32) -> Result<(), String> {
        self.s(
            "POST",
            "/window/rect",
            Some(&json!({"width": width, "height": height})),
        )
        .map(|_| ())
    }

    /// Console errors and network requests since the last call.
    pub fn page_log(&self) -> Result<PageLog, String> {
        let mut log = PageLog::default();
        let browser = self.s("POST", "/se/log", Some(&json!({"type": "browser"})))?;
        for e in browser.as_array().into_iter().flatten() {
            if e.get("level").and_then(Value::as_str) == Some("SEVERE") {
                log.errors.push(
                    e.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                );
            }
        }
        let perf = self.s("POST", "/se/log", Some(&json!({"type": "performance"})))?;
        for e in perf.as_array().into_iter().flatten() {
            let Some(msg) = e.get("message").and_then(Value::as_str) else {
                continue;
            };
            let Ok(m) = serde_json::from_str::<Value>(msg) else {
                continue;
            };
            if m["message"]["method"] == "Network.requestWillBeSent" {
                if let Some(url) = m["message"]["params"]["request"]["url"].as_str() {
                    log.requests.push(url.to_string());
                }
            }
        }
        Ok(log)
    }

    /// Ends the session (Chromium exits and completes its NetLog).
    pub fn quit(self) -> Result<PathBuf, String> {
        self.s("DELETE", "", None)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        // The NetLog is closed (its final `]}` written) when the browser exits.
        loop {
            let text = std::fs::read_to_string(&self.netlog).unwrap_or_default();
            if text.trim_end().ends_with('}') {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} was not completed within 10 s of the browser's exit",
                    self.netlog.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(self.netlog.clone())
    }
}

/// Width and height from a PNG's IHDR.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

/// Whether a URL stays on this machine: the page's own file, inline data, the
/// browser's internal pages.
pub fn is_local_url(url: &str) -> bool {
    [
        "file:",
        "data:",
        "about:",
        "chrome:",
        "chrome-extension:",
        "blob:",
    ]
    .iter()
    .any(|p| url.starts_with(p))
}

/// Network destinations in a NetLog, split by who asked.
#[derive(Debug, Default)]
pub struct Destinations {
    /// Non-local URLs requested on behalf of a `file://` page (its subresources,
    /// fetches, navigations it starts): requests a report must never make.
    pub by_page: Vec<String>,
    /// What the browser itself tried (component updates, sign-in, network time, the
    /// IPv6 reachability probe): not the page's doing, and with no name resolving
    /// and every request sent to a closed local proxy, nothing of it left the
    /// machine either.
    pub by_browser: Vec<String>,
}

/// Reads a NetLog. A URL request belongs to a page when the page is its initiator
/// (a `file://` page's origin is opaque: `null`) or its network isolation key is the
/// page's site; the browser's own requests have no origin (`not an origin`).
pub fn netlog_destinations(netlog: &Path) -> Result<Destinations, String> {
    let text = std::fs::read_to_string(netlog)
        .map_err(|e| format!("reading {}: {e}", netlog.display()))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not JSON: {e}", netlog.display()))?;
    let types: std::collections::HashMap<u64, String> = v["constants"]["logEventTypes"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, n)| Some((n.as_u64()?, k.clone())))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Destinations::default();
    for e in v["events"].as_array().into_iter().flatten() {
        let kind = e["type"]
            .as_u64()
            .and_then(|t| types.get(&t))
            .map(String::as_str)
            .unwrap_or("?");
        let p = &e["params"];
        if kind == "URL_REQUEST_START_JOB" {
            let Some(url) = p["url"].as_str() else {
                continue;
            };
            if is_local_url(url) {
                continue;
            }
            let initiator = p["initiator"].as_str().unwrap_or("not an origin");
            let key = p["network_isolation_key"].as_str().unwrap_or("");
            if initiator != "not an origin" || key.contains("file://") {
                out.by_page.push(format!("{url} (initiator {initiator})"));
            } else {
                out.by_browser
                    .push(url.split('?').next().unwrap_or(url).to_string());
            }
        } else if kind == "TCP_CONNECT" || kind == "UDP_CONNECT" {
            if let Some(a) = p["address"].as_str() {
                out.by_browser.push(format!("{kind} {a}"));
            }
        }
    }
    for l in [&mut out.by_page, &mut out.by_browser] {
        l.sort();
        l.dedup();
    }
    Ok(out)
}
