//! The gatelog end-to-end suite: every test runs once per NGINX flavour
//! (`<test>::deb-1.22`, `<test>::vendored-1.28`), in parallel. A test the machine
//! cannot run (no writable memory cgroup, kernel log unreadable) is reported as
//! *ignored* with its reason; a missing module is a failure.
//!
//! Environment:
//! - `GATELOG_E2E_NO_MODULE=1`: run the scenarios without `load_module` to check the
//!   fault injection alone (NGINX's error log); record checks end as ignored.
//! - `GATELOG_E2E_KEEP=1`: keep every test's prefix (failing tests always keep theirs).

mod tests;

use std::sync::Arc;

use gatelog_e2e::env::{no_module_mode, Flavour, NO_MODULE_ENV};
use gatelog_e2e::lab::{TestOutcome, TestResult};
use gatelog_e2e::prefix;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// A test body, run once per flavour.
pub type Body = fn(&Flavour) -> TestResult;

/// One test of the suite: its name and its body. Most bodies are plain functions
/// ([`Body`]); a test generated per fault (tests/faults.rs, tests/analyzer.rs) is a
/// closure over its [`gatelog_e2e::scenarios::Fault`].
pub struct Test {
    pub name: String,
    pub body: Arc<dyn Fn(&Flavour) -> TestResult + Send + Sync>,
}

impl Test {
    pub fn new(
        name: impl Into<String>,
        body: impl Fn(&Flavour) -> TestResult + Send + Sync + 'static,
    ) -> Test {
        Test {
            name: name.into(),
            body: Arc::new(body),
        }
    }
}

impl From<(&'static str, Body)> for Test {
    fn from((name, body): (&'static str, Body)) -> Test {
        Test::new(name, body)
    }
}

fn trial(
    name: &str,
    flavour: &Flavour,
    body: Arc<dyn Fn(&Flavour) -> TestResult + Send + Sync>,
) -> Trial {
    let f = flavour.clone();
    let full = format!("{name}::{}", f.name);
    let label = full.clone();
    Trial::ignorable_test(full, move || {
        prefix::defer_removal();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&f)));
        let ok = matches!(result, Ok(Ok(_)));
        let kept = prefix::finish_deferred(ok);
        let where_ = if kept.is_empty() || ok {
            String::new()
        } else {
            format!(
                "\n(test files kept in {})",
                kept.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        match result {
            Ok(Ok(TestOutcome::Passed)) => Ok(Completion::Completed),
            Ok(Ok(TestOutcome::Skipped(why))) => {
                eprintln!("\n*** SKIPPED {label}: {why}\n");
                Ok(Completion::ignored_with(why))
            }
            Ok(Err(e)) => Err(Failed::from(format!("{e}{where_}"))),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                Err(Failed::from(format!("panicked: {msg}{where_}")))
            }
        }
    })
}

fn main() {
    let mut args = Arguments::from_args();
    // The tests mostly wait on timeouts and child processes: run more of them at
    // once than there are cores (override with --test-threads).
    if args.test_threads.is_none() {
        args.test_threads = Some(8);
    }
    if no_module_mode() {
        eprintln!(
            "\n*** {NO_MODULE_ENV} is set: NGINX runs WITHOUT the gatelog module; only the fault \
             injection is checked and every record check is reported as ignored.\n"
        );
    }
    warn_if_stale();
    let mut trials = Vec::new();
    for flavour in Flavour::all() {
        for test in tests::all() {
            trials.push(trial(&test.name, &flavour, test.body));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// Newest modification time of the files under `dir`.
fn newest(dir: &std::path::Path) -> Option<std::time::SystemTime> {
    let mut best = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            newest(&p)
        } else {
            e.metadata().ok().and_then(|m| m.modified().ok())
        };
        best = best.max(t);
    }
    best
}

/// The suite loads the .so that nginx-build/build.sh left; say so loudly when the
/// module's sources are newer (the results would describe an older module).
fn warn_if_stale() {
    let root = gatelog_e2e::env::workspace_root();
    let src = [root.join("ngx-module"), root.join("record/src")]
        .iter()
        .filter_map(|d| newest(d))
        .max();
    for f in Flavour::all() {
        let built = std::fs::metadata(&f.module).and_then(|m| m.modified()).ok();
        if let (Some(built), Some(src)) = (built, src) {
            if src > built {
                eprintln!(
                    "\n*** WARNING: {} is older than the module sources: run `nginx-build/build.sh all` \
                     (these results describe the module as last built)\n",
                    f.module.display()
                );
            }
        }
    }
}
