//! System metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::status::RequestStatus;
use crate::time::Timestamp;

/// Processing-time statistics in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// How often an error code occurred.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCount {
    /// The code.
    pub code: String,
    /// Occurrences.
    pub count: u64,
    /// The latest message with this code.
    pub last_message: String,
}

/// What a store aggregates for [`SystemMetrics`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreMetrics {
    /// Requests held, by status (index = `RequestStatus as usize`).
    pub by_status: [u64; 8],
    /// Processing time of completed requests.
    pub processing: LatencySummary,
    /// Requests that reached a terminal state since the window start.
    pub finished_in_window: u64,
    /// The most frequent error codes, most frequent first.
    pub top_errors: Vec<ErrorCount>,
}

impl StoreMetrics {
    /// Requests held with status `s`.
    pub fn count(&self, s: RequestStatus) -> u64 {
        self.by_status[s as usize]
    }

    /// Requests held in all.
    pub fn total(&self) -> u64 {
        self.by_status.iter().sum()
    }
}

/// Per-bank figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BankPerformance {
    /// The bank.
    pub bank_id: Arc<str>,
    /// Its status.
    pub status: crate::bank::BankStatus,
    /// Workers.
    pub worker_count: usize,
    /// Requests it may hold.
    pub capacity: usize,
    /// Requests it holds.
    pub current_load: usize,
    /// load / capacity.
    pub utilization: f64,
    /// Completed requests.
    pub completed: u64,
    /// Failed attempts (including retried ones and timeouts).
    pub failed: u64,
    /// completed / (completed + failed), 1 before any.
    pub success_rate: f64,
    /// Mean processing time.
    pub average_processing_time_ms: f64,
    /// Protocol errors of a process bank's workers (malformed, unknown or stray messages,
    /// oversize lines).
    #[serde(default)]
    pub protocol_errors: u64,
    /// Worker processes restarted after they died or were killed.
    #[serde(default)]
    pub worker_restarts: u64,
    /// Worker threads written off because a handler overstayed its timeout (and replaced).
    #[serde(default)]
    pub abandoned_workers: u64,
}

/// The system at a glance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemMetrics {
    /// When measured.
    pub generated_at: Timestamp,
    /// Requests held by the store.
    pub total_requests: u64,
    /// By status.
    pub requests_by_status: BTreeMap<RequestStatus, u64>,
    /// completed / finished.
    pub success_rate: f64,
    /// (failed + timed out) / finished.
    pub error_rate: f64,
    /// Mean processing time of completed requests.
    pub average_processing_time: f64,
    /// Processing-time percentiles.
    pub processing_time: LatencySummary,
    /// Requests finished in the last 60 seconds.
    pub requests_per_minute: f64,
    /// The most frequent errors.
    pub top_errors: Vec<ErrorCount>,
    /// Banks taking work.
    pub active_banks: usize,
    /// Requests all banks may hold at once.
    pub total_worker_capacity: usize,
    /// Requests they hold now.
    pub current_load: usize,
    /// Requests waiting (pending and scheduled).
    pub queue_depth: u64,
    /// Per bank.
    pub bank_performance: Vec<BankPerformance>,
}
