//! The protocol NGINX spoke to an upstream.
//!
//! The seven causes gatelog explains are PHP-FPM causes: they only apply to FastCGI
//! upstreams. NGINX says which protocol it used in three places, all kept here so the
//! module, the analyzer and the configs agree: the scheme of the error log's
//! `upstream: "fastcgi://unix:/run/php.sock:"` context (`u->schema`), the handler
//! directive in the configuration (`fastcgi_pass`, `proxy_pass http://...`), and the
//! record's `upstream_protocol`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Fastcgi,
    Http,
    Https,
    Uwsgi,
    Scgi,
    Grpc,
    /// Not said by any input (a record of an older module, an error line cut before
    /// its `upstream:` context, a line pasted without it).
    #[serde(other)]
    Unknown,
}

impl Protocol {
    pub const ALL: [Protocol; 7] = [
        Protocol::Fastcgi,
        Protocol::Http,
        Protocol::Https,
        Protocol::Uwsgi,
        Protocol::Scgi,
        Protocol::Grpc,
        Protocol::Unknown,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Protocol::Fastcgi => "fastcgi",
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Uwsgi => "uwsgi",
            Protocol::Scgi => "scgi",
            Protocol::Grpc => "grpc",
            Protocol::Unknown => "unknown",
        }
    }

    /// From a URL scheme as NGINX prints it (`u->schema` without `://`). The TLS
    /// variants of uwsgi and gRPC (`suwsgi`, `grpcs`) are the same protocol to gatelog.
    pub fn from_scheme(scheme: &str) -> Protocol {
        match scheme.to_ascii_lowercase().as_str() {
            "fastcgi" => Protocol::Fastcgi,
            "http" => Protocol::Http,
            "https" => Protocol::Https,
            "uwsgi" | "suwsgi" => Protocol::Uwsgi,
            "scgi" => Protocol::Scgi,
            "grpc" | "grpcs" => Protocol::Grpc,
            _ => Protocol::Unknown,
        }
    }

    /// From an `upstream:` context value or any `scheme://address` text; `Unknown`
    /// when there is no scheme.
    pub fn from_upstream_value(value: &str) -> Protocol {
        match value.trim().split_once("://") {
            Some((scheme, _)) => Protocol::from_scheme(scheme),
            None => Protocol::Unknown,
        }
    }

    /// From the directive that hands a location to an upstream, and its argument
    /// (`proxy_pass https://x` is HTTPS; `grpc_pass grpcs://x` is gRPC).
    pub fn from_pass_directive(directive: &str, arg: &str) -> Option<Protocol> {
        Some(match directive {
            "fastcgi_pass" => Protocol::Fastcgi,
            "uwsgi_pass" => Protocol::Uwsgi,
            "scgi_pass" => Protocol::Scgi,
            "grpc_pass" => Protocol::Grpc,
            "proxy_pass" => match Protocol::from_upstream_value(arg) {
                Protocol::Https => Protocol::Https,
                _ => Protocol::Http,
            },
            _ => return None,
        })
    }

    /// Whether PHP-FPM (or another FastCGI server) answered: only then do the seven
    /// causes apply directly.
    pub fn is_fastcgi(self) -> bool {
        self == Protocol::Fastcgi
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.slug())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_as_nginx_prints_them() {
        // Values copied from real error lines.
        let cases = [
            (
                "fastcgi://unix:/run/php/php8.2-fpm.sock:",
                Protocol::Fastcgi,
            ),
            ("fastcgi://127.0.0.1:9000", Protocol::Fastcgi),
            ("http://127.0.0.1:3000/api/users", Protocol::Http),
            ("http://unix:/tmp/gunicorn.sock:/", Protocol::Http),
            ("https://10.0.0.5:443/", Protocol::Https),
            ("uwsgi://unix:/run/uwsgi/app/x/socket:", Protocol::Uwsgi),
            ("suwsgi://10.0.0.1:3031", Protocol::Uwsgi),
            ("scgi://127.0.0.1:4000", Protocol::Scgi),
            ("grpc://127.0.0.1:50051", Protocol::Grpc),
            ("grpcs://127.0.0.1:50051", Protocol::Grpc),
            ("unix:/run/php/php8.2-fpm.sock", Protocol::Unknown),
            ("127.0.0.1:9000", Protocol::Unknown),
            ("gopher://x", Protocol::Unknown),
        ];
        for (v, p) in cases {
            assert_eq!(Protocol::from_upstream_value(v), p, "{v}");
        }
    }

    #[test]
    fn pass_directives() {
        assert_eq!(
            Protocol::from_pass_directive("fastcgi_pass", "unix:/x"),
            Some(Protocol::Fastcgi)
        );
        assert_eq!(
            Protocol::from_pass_directive("proxy_pass", "https://backend"),
            Some(Protocol::Https)
        );
        assert_eq!(
            Protocol::from_pass_directive("proxy_pass", "http://backend"),
            Some(Protocol::Http)
        );
        assert_eq!(
            Protocol::from_pass_directive("proxy_pass", "$upstream_var"),
            Some(Protocol::Http)
        );
        assert_eq!(Protocol::from_pass_directive("root", "/x"), None);
    }

    #[test]
    fn slugs_round_trip_through_serde() {
        for p in Protocol::ALL {
            let j = serde_json::to_string(&p).unwrap();
            assert_eq!(j, format!("\"{}\"", p.slug()));
            assert_eq!(serde_json::from_str::<Protocol>(&j).unwrap(), p);
        }
        assert_eq!(
            serde_json::from_str::<Protocol>("\"spdy\"").unwrap(),
            Protocol::Unknown
        );
    }
}
