//! The simulated site: its servers, pools, URIs, PHP files, messages and the request a
//! line is about. Constant data, kept apart from the simulation so that what the site looks
//! like can be read (and changed) in one place.

use crate::text::{push_hex, push_u64};

/// The HTTP app behind `proxy_pass` on app.example.com (a Node or Go service).
pub(crate) const APP_PEER: &str = "127.0.0.1:3000";
pub(crate) const APP_SERVER: usize = 3;
pub(crate) const APP_URIS: &[&str] = &[
    "/api/cart",
    "/api/session",
    "/api/search?q=shoes",
    "/api/orders/1842",
    "/ws/notifications",
    "/graphql",
];
pub(crate) const SOCK: &str = "/run/php/php8.2-fpm.sock";
pub(crate) const OLD_SOCK: &str = "/run/php/php8.1-fpm.sock";
pub(crate) const TCP_PEER: &str = "127.0.0.1:9000";
pub(crate) const FPM_CONF: &str = "/etc/php/8.2/fpm/php-fpm.conf";
pub(crate) const MAX_CHILDREN: u64 = 24;

pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) hosts: &'static [&'static str],
    /// Where PHP goes: 0 = the unix socket pool "www", 1 = the TCP pool "api"; 2 = no PHP,
    /// `proxy_pass` to the HTTP app (`APP_PEER`).
    pub(crate) pool: usize,
}

pub(crate) const SERVERS: &[Server] = &[
    Server {
        name: "example.com",
        hosts: &["example.com", "www.example.com"],
        pool: 0,
    },
    Server {
        name: "shop.example.com",
        hosts: &["shop.example.com"],
        pool: 0,
    },
    Server {
        name: "api.example.com",
        hosts: &["api.example.com", "api.example.com:443"],
        pool: 1,
    },
    // Only the incident's other-backend failures use it (`req()` picks among the first three).
    Server {
        name: "app.example.com",
        hosts: &["app.example.com"],
        pool: 2,
    },
];

pub(crate) const PHP_URIS: &[&str] = &[
    "/",
    "/index.php",
    "/index.php?p=2",
    "/checkout",
    "/cart?add=1842",
    "/cart",
    "/login",
    "/wp-login.php",
    "/search?q=red+shoes",
    "/search?q=%E2%9C%93&page=3",
    "/account/orders",
    "/report.php?id=7",
    "/report.php?id=1203&format=pdf",
    "/export.php?format=csv",
    "/admin/index.php",
    "/api/v1/orders?id=123",
    "/api/v1/orders",
    "/api/v1/products?limit=50&offset=200",
    "/api/v2/session",
    "/xmlrpc.php",
    "/blog/2026/03/why-502",
    "/category/shoes?sort=price",
    "/product/8812",
    "/newsletter/subscribe",
];
pub(crate) const STATIC_MISSING: &[&str] = &[
    "/favicon.ico",
    "/apple-touch-icon.png",
    "/apple-touch-icon-precomposed.png",
    "/robots.txt",
    "/.env",
    "/.git/config",
    "/wp-content/plugins/revslider/readme.txt",
    "/assets/js/app.4f1c2e.js.map",
    "/images/banner-2025.jpg",
    "/sitemap.xml",
    "/ads.txt",
    "/.well-known/security.txt",
    "/static/css/main.8a1b.css",
    "/uploads/2026/03/IMG_2231.jpeg",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
];
pub(crate) const AGENTS_REFERRERS: &[&str] = &[
    "https://example.com/",
    "https://www.google.com/",
    "https://shop.example.com/cart",
    "",
];
pub(crate) const PHP_FILES: &[&str] = &[
    "/var/www/html/index.php",
    "/var/www/html/app/Http/Controllers/CartController.php",
    "/var/www/html/app/Models/Order.php",
    "/var/www/html/vendor/laravel/framework/src/Illuminate/Database/Connection.php",
    "/var/www/html/report.php",
    "/var/www/html/export.php",
    "/var/www/html/wp-includes/class-wpdb.php",
];
pub(crate) const WARNINGS: &[&str] = &[
    "PHP Warning:  Undefined array key \"utm_source\"",
    "PHP Warning:  Undefined variable $cart",
    "PHP Deprecated:  strlen(): Passing null to parameter #1 ($string) of type string is deprecated",
    "PHP Notice:  Only variables should be passed by reference",
    "PHP Warning:  Trying to access array offset on value of type null",
    "PHP Deprecated:  Creation of dynamic property App\\Models\\Order::$legacy is deprecated",
];
pub(crate) const EXCEPTIONS: &[&str] = &[
    "Uncaught Error: Class \"App\\Foo\" not found",
    "Uncaught PDOException: SQLSTATE[HY000] [2002] Connection refused",
    "Uncaught TypeError: App\\Cart::add(): Argument #1 ($id) must be of type int, string given",
    "Uncaught RuntimeException: Redis connection timed out",
];
pub(crate) const OTHER_PROCS: &[(&str, u64)] = &[
    ("systemd-journal", 321),
    ("mariadbd", 901),
    ("redis-server", 955),
    ("nginx", 812),
    ("sshd", 640),
    ("cron", 598),
    ("node_exporter", 702),
    ("fail2ban-server", 733),
];

pub(crate) struct Req {
    pub(crate) server: usize,
    pub(crate) host: &'static str,
    pub(crate) client: ClientIp,
    pub(crate) method: &'static str,
    pub(crate) uri: &'static str,
    pub(crate) proto: &'static str,
    pub(crate) referrer: &'static str,
}

#[derive(Clone, Copy)]
pub(crate) enum ClientIp {
    V4(u8, u8, u8, u8),
    V6(u16),
}

pub(crate) fn push_client(buf: &mut Vec<u8>, c: ClientIp) {
    match c {
        ClientIp::V4(a, b, c2, d) => {
            push_u64(buf, a as u64);
            buf.push(b'.');
            push_u64(buf, b as u64);
            buf.push(b'.');
            push_u64(buf, c2 as u64);
            buf.push(b'.');
            push_u64(buf, d as u64);
        }
        ClientIp::V6(x) => {
            buf.extend_from_slice(b"2001:db8:85a3::");
            push_hex(buf, x as u64, 4);
        }
    }
}
