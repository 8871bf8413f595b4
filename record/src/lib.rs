//! The gatelog.v1 record and the NGINX knowledge both halves of gatelog share.
//!
//! Nothing here touches NGINX symbols, so `cargo test` links it: the module builds a
//! [`Record`] from NGINX state and this crate encodes it; the analyzer reads records
//! and NGINX error lines with the same vocabulary.

pub mod errno;
pub mod event;
pub mod line;
pub mod message;
pub mod protocol;
pub mod record;
pub mod text;
pub mod time;

pub use event::{Event, Level, Phase};
pub use protocol::Protocol;
pub use record::{Attempt, FastcgiStderr, Record, Timeouts, SCHEMA};
