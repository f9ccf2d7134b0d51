//! Integration tests of the PostgreSQL store against a real server: one test binary, one
//! module per concern. See `common.rs` for which server and how to skip.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod conformance;
mod interleave;
mod open;
