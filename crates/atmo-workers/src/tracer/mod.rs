//! Per-worker and per-bank activity: what each worker holds and how fast it answers, which worker
//! should get the next request, and the load-balancing report.
//!
//! The engine calls [`BankActivity::record_dispatch`] and [`BankActivity::record_finish`] (and
//! optionally [`BankActivity::record_start`]) on every request, so recording is lock-free: each
//! worker's figures are atomics, and a worker's figures sit on their own cache lines so that
//! threads recording for neighbouring workers do not slow each other down. Readers (selection,
//! snapshots, the report) sum the atomics when asked; their answers are consistent per field,
//! not across fields, which is all load balancing needs.

mod activity;
mod bank;
mod report;
#[cfg(test)]
mod tests;
mod worker;

pub use activity::ActivityTracer;
pub use bank::BankActivity;
pub use report::{BankLoadSummary, LoadBalancingReport, LoadTotals, OVERLOAD_FACTOR, WorkerStatusCounts};
pub use worker::RESPONSE_TIME_ALPHA;
