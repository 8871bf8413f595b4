//! gatelog NGINX module: one JSON record for every request NGINX answered 502/504
//! after an upstream failure, with the exact errno, the failing phase and every
//! attempt.
//!
//! The plain-Rust parts (directive arguments, phase derivation, attempt joining,
//! capture bounds) are unit-tested; everything that touches NGINX structures lives
//! in `ffi/` and is left out of test builds, because a test binary cannot link the
//! NGINX symbols a dynamic module resolves at load time.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod args;
pub mod attempt_phase;
pub mod attempts;
pub mod capture;
pub mod delivery;
pub mod metrics;

#[cfg(not(test))]
mod ffi;
