//! [`ActivityTracer`]: the activity of every bank, where the next request goes, and the report.

use std::collections::BTreeMap;
use std::sync::Arc;

use atmo_core::WorkerInfo;
use parking_lot::RwLock;

use super::bank::{BankActivity, Pick};
use super::report::{BankLoadSummary, LoadBalancingReport, LoadTotals, WorkerStatusCounts, ratio, recommend};

/// Activity of every bank, keyed by bank id.
///
/// ```
/// use atmo_workers::tracer::ActivityTracer;
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let tracer = ActivityTracer::new();
/// let bank = tracer.initialize_bank(Arc::from("math"), vec![Arc::from("math/0"), Arc::from("math/1")]);
///
/// // The engine asks where to send a request, then records what happens to it.
/// let (bank_id, worker) = tracer.get_next_worker(None).unwrap();
/// assert_eq!((&*bank_id, worker), ("math", 0));
/// bank.record_dispatch(worker);
/// assert_eq!(tracer.get_next_worker(Some("math")).map(|(_, w)| w), Some(1)); // worker 0 is busy
///
/// let now = atmo_workers::Timestamp::from_millis(1_000);
/// bank.record_finish(worker, Duration::from_millis(40), true, now);
/// assert_eq!(bank.load(), 0);
/// assert_eq!(tracer.workers(Some("math"))[0].average_response_time_ms, 40.0);
/// assert!(tracer.load_balancing_report().recommendations.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct ActivityTracer {
    banks: RwLock<BTreeMap<Arc<str>, Arc<BankActivity>>>,
}

impl ActivityTracer {
    /// A tracer with no banks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts tracing a bank with these workers (index `i` is `worker_ids[i]`), replacing any
    /// bank of the same id, and returns its activity for the engine to record into.
    pub fn initialize_bank(&self, bank_id: Arc<str>, worker_ids: Vec<Arc<str>>) -> Arc<BankActivity> {
        let bank = Arc::new(BankActivity::new(bank_id.clone(), worker_ids));
        self.banks.write().insert(bank_id, bank.clone());
        bank
    }

    /// Stops tracing a bank. Holders of its [`BankActivity`] may keep recording into it; nobody
    /// reads it any more.
    pub fn remove_bank(&self, bank_id: &str) {
        self.banks.write().remove(bank_id);
    }

    /// The activity of a bank.
    pub fn bank(&self, bank_id: &str) -> Option<Arc<BankActivity>> {
        self.banks.read().get(bank_id).cloned()
    }

    /// The ids of the traced banks, sorted.
    pub fn bank_ids(&self) -> Vec<Arc<str>> {
        self.banks.read().keys().cloned().collect()
    }

    /// Where the next request should go: the given bank, or else the bank with the least load
    /// per usable worker (ties: faster average response time, then bank id); within it, the
    /// least-loaded usable worker (see [`BankActivity::least_loaded_worker`]).
    ///
    /// `None` when the bank is unknown or no bank has a worker that is not in error or offline.
    pub fn get_next_worker(&self, bank_id: Option<&str>) -> Option<(Arc<str>, usize)> {
        let banks = self.banks.read();
        if let Some(id) = bank_id {
            let bank = banks.get(id)?;
            return bank.least_loaded_worker().map(|w| (bank.bank_id.clone(), w));
        }
        let mut best: Option<(&Arc<BankActivity>, Pick)> = None;
        for bank in banks.values() {
            let Some(pick) = bank.pick() else { continue };
            let better = match &best {
                None => true,
                Some((_, b)) => pick
                    .load_per_usable_worker()
                    .total_cmp(&b.load_per_usable_worker())
                    .then(pick.average_response_ms.total_cmp(&b.average_response_ms))
                    .is_lt(),
            };
            if better {
                best = Some((bank, pick));
            }
        }
        best.map(|(bank, pick)| (bank.bank_id.clone(), pick.worker))
    }

    /// Live state of the workers of one bank, or of every bank (sorted by bank id, then worker
    /// index). Empty for an unknown bank.
    pub fn workers(&self, bank_id: Option<&str>) -> Vec<WorkerInfo> {
        let banks = self.banks.read();
        match bank_id {
            Some(id) => banks.get(id).map(|b| b.snapshot()).unwrap_or_default(),
            None => banks.values().flat_map(|b| b.snapshot()).collect(),
        }
    }

    /// Totals, a summary per bank, and recommendations.
    ///
    /// Recommendations name: a bank whose load per worker exceeds [`OVERLOAD_FACTOR`](super::OVERLOAD_FACTOR) times the
    /// system-wide load per worker; a bank with workers in error or offline; a bank with nothing
    /// to do while others hold requests.
    pub fn load_balancing_report(&self) -> LoadBalancingReport {
        // Snapshot under the lock, compute after it: the report is not on the hot path, but
        // writers (initialize/remove) should not wait for string formatting.
        let snapshots: Vec<(Arc<str>, Vec<WorkerInfo>, f64)> = {
            let banks = self.banks.read();
            banks.values().map(|b| (b.bank_id.clone(), b.snapshot(), b.average_response_ms())).collect()
        };

        let mut totals = LoadTotals { banks: snapshots.len(), ..LoadTotals::default() };
        let mut summaries = Vec::with_capacity(snapshots.len());
        for (bank_id, workers, average_response_ms) in snapshots {
            let mut by_status = WorkerStatusCounts::default();
            let (mut load, mut sent, mut completed, mut errors) = (0usize, 0u64, 0u64, 0u64);
            for w in &workers {
                by_status.add(w.status);
                load += w.current_load;
                sent += w.messages_sent;
                completed += w.messages_completed;
                errors += w.errors;
            }
            let worker_count = workers.len();
            totals.workers += worker_count;
            totals.idle += by_status.idle;
            totals.busy += by_status.busy;
            totals.error += by_status.error;
            totals.offline += by_status.offline;
            totals.total_load += load;
            totals.messages_sent += sent;
            totals.messages_completed += completed;
            totals.errors += errors;
            summaries.push(BankLoadSummary {
                bank_id,
                worker_count,
                load,
                average_load_per_worker: ratio(load, worker_count),
                average_response_ms,
                messages_sent: sent,
                messages_completed: completed,
                errors,
                workers_by_status: by_status,
            });
        }

        let recommendations = recommend(&totals, &summaries);
        LoadBalancingReport { totals, banks: summaries, recommendations }
    }
}
