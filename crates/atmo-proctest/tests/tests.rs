//! Process worker banks with real processes: the Rust SDK's test worker, and the Python and
//! Node templates under `workers/`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

mod engine;
mod templates;
