//! Tests of the engine through its public API, one module per concern. They live in a folder
//! so that Cargo does not also build each file as a test binary of its own.

mod support;

#[cfg(target_os = "linux")]
mod background;
mod cancel;
mod concurrency;
mod events;
mod lifecycle;
mod mock;
mod panics;
mod queries_metrics;
mod retry_timeout;
mod runtime_seam;
mod scheduling;
mod shutdown;
mod state_machine_props;
mod store_failures;
mod test_mode;
