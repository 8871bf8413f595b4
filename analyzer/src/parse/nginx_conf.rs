//! NGINX configuration (`nginx -T` output or the files themselves): where requests are
//! passed (`fastcgi_pass`, `proxy_pass`, `upstream {}` servers), the timeouts and
//! buffer sizes, and the worker `user`. Tokenised line by line, so `nginx -T`'s
//! `# configuration file X:` markers give each directive its real file and line.

use std::collections::BTreeMap;

/// A directive with its arguments and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub file: String,
    pub line: u64,
    /// Enclosing blocks, e.g. `http > server > location ~ \.php$`.
    pub context: String,
}

impl Directive {
    pub fn arg(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or("")
    }

    pub fn text(&self) -> String {
        format!("{} {};", self.name, self.args.join(" "))
    }
}

/// What the analyzer needs from an NGINX config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NginxConf {
    /// `fastcgi_pass` / `proxy_pass` / `uwsgi_pass` / `scgi_pass`.
    pub passes: Vec<Directive>,
    /// `upstream NAME {}` -> its `server` directives.
    pub upstreams: BTreeMap<String, Vec<Directive>>,
    /// `*_timeout`, `fastcgi_buffer_size`, `fastcgi_buffers`, ...
    pub tuning: Vec<Directive>,
    /// The `user` directive (who the workers run as).
    pub user: Option<Directive>,
}

impl NginxConf {
    /// The addresses `target` (an address or an upstream group name) resolves to.
    pub fn resolve(&self, target: &str) -> Vec<String> {
        match self.upstreams.get(target) {
            Some(servers) => servers.iter().map(|d| d.arg().to_string()).collect(),
            None => vec![target.to_string()],
        }
    }

    /// The first value of a tuning directive (e.g. `fastcgi_read_timeout`).
    pub fn tuning_value(&self, name: &str) -> Option<&Directive> {
        self.tuning.iter().find(|d| d.name == name)
    }
}

const TUNING: [&str; 11] = [
    "fastcgi_read_timeout",
    "fastcgi_connect_timeout",
    "fastcgi_send_timeout",
    "fastcgi_buffer_size",
    "fastcgi_buffers",
    "fastcgi_busy_buffers_size",
    "proxy_read_timeout",
    "proxy_connect_timeout",
    "proxy_send_timeout",
    "proxy_buffer_size",
    "fastcgi_next_upstream",
];

/// Incremental tokenizer and collector.
#[derive(Debug)]
pub struct NginxConfParser {
    conf: NginxConf,
    file: String,
    /// Line offset of the current file inside `nginx -T` output.
    file_start: u64,
    stack: Vec<String>,
    words: Vec<String>,
    first_line: u64,
}

impl NginxConfParser {
    pub fn new(file: &str) -> NginxConfParser {
        NginxConfParser {
            conf: NginxConf::default(),
            file: file.to_string(),
            file_start: 0,
            stack: Vec::new(),
            words: Vec::new(),
            first_line: 0,
        }
    }

    /// Feeds one physical line. Returns false when the line contains nothing that
    /// fits NGINX config syntax (used for the input's "not understood" count).
    pub fn feed(&mut self, line: &str, line_no: u64) -> bool {
        if let Some(rest) = line.strip_prefix("# configuration file ") {
            self.file = rest.trim_end().trim_end_matches(':').to_string();
            self.file_start = line_no;
            self.words.clear();
            return true;
        }
        if line.starts_with("nginx: ") {
            // `nginx -T` prints its test result lines; not config.
            return true;
        }
        let local_line = line_no - self.file_start;
        let mut chars = line.char_indices().peekable();
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let flush = |word: &mut String, words: &mut Vec<String>, first: &mut u64| {
            if !word.is_empty() {
                if words.is_empty() {
                    *first = local_line;
                }
                words.push(std::mem::take(word));
            }
        };
        while let Some((_, c)) = chars.next() {
            if let Some(q) = quote {
                if c == '\\' {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                } else if c == q {
                    quote = None;
                    // An empty quoted argument is still an argument.
                    if word.is_empty() {
                        word.push_str("\"\"");
                    }
                } else {
                    word.push(c);
                }
                continue;
            }
            match c {
                '#' => break,
                '"' | '\'' => quote = Some(c),
                ' ' | '\t' => flush(&mut word, &mut self.words, &mut self.first_line),
                ';' => {
                    flush(&mut word, &mut self.words, &mut self.first_line);
                    self.directive();
                }
                '{' => {
                    flush(&mut word, &mut self.words, &mut self.first_line);
                    self.stack.push(self.words.join(" "));
                    self.words.clear();
                }
                '}' => {
                    flush(&mut word, &mut self.words, &mut self.first_line);
                    self.words.clear();
                    self.stack.pop();
                }
                _ => word.push(c),
            }
        }
        flush(&mut word, &mut self.words, &mut self.first_line);
        true
    }

    fn directive(&mut self) {
        let mut words = std::mem::take(&mut self.words);
        if words.is_empty() {
            return;
        }
        let name = words.remove(0);
        let d = Directive {
            name,
            args: words,
            file: self.file.clone(),
            line: self.first_line,
            context: self.stack.join(" > "),
        };
        if let Some(upstream) = self.stack.last().and_then(|b| b.strip_prefix("upstream ")) {
            if d.name == "server" {
                self.conf
                    .upstreams
                    .entry(upstream.trim().to_string())
                    .or_default()
                    .push(d);
            }
            return;
        }
        match d.name.as_str() {
            "fastcgi_pass" | "proxy_pass" | "uwsgi_pass" | "scgi_pass" => self.conf.passes.push(d),
            "user" if self.stack.is_empty() => self.conf.user = Some(d),
            n if TUNING.contains(&n) => self.conf.tuning.push(d),
            _ => {}
        }
    }

    pub fn finish(self) -> NginxConf {
        self.conf
    }
}

/// Whether a line looks like NGINX config (used by detection).
pub fn looks_like_nginx_conf(line: &str) -> bool {
    let t = line.trim();
    // A directive: a lower-case name, then arguments, ending in `;` or `{` (a lone
    // brace proves nothing: JSON has them too).
    t.starts_with("# configuration file ")
        || t.starts_with("nginx: the configuration file")
        || ((t.ends_with(';') || t.ends_with('{'))
            && t.len() > 1
            && !t.starts_with('"')
            && !t.contains(" = ")
            && t.split_whitespace().next().is_some_and(|w| {
                w.bytes().all(|b| {
                    b.is_ascii_lowercase() || b == b'_' || b == b'{' || b == b'}' || b == b';'
                })
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T_OUTPUT: &str = r#"nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
nginx: configuration file /etc/nginx/nginx.conf test is successful
# configuration file /etc/nginx/nginx.conf:
user www-data;
http {
    include /etc/nginx/sites-enabled/*;
}

# configuration file /etc/nginx/sites-enabled/default:
upstream php-fpm {
    server unix:/run/php/php8.2-fpm.sock;
    keepalive 16;
}
server {
    server_name example.com;
    location ~ \.php$ {
        fastcgi_pass php-fpm;
        fastcgi_read_timeout 300s;
        fastcgi_buffer_size 32k; # comment
    }
    location = /api/import {
        fastcgi_pass unix:/var/run/php-fpm.sock;
        fastcgi_read_timeout 600s;
    }
}
"#;

    #[test]
    fn nginx_t_output() {
        let mut p = NginxConfParser::new("nginx-T.txt");
        for (i, l) in T_OUTPUT.lines().enumerate() {
            assert!(p.feed(l, i as u64 + 1));
        }
        let c = p.finish();
        assert_eq!(c.user.as_ref().map(|d| d.arg()), Some("www-data"));
        assert_eq!(c.passes.len(), 2);
        assert_eq!(c.passes[0].arg(), "php-fpm");
        assert_eq!(c.passes[0].file, "/etc/nginx/sites-enabled/default");
        assert_eq!(c.passes[0].line, 8);
        assert!(c.passes[0].context.contains("location ~ \\.php$"));
        assert_eq!(c.passes[1].arg(), "unix:/var/run/php-fpm.sock");
        assert_eq!(
            c.resolve("php-fpm"),
            vec!["unix:/run/php/php8.2-fpm.sock".to_string()]
        );
        assert_eq!(
            c.resolve("127.0.0.1:9000"),
            vec!["127.0.0.1:9000".to_string()]
        );
        assert_eq!(
            c.tuning_value("fastcgi_read_timeout").map(|d| d.arg()),
            Some("300s")
        );
        assert_eq!(
            c.tuning_value("fastcgi_buffer_size").map(|d| d.arg()),
            Some("32k")
        );
        assert!(looks_like_nginx_conf(
            "    fastcgi_pass unix:/run/php/php8.2-fpm.sock;"
        ));
        assert!(looks_like_nginx_conf("server {"));
        assert!(!looks_like_nginx_conf("pm.max_children = 5"));
    }
}
