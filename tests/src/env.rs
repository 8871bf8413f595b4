//! Where things are: the workspace, the two NGINX flavours and their module.

use std::path::{Path, PathBuf};

/// Environment variable that runs the scenarios WITHOUT `load_module` (and without
/// any gatelog directive). Only for checking that the faults are injected for real
/// (NGINX's error log shows the expected errno lines): in that mode every test that
/// would check a record ends as *ignored*, never as passed.
pub const NO_MODULE_ENV: &str = "GATELOG_E2E_NO_MODULE";

/// Environment variable that keeps every test's temporary prefix (normally removed
/// when the test passes; a failing test always keeps its prefix and names it).
pub const KEEP_ENV: &str = "GATELOG_E2E_KEEP";

/// The PHP-FPM binary.
pub const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// docs/gatelog.v1.schema.json.
pub fn schema_path() -> PathBuf {
    workspace_root().join("docs/gatelog.v1.schema.json")
}

/// `true` when [`NO_MODULE_ENV`] is set to something other than "" or "0".
pub fn no_module_mode() -> bool {
    std::env::var(NO_MODULE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// One NGINX build the module is tested in.
#[derive(Debug, Clone)]
pub struct Flavour {
    /// `deb-1.22` or `vendored-1.28`.
    pub name: &'static str,
    /// The NGINX binary.
    pub binary: PathBuf,
    /// Where nginx-build/build.sh puts the module built for this binary.
    pub module: PathBuf,
    /// 1.22 has no `http2 on;` (only `listen ... http2`).
    pub has_http2_directive: bool,
}

impl Flavour {
    /// Both flavours, in a fixed order.
    pub fn all() -> Vec<Flavour> {
        let root = workspace_root();
        let out = root.join("nginx-build/out");
        let pick = |linked: PathBuf, fallback: PathBuf| {
            if linked.exists() {
                linked
            } else {
                fallback
            }
        };
        vec![
            Flavour {
                name: "deb-1.22",
                binary: pick(out.join("deb-1.22/nginx"), PathBuf::from("/usr/sbin/nginx")),
                module: out.join("deb-1.22/ngx_http_gatelog_module.so"),
                has_http2_directive: false,
            },
            Flavour {
                name: "vendored-1.28",
                binary: pick(
                    out.join("vendored-1.28/nginx"),
                    root.join("nginx-build/work/vendored-1.28/objs/nginx"),
                ),
                module: out.join("vendored-1.28/ngx_http_gatelog_module.so"),
                has_http2_directive: true,
            },
        ]
    }

    /// The flavour called `name`.
    pub fn by_name(name: &str) -> Option<Flavour> {
        Flavour::all().into_iter().find(|f| f.name == name)
    }

    /// The module to load, or why there is none. A missing module is a failure of
    /// the test that needs it, never a reason to skip it.
    pub fn module_path(&self) -> Result<PathBuf, String> {
        if self.module.is_file() {
            Ok(self.module.clone())
        } else {
            Err(format!(
                "the gatelog module for {} is not built: {} does not exist \
                 (run `nginx-build/build.sh all` first)",
                self.name,
                self.module.display()
            ))
        }
    }

    /// Checks that the NGINX binary exists.
    pub fn check_binary(&self) -> Result<(), String> {
        if self.binary.is_file() {
            Ok(())
        } else {
            Err(format!(
                "NGINX binary for {} not found at {} (run `nginx-build/build.sh trees`)",
                self.name,
                self.binary.display()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_module_is_an_error_not_a_skip() {
        let mut f = Flavour::all().remove(0);
        f.module = PathBuf::from("/nonexistent/ngx_http_gatelog_module.so");
        let e = f.module_path().expect_err("missing module");
        assert!(
            e.contains("not built") && e.contains("nginx-build/build.sh all"),
            "{e}"
        );
    }

    #[test]
    fn both_flavours_exist() {
        let names: Vec<&str> = Flavour::all().iter().map(|f| f.name).collect();
        assert_eq!(names, ["deb-1.22", "vendored-1.28"]);
        assert!(Flavour::by_name("vendored-1.28").is_some());
    }
}
