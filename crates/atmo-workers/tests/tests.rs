//! Integration tests of atmo-workers: one test binary, one module per concern.

mod conformance;
mod engine;
