//! NGINX configuration (the files themselves or `nginx -T` output): where requests are
//! passed (`*_pass`, `upstream {}` servers, `set`/`map` variables), the timeouts and
//! buffer sizes, and the worker `user`. Tokenised line by line with the block stack
//! kept, so each directive keeps its real file, line and enclosing blocks. Reading
//! files (and following `include`) is the loader's job: this parser only says which
//! includes it met, with the block stack they sit in, so an included file's
//! directives land in the block that included them, as in NGINX.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{Peer, Protocol};

/// A directive with its arguments and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub file: Arc<str>,
    pub line: u64,
    /// Enclosing blocks, e.g. `http > server > location ~ \.php$`.
    pub context: String,
    /// Ids of the enclosing blocks, outermost first: two `server {}` blocks read the
    /// same in `context` but are different scopes.
    pub scope: Vec<u32>,
}

impl Directive {
    pub fn arg(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or("")
    }

    pub fn text(&self) -> String {
        format!("{} {};", self.name, self.args.join(" "))
    }

    /// `file:line`, as NGINX names places in its own messages.
    pub fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// Whether this directive (a setting) applies where `other` is written: it sits in
    /// a block that encloses `other` (settings are inherited inward).
    pub fn applies_to(&self, other: &Directive) -> bool {
        other.scope.starts_with(&self.scope)
    }
}

/// One address NGINX sends requests to, resolved from a `*_pass` line (through an
/// `upstream {}` group or a variable where the config says its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Normalised like the peers of error lines and records.
    pub peer: Peer,
    /// As the config writes it: `unix:/run/php/php8.2-fpm.sock`, `127.0.0.1:9000`.
    pub address: String,
    pub protocol: Protocol,
    /// The `*_pass` line.
    pub pass: Directive,
    /// The `upstream {}` group the pass names, if any.
    pub group: Option<String>,
    /// Where the address itself is written (the line to change): the pass, the
    /// group's `server`, or the `set`/`map` line of the pass's variable.
    pub written_at: Directive,
}

/// An `include` met while parsing, with the blocks it sits in.
#[derive(Debug, Clone)]
pub struct Include {
    pub pattern: String,
    pub directive: Directive,
    pub stack: Vec<Block>,
}

/// An open block: its header (`location ~ \.php$`) and a unique id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub text: String,
    pub id: u32,
}

/// What the analyzer needs from an NGINX config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NginxConf {
    /// `fastcgi_pass`, `proxy_pass`, `uwsgi_pass`, `scgi_pass`, `grpc_pass`.
    pub passes: Vec<Directive>,
    /// `upstream NAME {}` -> its `server` directives (address, weight, params).
    pub upstreams: BTreeMap<String, Vec<Directive>>,
    /// `set $var value;` lines.
    pub sets: Vec<Directive>,
    /// `map $src $var {}` -> its entries (`key value;`).
    pub maps: BTreeMap<String, Vec<Directive>>,
    /// `*_timeout`, `fastcgi_buffer_size`, `fastcgi_buffers`, ...
    pub tuning: Vec<Directive>,
    /// The `user` directive (who the workers run as).
    pub user: Option<Directive>,
    /// `load_module`, `gatelog` and `error_log` lines (for `gatelog doctor`: is the
    /// module loaded, where do records and errors go).
    pub logging: Vec<Directive>,
    /// Every address the passes resolve to; filled by [`NginxConf::resolve`].
    pub targets: Vec<Target>,
    next_block: u32,
}

const PASSES: [&str; 5] = [
    "fastcgi_pass",
    "proxy_pass",
    "uwsgi_pass",
    "scgi_pass",
    "grpc_pass",
];

const TUNING: [&str; 19] = [
    "fastcgi_read_timeout",
    "fastcgi_connect_timeout",
    "fastcgi_send_timeout",
    "fastcgi_buffer_size",
    "fastcgi_buffers",
    "fastcgi_busy_buffers_size",
    "fastcgi_next_upstream",
    "proxy_read_timeout",
    "proxy_connect_timeout",
    "proxy_send_timeout",
    "proxy_buffer_size",
    "proxy_next_upstream",
    "uwsgi_read_timeout",
    "uwsgi_connect_timeout",
    "scgi_read_timeout",
    "scgi_connect_timeout",
    "grpc_read_timeout",
    "grpc_connect_timeout",
    "grpc_next_upstream",
];

/// The read-timeout directive that goes with a pass directive.
pub fn read_timeout_directive(pass: &str) -> Option<&'static str> {
    Some(match pass {
        "fastcgi_pass" => "fastcgi_read_timeout",
        "proxy_pass" => "proxy_read_timeout",
        "uwsgi_pass" => "uwsgi_read_timeout",
        "scgi_pass" => "scgi_read_timeout",
        "grpc_pass" => "grpc_read_timeout",
        _ => return None,
    })
}

impl NginxConf {
    /// The addresses `target` (an address or an upstream group name) resolves to.
    pub fn resolve_name(&self, target: &str) -> Vec<String> {
        match self.upstreams.get(target) {
            Some(servers) => servers.iter().map(|d| d.arg().to_string()).collect(),
            None => vec![target.to_string()],
        }
    }

    /// The first value of a tuning directive (e.g. `fastcgi_read_timeout`).
    pub fn tuning_value(&self, name: &str) -> Option<&Directive> {
        self.tuning.iter().find(|d| d.name == name)
    }

    /// The read timeout in force where `pass` is written: the innermost
    /// `<protocol>_read_timeout` of a block enclosing it. None: not set, NGINX's
    /// default (60 s) applies.
    pub fn read_timeout_for(&self, pass: &Directive) -> Option<&Directive> {
        let name = read_timeout_directive(&pass.name)?;
        self.tuning
            .iter()
            .filter(|d| d.name == name && d.applies_to(pass))
            .max_by_key(|d| d.scope.len())
    }

    /// Resolves every pass to its addresses (after all files are read: a group or a
    /// `set` may come after the pass that uses it).
    pub fn resolve(&mut self) {
        let mut targets = Vec::new();
        for pass in &self.passes {
            for (arg, at) in self.pass_values(pass) {
                let protocol =
                    Protocol::from_pass_directive(&pass.name, &arg).unwrap_or(Protocol::Unknown);
                match authority(&arg) {
                    Some(Authority::Address(a)) => targets.push(Target {
                        peer: Peer::from_nginx(&a),
                        address: a,
                        protocol,
                        pass: pass.clone(),
                        group: None,
                        written_at: at.clone(),
                    }),
                    Some(Authority::Name { name, default_port }) => {
                        match self.upstreams.get(&name) {
                            Some(servers) => {
                                for s in servers {
                                    let a = server_address(s.arg());
                                    targets.push(Target {
                                        peer: Peer::from_nginx(&a),
                                        address: a,
                                        protocol,
                                        pass: pass.clone(),
                                        group: Some(name.clone()),
                                        written_at: s.clone(),
                                    });
                                }
                            }
                            // A host name with the scheme's port (`proxy_pass
                            // http://app;` without a group is app:80).
                            None => {
                                if let Some(port) = default_port {
                                    let a = format!("{name}:{port}");
                                    targets.push(Target {
                                        peer: Peer::from_nginx(&a),
                                        address: a,
                                        protocol,
                                        pass: pass.clone(),
                                        group: None,
                                        written_at: at.clone(),
                                    });
                                }
                            }
                        }
                    }
                    None => {}
                }
            }
        }
        self.targets = targets;
    }

    /// The argument of a pass with its variable replaced by each value the config
    /// gives it (`set` in an enclosing block or inside the pass's own block, `map`
    /// entries), with the line that gives it. A pass without variables is itself.
    fn pass_values<'a>(&'a self, pass: &'a Directive) -> Vec<(String, &'a Directive)> {
        let arg = pass.arg();
        let vars = variables(arg);
        if vars.is_empty() {
            return vec![(arg.to_string(), pass)];
        }
        // Only one variable can be replaced with certainty; `http://$host$uri`
        // depends on the request.
        let [(var, span)] = vars.as_slice() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut substitute = |value: &str, at: &'a Directive| {
            if !value.contains('$') {
                let mut s = arg.to_string();
                s.replace_range(span.clone(), value);
                out.push((s, at));
            }
        };
        for set in &self.sets {
            if set.arg().strip_prefix('$') == Some(var.as_str())
                && (set.applies_to(pass) || pass.applies_to(set))
            {
                if let Some(v) = set.args.get(1) {
                    substitute(v, set);
                }
            }
        }
        if let Some(entries) = self.maps.get(var.as_str()) {
            for e in entries {
                substitute(e.arg(), e);
            }
        }
        out
    }
}

/// `$name` / `${name}` references in a value, with their byte spans.
fn variables(v: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let braced = b.get(i) == Some(&b'{');
        if braced {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let name = v[name_start..i].to_string();
        if braced && b.get(i) == Some(&b'}') {
            i += 1;
        }
        if !name.is_empty() {
            out.push((name, start..i));
        }
    }
    out
}

enum Authority {
    /// `unix:/path` or `host:port`.
    Address(String),
    /// No port: an `upstream {}` group, or a host with the scheme's default port.
    Name {
        name: String,
        default_port: Option<u16>,
    },
}

/// The address part of a pass argument: `http://127.0.0.1:3000/api/` ->
/// `127.0.0.1:3000`, `http://unix:/tmp/app.sock:/` -> `unix:/tmp/app.sock`.
fn authority(arg: &str) -> Option<Authority> {
    let (scheme, rest) = match arg.split_once("://") {
        Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
        None => (None, arg),
    };
    if let Some(path) = rest.strip_prefix("unix:") {
        // NGINX ends a unix path at ':' (the URI follows).
        let path = path.split(':').next().unwrap_or(path);
        return (!path.is_empty()).then(|| Authority::Address(format!("unix:{path}")));
    }
    let host = rest.split('/').next().unwrap_or(rest);
    if host.is_empty() {
        return None;
    }
    let has_port = match host.rfind(']') {
        Some(close) => host[close..].contains(':'),
        None => host.contains(':'),
    };
    if has_port {
        return Some(Authority::Address(host.to_string()));
    }
    let default_port = match scheme.as_deref() {
        Some("http") | Some("grpc") => Some(80),
        Some("https") | Some("grpcs") => Some(443),
        _ => None,
    };
    Some(Authority::Name {
        name: host.to_string(),
        default_port,
    })
}

/// A `server` address of an `upstream {}` group; port 80 when none is given.
fn server_address(arg: &str) -> String {
    match authority(arg) {
        Some(Authority::Address(a)) => a,
        _ => format!("{arg}:80"),
    }
}

/// Parses one file (or one file's part of `nginx -T` output) into an [`NginxConf`]:
/// blocks and words do not cross into another file, as in NGINX.
#[derive(Debug)]
pub struct FileParser {
    file: Arc<str>,
    /// Line number (in the input) of the line before this file's first line: in
    /// `nginx -T` output, the `# configuration file` marker.
    offset: u64,
    stack: Vec<Block>,
    /// Blocks opened by the including file: a `}` may not close them.
    base: usize,
    words: Vec<String>,
    word: String,
    quote: Option<char>,
    first_line: u64,
    includes: Vec<Include>,
}

impl FileParser {
    /// A parser for `file`, inside the blocks `stack` (those of its `include`).
    pub fn new(file: Arc<str>, stack: Vec<Block>, offset: u64) -> FileParser {
        FileParser {
            file,
            offset,
            base: stack.len(),
            stack,
            words: Vec::new(),
            word: String::new(),
            quote: None,
            first_line: 0,
            includes: Vec::new(),
        }
    }

    /// Feeds one physical line (`line_no` counts in the input). Returns false when
    /// the line breaks NGINX config syntax (a `}` with no open block).
    pub fn feed(&mut self, conf: &mut NginxConf, line: &str, line_no: u64) -> bool {
        let local_line = line_no.saturating_sub(self.offset);
        let mut ok = true;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if let Some(q) = self.quote {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        self.word.push(n);
                    }
                } else if c == q {
                    self.quote = None;
                    // An empty quoted argument is still an argument.
                    if self.word.is_empty() {
                        self.word.push_str("\"\"");
                    }
                } else {
                    self.word.push(c);
                }
                continue;
            }
            match c {
                '#' if self.word.is_empty() => break,
                '"' | '\'' if self.word.is_empty() => {
                    self.start_word(local_line);
                    self.quote = Some(c);
                }
                ' ' | '\t' | '\r' => self.flush(),
                ';' => {
                    self.flush();
                    self.directive(conf);
                }
                '{' => {
                    self.flush();
                    conf.next_block += 1;
                    self.stack.push(Block {
                        text: std::mem::take(&mut self.words).join(" "),
                        id: conf.next_block,
                    });
                }
                '}' => {
                    self.flush();
                    self.words.clear();
                    if self.stack.len() > self.base {
                        self.stack.pop();
                    } else {
                        ok = false;
                    }
                }
                _ => {
                    self.start_word(local_line);
                    self.word.push(c);
                }
            }
        }
        if self.quote.is_some() {
            // A quoted value that goes on on the next line keeps its line break.
            self.word.push('\n');
        } else {
            self.flush();
        }
        ok
    }

    fn start_word(&mut self, line: u64) {
        if self.word.is_empty() && self.words.is_empty() {
            self.first_line = line;
        }
    }

    fn flush(&mut self) {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
    }

    /// The includes met since the last call, in order.
    pub fn take_includes(&mut self) -> Vec<Include> {
        std::mem::take(&mut self.includes)
    }

    fn directive(&mut self, conf: &mut NginxConf) {
        let mut words = std::mem::take(&mut self.words);
        if words.is_empty() {
            return;
        }
        let name = words.remove(0);
        let d = Directive {
            name,
            args: words,
            file: Arc::clone(&self.file),
            line: self.first_line,
            context: self
                .stack
                .iter()
                .map(|b| b.text.as_str())
                .collect::<Vec<_>>()
                .join(" > "),
            scope: self.stack.iter().map(|b| b.id).collect(),
        };
        if d.name == "include" {
            self.includes.push(Include {
                pattern: d.arg().to_string(),
                stack: self.stack.clone(),
                directive: d,
            });
            return;
        }
        let block = self.stack.last().map(|b| b.text.as_str()).unwrap_or("");
        if let Some(group) = block.strip_prefix("upstream ") {
            if d.name == "server" {
                conf.upstreams
                    .entry(group.trim().to_string())
                    .or_default()
                    .push(d);
            }
            return;
        }
        if let Some(vars) = block.strip_prefix("map ") {
            // `map $src $dst {}`: entries give $dst its values.
            if let Some(dst) = vars.split_whitespace().nth(1) {
                if !matches!(d.name.as_str(), "hostnames" | "volatile") && d.args.len() == 1 {
                    let dst = dst.trim_start_matches('$').to_string();
                    conf.maps.entry(dst).or_default().push(d);
                }
            }
            return;
        }
        match d.name.as_str() {
            n if PASSES.contains(&n) => conf.passes.push(d),
            "set" if d.args.len() == 2 => conf.sets.push(d),
            "user" if self.stack.is_empty() => conf.user = Some(d),
            "load_module" | "gatelog" | "error_log" => conf.logging.push(d),
            n if TUNING.contains(&n) => conf.tuning.push(d),
            _ => {}
        }
    }
}

/// The file named by `nginx -T`'s `# configuration file X:` line.
pub fn dump_marker(line: &str) -> Option<&str> {
    line.strip_prefix("# configuration file ")?
        .trim_end()
        .strip_suffix(':')
}

/// `nginx -t`/`-T` result lines (`nginx: the configuration file ... syntax is ok`),
/// printed on stderr and often captured with the dump (`2>&1`).
pub fn is_test_result(line: &str) -> bool {
    line.starts_with("nginx: ")
}

/// Whether a line looks like NGINX config (used by detection).
pub fn looks_like_nginx_conf(line: &str) -> bool {
    let t = line.trim();
    // A directive: a lower-case name, then arguments, ending in `;` or `{` (a lone
    // brace proves nothing: JSON has them too).
    dump_marker(t).is_some()
        || t.starts_with("nginx: the configuration file")
        || ((t.ends_with(';') || t.ends_with('{'))
            && t.len() > 1
            && !t.starts_with('"')
            && !t.contains(" = ")
            && t.split_whitespace().next().is_some_and(|w| {
                // Starts with a letter: INI's `;;;;;;` banner comments end in `;` too.
                w.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
                    && w.bytes().all(|b| {
                        b.is_ascii_lowercase() || b == b'_' || b == b'{' || b == b'}' || b == b';'
                    })
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses one text as one file, ignoring includes.
    fn parse(name: &str, text: &str) -> NginxConf {
        let mut conf = NginxConf::default();
        let mut p = FileParser::new(Arc::from(name), Vec::new(), 0);
        for (i, l) in text.lines().enumerate() {
            assert!(p.feed(&mut conf, l, i as u64 + 1), "{l}");
        }
        conf.resolve();
        conf
    }

    const SITE: &str = r#"upstream php-fpm {
    server unix:/run/php/php8.2-fpm.sock weight=5 max_fails=3;
    server 127.0.0.1:9000 backup;
    keepalive 16;
}
server {
    server_name example.com;
    fastcgi_read_timeout 120s;
    location ~ \.php$ {
        include snippets/fastcgi-php.conf;
        fastcgi_pass php-fpm;
        fastcgi_buffer_size 32k; # comment
    }
    location = /api/import {
        fastcgi_pass unix:/var/run/php-fpm.sock;
        fastcgi_read_timeout 600s;
    }
    location /node/ { proxy_pass http://127.0.0.1:3000/app/; }
    location /gunicorn/ { proxy_pass http://unix:/tmp/gunicorn.sock:/; }
    location /legacy/ { proxy_pass https://legacy.example.com; }
    location /uwsgi/ { uwsgi_pass unix:/run/uwsgi/app/x/socket; }
}
"#;

    #[test]
    fn passes_groups_and_targets() {
        let c = parse("/etc/nginx/sites-enabled/default", SITE);
        assert_eq!(c.passes.len(), 6);
        assert_eq!(c.passes[0].arg(), "php-fpm");
        assert_eq!(&*c.passes[0].file, "/etc/nginx/sites-enabled/default");
        assert_eq!(c.passes[0].line, 11);
        assert!(c.passes[0].context.contains("location ~ \\.php$"));
        let t: Vec<_> = c
            .targets
            .iter()
            .map(|t| {
                (
                    t.peer.as_str(),
                    t.protocol,
                    t.group.as_deref(),
                    t.written_at.line,
                )
            })
            .collect();
        assert_eq!(
            t,
            [
                (
                    "unix:/run/php/php8.2-fpm.sock",
                    Protocol::Fastcgi,
                    Some("php-fpm"),
                    2
                ),
                ("127.0.0.1:9000", Protocol::Fastcgi, Some("php-fpm"), 3),
                ("unix:/run/php-fpm.sock", Protocol::Fastcgi, None, 15),
                ("127.0.0.1:3000", Protocol::Http, None, 18),
                ("unix:/tmp/gunicorn.sock", Protocol::Http, None, 19),
                ("legacy.example.com:443", Protocol::Https, None, 20),
                ("unix:/run/uwsgi/app/x/socket", Protocol::Uwsgi, None, 21),
            ]
        );
        assert_eq!(c.upstreams["php-fpm"][0].args[1], "weight=5");
        assert_eq!(
            c.resolve_name("php-fpm"),
            ["unix:/run/php/php8.2-fpm.sock", "127.0.0.1:9000"]
        );
        // Timeouts are inherited inward; the innermost wins.
        let rt = |i: usize| {
            c.read_timeout_for(&c.passes[i])
                .map(|d| d.arg().to_string())
        };
        assert_eq!(rt(0).as_deref(), Some("120s"));
        assert_eq!(rt(1).as_deref(), Some("600s"));
        assert_eq!(rt(2), None, "proxy_read_timeout is not set");
        assert_eq!(
            c.tuning_value("fastcgi_buffer_size").map(|d| d.arg()),
            Some("32k")
        );
    }

    #[test]
    fn variables_resolve_where_the_config_says() {
        let text = r#"http {
    map $http_x_pool $pool_sock {
        default unix:/run/php/php8.2-fpm.sock;
        beta    unix:/run/php/beta.sock;
    }
    server {
        set $backend 127.0.0.1:9001;
        location ~ \.php$ { fastcgi_pass $backend; }
        location /m/ { fastcgi_pass $pool_sock; }
        location /p/ { proxy_pass http://$host$request_uri; }
    }
    server {
        set $backend 127.0.0.1:9555;
        location /other/ { proxy_pass http://$backend/x; }
    }
}
"#;
        let c = parse("nginx.conf", text);
        let t: Vec<_> = c
            .targets
            .iter()
            .map(|t| (t.pass.line, t.peer.as_str(), t.written_at.line))
            .collect();
        assert_eq!(
            t,
            [
                // Each server's own `set`, not the other server's.
                (8, "127.0.0.1:9001", 7),
                (9, "unix:/run/php/php8.2-fpm.sock", 3),
                (9, "unix:/run/php/beta.sock", 4),
                (14, "127.0.0.1:9555", 13),
            ]
        );
    }

    #[test]
    fn includes_are_reported_with_their_blocks() {
        let mut conf = NginxConf::default();
        let mut p = FileParser::new(Arc::from("/etc/nginx/nginx.conf"), Vec::new(), 0);
        let text = "http {\n    include /etc/nginx/conf.d/*.conf;\n    upstream php { include php-servers.conf; }\n}\n";
        for (i, l) in text.lines().enumerate() {
            assert!(p.feed(&mut conf, l, i as u64 + 1));
        }
        let inc = p.take_includes();
        assert_eq!(inc.len(), 2);
        assert_eq!(inc[0].pattern, "/etc/nginx/conf.d/*.conf");
        assert_eq!(inc[0].directive.line, 2);
        assert_eq!(
            inc[1].stack.last().map(|b| b.text.as_str()),
            Some("upstream php")
        );
        // The included file's `server` lands in the group, with its own file and line.
        let mut q = FileParser::new(
            Arc::from("/etc/nginx/php-servers.conf"),
            inc[1].stack.clone(),
            0,
        );
        assert!(q.feed(&mut conf, "server 127.0.0.1:9000;", 1));
        // An included file cannot close its includer's blocks.
        assert!(!q.feed(&mut conf, "}", 2));
        conf.resolve();
        assert_eq!(
            &*conf.upstreams["php"][0].file,
            "/etc/nginx/php-servers.conf"
        );
    }

    #[test]
    fn multi_line_quotes_and_markers() {
        let text = "log_format main '$remote_addr\n    $status';\nuser www-data;\n";
        let c = parse("nginx.conf", text);
        assert_eq!(c.user.as_ref().map(|d| d.arg()), Some("www-data"));
        assert_eq!(c.user.as_ref().map(|d| d.line), Some(3));
        assert_eq!(
            dump_marker("# configuration file /etc/nginx/nginx.conf:"),
            Some("/etc/nginx/nginx.conf")
        );
        assert!(looks_like_nginx_conf(
            "    fastcgi_pass unix:/run/php/php8.2-fpm.sock;"
        ));
        assert!(looks_like_nginx_conf("server {"));
        assert!(!looks_like_nginx_conf("pm.max_children = 5"));
        // php-fpm.conf's section banners.
        assert!(!looks_like_nginx_conf(";;;;;;;;;;;;;;;;;;;;;"));
    }
}
