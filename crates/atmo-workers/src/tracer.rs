//! Per-worker and per-bank activity: what each worker holds and how fast it answers, which worker
//! should get the next request, and the load-balancing report.
//!
//! The engine calls [`BankActivity::record_dispatch`] and [`BankActivity::record_finish`] (and
//! optionally [`BankActivity::record_start`]) on every request, so recording is lock-free: each
//! worker's figures are atomics, and a worker's figures sit on their own cache lines so that
//! threads recording for neighbouring workers do not slow each other down. Readers (selection,
//! snapshots, the report) sum the atomics when asked; their answers are consistent per field,
//! not across fields, which is all load balancing needs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use atmo_core::{RequestId, Timestamp, WorkerInfo, WorkerStatus};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

/// Weight of the newest sample in a worker's moving average of response time.
pub const RESPONSE_TIME_ALPHA: f64 = 0.2;

/// A bank whose load per worker exceeds this multiple of the system-wide load per worker is
/// reported as overloaded.
pub const OVERLOAD_FACTOR: f64 = 1.5;

// ===== ActivityTracer =====

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
    /// Recommendations name: a bank whose load per worker exceeds [`OVERLOAD_FACTOR`] times the
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

fn ratio(load: usize, workers: usize) -> f64 {
    if workers == 0 { 0.0 } else { load as f64 / workers as f64 }
}

fn recommend(totals: &LoadTotals, banks: &[BankLoadSummary]) -> Vec<String> {
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

/// What [`ActivityTracer::load_balancing_report`] returns.
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
    fn add(&mut self, s: WorkerStatus) {
        match s {
            WorkerStatus::Idle => self.idle += 1,
            WorkerStatus::Busy => self.busy += 1,
            WorkerStatus::Error => self.error += 1,
            WorkerStatus::Offline => self.offline += 1,
        }
    }
}

// ===== BankActivity =====

/// The activity of one bank's workers, addressed by worker index.
///
/// Every `record_*` method is lock-free except that [`record_start`](Self::record_start) and a
/// finish that leaves the worker empty touch a per-worker mutex holding the current request.
/// An index out of range is ignored (reads return zero / `None`).
///
/// A worker's status follows from its figures: `Busy` while it holds requests, `Idle` otherwise,
/// unless [`set_status`](Self::set_status) marked it `Error` or `Offline`.
///
/// ```
/// use atmo_workers::tracer::BankActivity;
/// use atmo_workers::{RequestId, Timestamp, WorkerStatus};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let bank = BankActivity::new(Arc::from("io"), vec![Arc::from("io/0")]);
/// bank.record_dispatch(0);
/// bank.record_start(0, RequestId::from_u128(1), Timestamp::from_millis(5));
/// assert_eq!(bank.snapshot()[0].status, WorkerStatus::Busy);
/// bank.record_finish(0, Duration::from_millis(10), false, Timestamp::from_millis(15));
/// let w = &bank.snapshot()[0];
/// assert_eq!((w.status, w.messages_completed, w.errors), (WorkerStatus::Idle, 1, 1));
/// ```
#[derive(Debug)]
pub struct BankActivity {
    bank_id: Arc<str>,
    workers: Vec<WorkerActivity>,
    // Returned by `worker_id` for an index out of range, so that the accessor never panics.
    unknown_worker: Arc<str>,
}

/// The best worker of a bank plus the bank-level figures needed to compare banks, gathered in
/// one pass over the workers.
#[derive(Clone, Copy, Debug)]
struct Pick {
    worker: usize,
    usable: usize,
    load: usize,
    average_response_ms: f64,
}

impl Pick {
    fn load_per_usable_worker(&self) -> f64 {
        ratio(self.load, self.usable)
    }
}

impl BankActivity {
    /// Activity for a bank with these workers, all idle with no history.
    pub fn new(bank_id: Arc<str>, worker_ids: Vec<Arc<str>>) -> Self {
        let unknown_worker = Arc::from(format!("{bank_id}/unknown"));
        BankActivity { bank_id, workers: worker_ids.into_iter().map(WorkerActivity::new).collect(), unknown_worker }
    }

    /// The bank's id.
    pub fn bank_id(&self) -> &Arc<str> {
        &self.bank_id
    }

    /// Number of workers.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// The id of worker `idx` (`"<bank>/unknown"` when out of range).
    pub fn worker_id(&self, idx: usize) -> &Arc<str> {
        self.workers.get(idx).map_or(&self.unknown_worker, |w| &w.worker_id)
    }

    /// The usable worker (not in error, not offline) holding the fewest requests; ties go to the
    /// faster moving average of response time (a worker without samples counts as fastest, so
    /// new workers get tried), then to the lower index. `None` when no worker is usable.
    pub fn least_loaded_worker(&self) -> Option<usize> {
        self.pick().map(|p| p.worker)
    }

    fn pick(&self) -> Option<Pick> {
        let mut best: Option<(usize, usize, f64)> = None;
        let (mut usable, mut load) = (0usize, 0usize);
        let (mut weighted_ms, mut weight) = (0.0f64, 0u64);
        for (i, w) in self.workers.iter().enumerate() {
            let l = w.load.load(Relaxed);
            load += l;
            let avg = w.average_ms();
            if let Some(ms) = avg {
                let n = w.completed.load(Relaxed).max(1);
                weighted_ms += ms * n as f64;
                weight += n;
            }
            if w.health.load(Relaxed) != HEALTH_OK {
                continue;
            }
            usable += 1;
            let ms = avg.unwrap_or(0.0);
            let better = match best {
                None => true,
                Some((_, bl, bms)) => l < bl || (l == bl && ms.total_cmp(&bms).is_lt()),
            };
            if better {
                best = Some((i, l, ms));
            }
        }
        let average_response_ms = if weight == 0 { 0.0 } else { weighted_ms / weight as f64 };
        best.map(|(worker, _, _)| Pick { worker, usable, load, average_response_ms })
    }

    /// A request was handed to worker `idx`: one more sent, one more held.
    pub fn record_dispatch(&self, idx: usize) {
        if let Some(w) = self.workers.get(idx) {
            w.sent.fetch_add(1, Relaxed);
            w.load.fetch_add(1, Relaxed);
        }
    }

    /// Worker `idx` started running `request` at `at`.
    ///
    /// A worker in error that starts work is evidently alive again, so it leaves the error
    /// state; an offline worker stays offline until [`set_status`](Self::set_status) says
    /// otherwise (a late start must not resurrect a stopped worker).
    pub fn record_start(&self, idx: usize, request: RequestId, at: Timestamp) {
        if let Some(w) = self.workers.get(idx) {
            let _ = w.health.compare_exchange(HEALTH_ERROR, HEALTH_OK, Relaxed, Relaxed);
            *w.current.lock() = Some(request);
            w.touch(at);
        }
    }

    /// Worker `idx` finished a request after `processing` (successfully or not) at `at`: one
    /// fewer held, one more completed, one more error if it failed, and the moving average of
    /// response time takes the sample (the first sample sets it).
    pub fn record_finish(&self, idx: usize, processing: Duration, success: bool, at: Timestamp) {
        let Some(w) = self.workers.get(idx) else { return };
        w.completed.fetch_add(1, Relaxed);
        if !success {
            w.errors.fetch_add(1, Relaxed);
        }
        let sample = processing.as_secs_f64() * 1000.0;
        // Only this CAS loop serialises concurrent finishes on one worker; it retries only when
        // two finish at the same instant, which is rare per worker.
        let _ = w.average_bits.fetch_update(Relaxed, Relaxed, |bits| Some(ema(bits, sample).to_bits()));
        w.touch(at);
        w.release();
    }

    /// A request dispatched to worker `idx` never ran (cancelled while queued): one fewer held.
    pub fn record_dropped(&self, idx: usize) {
        if let Some(w) = self.workers.get(idx) {
            w.release();
        }
    }

    /// Marks worker `idx` in error or offline (skipped by selection), or usable again with
    /// `Idle` or `Busy` (which of the two it then reports follows from its load).
    pub fn set_status(&self, idx: usize, status: WorkerStatus) {
        if let Some(w) = self.workers.get(idx) {
            let health = match status {
                WorkerStatus::Idle | WorkerStatus::Busy => HEALTH_OK,
                WorkerStatus::Error => HEALTH_ERROR,
                WorkerStatus::Offline => HEALTH_OFFLINE,
            };
            w.health.store(health, Relaxed);
        }
    }

    /// Requests held by all workers of the bank.
    pub fn load(&self) -> usize {
        self.workers.iter().map(|w| w.load.load(Relaxed)).sum()
    }

    /// Requests held by worker `idx` (0 when out of range).
    pub fn worker_load(&self, idx: usize) -> usize {
        self.workers.get(idx).map_or(0, |w| w.load.load(Relaxed))
    }

    /// The status of worker `idx` (`None` when out of range).
    pub fn worker_status(&self, idx: usize) -> Option<WorkerStatus> {
        self.workers.get(idx).map(WorkerActivity::status)
    }

    /// The workers' moving averages of response time in milliseconds, weighted by requests
    /// completed; 0 before any sample.
    pub fn average_response_ms(&self) -> f64 {
        let (mut sum, mut weight) = (0.0f64, 0u64);
        for w in &self.workers {
            if let Some(ms) = w.average_ms() {
                let n = w.completed.load(Relaxed).max(1);
                sum += ms * n as f64;
                weight += n;
            }
        }
        if weight == 0 { 0.0 } else { sum / weight as f64 }
    }

    /// Live state of every worker, by index.
    pub fn snapshot(&self) -> Vec<WorkerInfo> {
        self.workers.iter().map(|w| w.info(&self.bank_id)).collect()
    }
}

// ===== WorkerActivity =====

const HEALTH_OK: u8 = 0;
const HEALTH_ERROR: u8 = 1;
const HEALTH_OFFLINE: u8 = 2;

/// `average_bits` before the first sample: a NaN payload that arithmetic never produces
/// (it yields the canonical NaN), so it cannot be confused with a real average.
const NO_SAMPLE: u64 = u64::MAX;

/// `last_activity` before any activity.
const NO_ACTIVITY: i64 = i64::MIN;

fn ema(bits: u64, sample: f64) -> f64 {
    if bits == NO_SAMPLE {
        sample
    } else {
        let old = f64::from_bits(bits);
        old + RESPONSE_TIME_ALPHA * (sample - old)
    }
}

// Aligned to 128 bytes (two cache lines, as adjacent-line prefetchers pair them) so that threads
// recording for different workers of one bank do not contend on shared lines.
#[repr(align(128))]
struct WorkerActivity {
    worker_id: Arc<str>,
    health: AtomicU8,
    load: AtomicUsize,
    sent: AtomicU64,
    completed: AtomicU64,
    errors: AtomicU64,
    average_bits: AtomicU64,
    last_activity: AtomicI64,
    current: Mutex<Option<RequestId>>,
}

impl WorkerActivity {
    fn new(worker_id: Arc<str>) -> Self {
        WorkerActivity {
            worker_id,
            health: AtomicU8::new(HEALTH_OK),
            load: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            average_bits: AtomicU64::new(NO_SAMPLE),
            last_activity: AtomicI64::new(NO_ACTIVITY),
            current: Mutex::new(None),
        }
    }

    fn touch(&self, at: Timestamp) {
        // fetch_max: records from several threads may arrive out of order.
        self.last_activity.fetch_max(at.as_micros(), Relaxed);
    }

    /// One fewer held (saturating: a stray finish must not wrap the load to `usize::MAX`); when
    /// nothing is held any more nothing runs, so the current request is cleared.
    fn release(&self) {
        if let Ok(1) = self.load.fetch_update(Relaxed, Relaxed, |l| l.checked_sub(1)) {
            *self.current.lock() = None;
        }
    }

    fn average_ms(&self) -> Option<f64> {
        let bits = self.average_bits.load(Relaxed);
        (bits != NO_SAMPLE).then(|| f64::from_bits(bits))
    }

    fn status(&self) -> WorkerStatus {
        match self.health.load(Relaxed) {
            HEALTH_ERROR => WorkerStatus::Error,
            HEALTH_OFFLINE => WorkerStatus::Offline,
            _ if self.load.load(Relaxed) > 0 => WorkerStatus::Busy,
            _ => WorkerStatus::Idle,
        }
    }

    fn info(&self, bank_id: &Arc<str>) -> WorkerInfo {
        let last = self.last_activity.load(Relaxed);
        WorkerInfo {
            worker_id: self.worker_id.clone(),
            bank_id: bank_id.clone(),
            status: self.status(),
            current_load: self.load.load(Relaxed),
            current_request: *self.current.lock(),
            messages_sent: self.sent.load(Relaxed),
            messages_completed: self.completed.load(Relaxed),
            errors: self.errors.load(Relaxed),
            average_response_time_ms: self.average_ms().unwrap_or(0.0),
            last_activity: (last != NO_ACTIVITY).then(|| Timestamp::from_micros(last)),
        }
    }
}

impl fmt::Debug for WorkerActivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerActivity")
            .field("worker_id", &self.worker_id)
            .field("status", &self.status())
            .field("load", &self.load.load(Relaxed))
            .field("average_ms", &self.average_ms())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(bank: &str, n: usize) -> Vec<Arc<str>> {
        (0..n).map(|i| Arc::from(format!("{bank}/{i}"))).collect()
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn least_loaded_worker_prefers_lowest_load_then_fastest_then_lowest_index() {
        let bank = BankActivity::new(Arc::from("b"), ids("b", 3));
        assert_eq!(bank.least_loaded_worker(), Some(0), "all equal: lowest index");

        bank.record_dispatch(0);
        assert_eq!(bank.least_loaded_worker(), Some(1));
        bank.record_dispatch(1);
        bank.record_dispatch(2);
        assert_eq!(bank.least_loaded_worker(), Some(0), "all hold one: lowest index");

        // Equal load: the faster worker wins.
        bank.record_finish(0, ms(50), true, t(1));
        bank.record_finish(1, ms(10), true, t(1));
        bank.record_finish(2, ms(30), true, t(1));
        assert_eq!(bank.least_loaded_worker(), Some(1));

        // Load beats speed.
        bank.record_dispatch(1);
        assert_eq!(bank.least_loaded_worker(), Some(2));
    }

    #[test]
    fn workers_without_samples_are_tried_before_measured_ones() {
        let bank = BankActivity::new(Arc::from("b"), ids("b", 2));
        bank.record_dispatch(0);
        bank.record_finish(0, ms(5), true, t(1));
        assert_eq!(bank.least_loaded_worker(), Some(1));
    }

    #[test]
    fn error_and_offline_workers_are_skipped() {
        let bank = BankActivity::new(Arc::from("b"), ids("b", 2));
        bank.set_status(0, WorkerStatus::Error);
        bank.record_dispatch(1);
        assert_eq!(bank.least_loaded_worker(), Some(1));
        bank.set_status(1, WorkerStatus::Offline);
        assert_eq!(bank.least_loaded_worker(), None);
        bank.set_status(0, WorkerStatus::Idle);
        assert_eq!(bank.least_loaded_worker(), Some(0));
    }

    #[test]
    fn get_next_worker_picks_least_loaded_bank_per_worker() {
        let tracer = ActivityTracer::new();
        let a = tracer.initialize_bank(Arc::from("a"), ids("a", 1));
        let b = tracer.initialize_bank(Arc::from("b"), ids("b", 4));
        a.record_dispatch(0);
        b.record_dispatch(0);
        b.record_dispatch(1);
        // a: 1 per worker; b: 0.5 per worker.
        assert_eq!(tracer.get_next_worker(None), Some((Arc::from("b"), 2)));
        assert_eq!(tracer.get_next_worker(Some("a")), Some((Arc::from("a"), 0)));
        assert_eq!(tracer.get_next_worker(Some("missing")), None);

        // Offline workers do not count as capacity: b now has 2 usable workers holding 2.
        b.set_status(2, WorkerStatus::Offline);
        b.set_status(3, WorkerStatus::Offline);
        b.record_dispatch(0);
        // a: 1/1, b: 3/2.
        assert_eq!(tracer.get_next_worker(None), Some((Arc::from("a"), 0)));
    }

    #[test]
    fn get_next_worker_breaks_bank_ties_by_response_time() {
        let tracer = ActivityTracer::new();
        let a = tracer.initialize_bank(Arc::from("a"), ids("a", 1));
        let b = tracer.initialize_bank(Arc::from("b"), ids("b", 1));
        for (bank, d) in [(&a, 80), (&b, 20)] {
            bank.record_dispatch(0);
            bank.record_finish(0, ms(d), true, t(1));
        }
        assert_eq!(tracer.get_next_worker(None).map(|(b, _)| b), Some(Arc::from("b")));
    }

    #[test]
    fn get_next_worker_is_none_without_usable_workers() {
        let tracer = ActivityTracer::new();
        assert_eq!(tracer.get_next_worker(None), None);
        let a = tracer.initialize_bank(Arc::from("a"), ids("a", 1));
        tracer.initialize_bank(Arc::from("empty"), Vec::new());
        a.set_status(0, WorkerStatus::Error);
        assert_eq!(tracer.get_next_worker(None), None);
    }

    #[test]
    fn moving_average_first_sample_sets_it_then_alpha_point_two() {
        let bank = BankActivity::new(Arc::from("b"), ids("b", 1));
        assert_eq!(bank.average_response_ms(), 0.0);
        bank.record_finish(0, ms(100), true, t(1));
        assert_eq!(bank.snapshot()[0].average_response_time_ms, 100.0);
        bank.record_finish(0, ms(200), true, t(2));
        // 100 + 0.2 * (200 - 100)
        assert!((bank.snapshot()[0].average_response_time_ms - 120.0).abs() < 1e-9);
        bank.record_finish(0, ms(0), true, t(3));
        // 120 + 0.2 * (0 - 120)
        assert!((bank.average_response_ms() - 96.0).abs() < 1e-9);
    }

    #[test]
    fn bank_average_is_weighted_by_completed() {
        let bank = BankActivity::new(Arc::from("b"), ids("b", 2));
        for _ in 0..3 {
            bank.record_finish(0, ms(10), true, t(1));
        }
        bank.record_finish(1, ms(50), true, t(1));
        assert!((bank.average_response_ms() - (3.0 * 10.0 + 50.0) / 4.0).abs() < 1e-9);
    }

    #[test]
    fn status_follows_load_and_explicit_marks() {
        let bank = BankActivity::new(Arc::from("b"), ids("b", 1));
        let status = || bank.worker_status(0);
        assert_eq!(status(), Some(WorkerStatus::Idle));

        bank.record_dispatch(0);
        bank.record_dispatch(0);
        bank.record_start(0, RequestId::from_u128(7), t(10));
        let w = &bank.snapshot()[0];
        assert_eq!(
            (w.status, w.current_load, w.current_request),
            (WorkerStatus::Busy, 2, Some(RequestId::from_u128(7)))
        );
        assert_eq!(w.last_activity, Some(t(10)));

        bank.record_finish(0, ms(1), true, t(20));
        assert_eq!(status(), Some(WorkerStatus::Busy), "still holds one");
        bank.record_dropped(0);
        let w = &bank.snapshot()[0];
        assert_eq!((w.status, w.current_load, w.current_request), (WorkerStatus::Idle, 0, None));
        assert_eq!((w.messages_sent, w.messages_completed), (2, 1));
        assert_eq!(w.last_activity, Some(t(20)));

        // Error is sticky through finishes but cleared by a start; offline is sticky.
        bank.set_status(0, WorkerStatus::Error);
        bank.record_dispatch(0);
        bank.record_finish(0, ms(1), false, t(30));
        assert_eq!(status(), Some(WorkerStatus::Error));
        bank.record_start(0, RequestId::from_u128(8), t(40));
        assert_eq!(status(), Some(WorkerStatus::Idle));
        bank.set_status(0, WorkerStatus::Offline);
        bank.record_start(0, RequestId::from_u128(9), t(50));
        assert_eq!(status(), Some(WorkerStatus::Offline));
        assert_eq!(bank.snapshot()[0].errors, 1);
    }

    #[test]
    fn load_never_underflows_and_out_of_range_is_ignored() {
        let bank = BankActivity::new(Arc::from("b"), ids("b", 1));
        bank.record_finish(0, ms(1), true, t(1));
        bank.record_dropped(0);
        assert_eq!(bank.worker_load(0), 0);

        bank.record_dispatch(5);
        bank.record_start(5, RequestId::from_u128(1), t(1));
        bank.record_finish(5, ms(1), true, t(1));
        bank.record_dropped(5);
        bank.set_status(5, WorkerStatus::Error);
        assert_eq!(bank.worker_load(5), 0);
        assert_eq!(bank.worker_status(5), None);
        assert_eq!(&**bank.worker_id(5), "b/unknown");
        assert_eq!(&**bank.worker_id(0), "b/0");
        assert_eq!(bank.load(), 0);
    }

    #[test]
    fn initialize_replaces_and_remove_forgets() {
        let tracer = ActivityTracer::new();
        let old = tracer.initialize_bank(Arc::from("a"), ids("a", 1));
        old.record_dispatch(0);
        tracer.initialize_bank(Arc::from("a"), ids("a", 3));
        let bank = tracer.bank("a");
        assert_eq!(bank.as_ref().map(|b| (b.worker_count(), b.load())), Some((3, 0)));
        assert_eq!(tracer.workers(None).len(), 3);
        assert_eq!(tracer.bank_ids(), vec![Arc::<str>::from("a")]);
        tracer.remove_bank("a");
        assert!(tracer.bank("a").is_none());
        assert!(tracer.workers(Some("a")).is_empty());
    }

    #[test]
    fn report_totals_and_summaries() {
        let tracer = ActivityTracer::new();
        let a = tracer.initialize_bank(Arc::from("a"), ids("a", 2));
        a.record_dispatch(0);
        a.record_dispatch(1);
        a.record_finish(1, ms(10), false, t(1));
        let report = tracer.load_balancing_report();
        assert_eq!(
            report.totals,
            LoadTotals {
                banks: 1,
                workers: 2,
                busy: 1,
                idle: 1,
                error: 0,
                offline: 0,
                total_load: 1,
                messages_sent: 2,
                messages_completed: 1,
                errors: 1
            }
        );
        let s = &report.banks[0];
        assert_eq!((s.load, s.average_load_per_worker, s.average_response_ms), (1, 0.5, 10.0));
        assert_eq!(s.workers_by_status, WorkerStatusCounts { idle: 1, busy: 1, error: 0, offline: 0 });

        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(json["totals"]["totalLoad"], 1);
        assert_eq!(json["banks"][0]["averageLoadPerWorker"], 0.5);
        assert_eq!(json["banks"][0]["workersByStatus"]["busy"], 1);
    }

    #[test]
    fn report_recommends_on_overload_unavailable_and_idle_banks() {
        let tracer = ActivityTracer::new();
        let hot = tracer.initialize_bank(Arc::from("hot"), ids("hot", 2));
        tracer.initialize_bank(Arc::from("cold"), ids("cold", 2));
        let broken = tracer.initialize_bank(Arc::from("broken"), ids("broken", 2));
        for _ in 0..6 {
            hot.record_dispatch(0);
        }
        broken.set_status(0, WorkerStatus::Offline);
        broken.set_status(1, WorkerStatus::Error);
        // 6 requests over 6 workers: 1 per worker; hot has 3 per worker.
        let recs = tracer.load_balancing_report().recommendations;
        let about = |bank: &str, word: &str| recs.iter().any(|r| r.contains(&format!("`{bank}`")) && r.contains(word));
        assert!(about("hot", "overloaded"), "{recs:?}");
        assert!(about("broken", "2 of 2 workers unavailable"), "{recs:?}");
        assert!(about("cold", "idle"), "{recs:?}");
        assert!(!about("broken", "idle"), "a bank without usable workers is not idle: {recs:?}");
        assert_eq!(recs.len(), 3, "{recs:?}");

        // Balanced again: nothing to say.
        for _ in 0..6 {
            hot.record_finish(0, ms(1), true, t(1));
        }
        broken.set_status(0, WorkerStatus::Idle);
        broken.set_status(1, WorkerStatus::Idle);
        assert!(tracer.load_balancing_report().recommendations.is_empty());
    }

    #[test]
    fn concurrent_recording_keeps_counts_exact() {
        const THREADS: usize = 8;
        const PER_THREAD: u64 = 20_000;
        let bank = Arc::new(BankActivity::new(Arc::from("b"), ids("b", 2)));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let bank = bank.clone();
                std::thread::spawn(move || {
                    let idx = i % 2;
                    for n in 0..PER_THREAD {
                        bank.record_dispatch(idx);
                        bank.record_start(idx, RequestId::from_u128(u128::from(n)), t(n as i64));
                        bank.record_finish(idx, ms(n % 7), n % 3 != 0, t(n as i64));
                    }
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().is_ok());
        }
        let per_worker = PER_THREAD * (THREADS as u64 / 2);
        for w in bank.snapshot() {
            assert_eq!(w.messages_sent, per_worker);
            assert_eq!(w.messages_completed, per_worker);
            assert_eq!(w.errors, (THREADS as u64 / 2) * (0..PER_THREAD).filter(|n| n % 3 == 0).count() as u64);
            assert_eq!(w.current_load, 0);
            assert_eq!(w.status, WorkerStatus::Idle);
            assert_eq!(w.current_request, None);
            assert!((0.0..=6.0).contains(&w.average_response_time_ms));
            assert_eq!(w.last_activity, Some(t(PER_THREAD as i64 - 1)));
        }
    }
}
