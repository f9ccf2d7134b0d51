//! Integration tests of the HTTP API, through `Router::oneshot` (no socket).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

mod boundaries;
mod conformance;
mod cron;
mod docs;
mod errors;
mod events;
mod guard;
mod limits;
mod requests;
mod serve;
mod system;
