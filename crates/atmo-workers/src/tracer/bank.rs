//! [`BankActivity`]: the activity of one bank's workers.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use atmo_core::{RequestId, Timestamp, WorkerInfo, WorkerStatus};

use super::report::ratio;
use super::worker::{HEALTH_ERROR, HEALTH_OFFLINE, HEALTH_OK, WorkerActivity, ema};

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
    pub(super) bank_id: Arc<str>,
    workers: Vec<WorkerActivity>,
    // Returned by `worker_id` for an index out of range, so that the accessor never panics.
    unknown_worker: Arc<str>,
}

/// The best worker of a bank plus the bank-level figures needed to compare banks, gathered in
/// one pass over the workers.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pick {
    pub(super) worker: usize,
    pub(super) usable: usize,
    pub(super) load: usize,
    pub(super) average_response_ms: f64,
}

impl Pick {
    pub(super) fn load_per_usable_worker(&self) -> f64 {
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

    pub(super) fn pick(&self) -> Option<Pick> {
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
