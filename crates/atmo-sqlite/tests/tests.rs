//! Integration tests of the SQLite store: one test binary, one module per concern.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backup;
mod common;
mod conformance;
mod corruption;
mod durability;
mod migration;
