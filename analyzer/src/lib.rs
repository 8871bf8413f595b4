//! gatelog analyzer: classify every NGINX 502/504 in front of PHP-FPM into one of
//! seven causes, from gatelog records or plain NGINX error logs, correlated with the
//! PHP-FPM, kernel and systemd logs and the configs.

pub mod input;
pub mod model;
pub mod parse;
pub mod time;
