//! The load-balancing report: its types and its recommendations.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use atmo_core::WorkerStatus;

/// A bank whose load per worker exceeds this multiple of the system-wide load per worker is
/// reported as overloaded.
pub const OVERLOAD_FACTOR: f64 = 1.5;

pub(super) fn ratio(load: usize, workers: usize) -> f64 {
    if workers == 0 { 0.0 } else { load as f64 / workers as f64 }
}

pub(super) fn recommend(totals: &LoadTotals, banks: &[BankLoadSummary]) -> Vec<String> {
    let mut out = Vec::new();
    let average = ratio(totals.total_load, totals.workers);
    for b in banks {
        if average > 0.0 && b.average_load_per_worker > OVERLOAD_FACTOR * average {
            out.push(format!(
                "bank `{}` is overloaded: {:.2} requests per worker against {:.2} across all banks; \
                 add workers to it or route its tasks to other banks",
                b.bank_id, b.average_load_per_worker, average
            ));
        }
        let unusable = b.workers_by_status.error + b.workers_by_status.offline;
        if unusable > 0 {
            out.push(format!(
                "bank `{}` has {} of {} workers unavailable ({} offline, {} in error); restart or replace them",
                b.bank_id, unusable, b.worker_count, b.workers_by_status.offline, b.workers_by_status.error
            ));
        }
        let usable = b.worker_count - unusable;
        if b.load == 0 && usable > 0 && totals.total_load > 0 {
            out.push(format!(
                "bank `{}` is idle while other banks hold {} requests; if it can run their tasks, \
                 shift work to it, otherwise consider shrinking it",
                b.bank_id, totals.total_load
            ));
        }
    }
    out
}

// ===== Report types =====

/// What [`ActivityTracer::load_balancing_report`](super::ActivityTracer::load_balancing_report) returns.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancingReport {
    /// Figures over every bank.
    pub totals: LoadTotals,
    /// One summary per bank, sorted by bank id.
    pub banks: Vec<BankLoadSummary>,
    /// What an operator might do, in plain words; empty when all looks balanced.
    pub recommendations: Vec<String>,
}

/// Figures over every bank.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadTotals {
    /// Banks traced.
    pub banks: usize,
    /// Workers in all banks.
    pub workers: usize,
    /// Workers holding requests.
    pub busy: usize,
    /// Workers holding nothing.
    pub idle: usize,
    /// Workers in error.
    pub error: usize,
    /// Workers offline.
    pub offline: usize,
    /// Requests held by all workers (queued at them or running).
    pub total_load: usize,
    /// Requests handed to workers.
    pub messages_sent: u64,
    /// Requests workers finished (any outcome).
    pub messages_completed: u64,
    /// Requests that failed.
    pub errors: u64,
}

/// One bank's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BankLoadSummary {
    /// The bank.
    pub bank_id: Arc<str>,
    /// Its workers.
    pub worker_count: usize,
    /// Requests its workers hold.
    pub load: usize,
    /// `load / worker_count` (0 without workers).
    pub average_load_per_worker: f64,
    /// Its workers' moving averages of response time, weighted by requests completed.
    pub average_response_ms: f64,
    /// Requests handed to its workers.
    pub messages_sent: u64,
    /// Requests its workers finished.
    pub messages_completed: u64,
    /// Requests that failed on its workers.
    pub errors: u64,
    /// Its workers counted by status.
    pub workers_by_status: WorkerStatusCounts,
}

/// Workers counted by [`WorkerStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatusCounts {
    /// Holding nothing.
    pub idle: usize,
    /// Holding requests.
    pub busy: usize,
    /// In error.
    pub error: usize,
    /// Offline.
    pub offline: usize,
}

impl WorkerStatusCounts {
    pub(super) fn add(&mut self, s: WorkerStatus) {
        match s {
            WorkerStatus::Idle => self.idle += 1,
            WorkerStatus::Busy => self.busy += 1,
            WorkerStatus::Error => self.error += 1,
            WorkerStatus::Offline => self.offline += 1,
        }
    }
}
