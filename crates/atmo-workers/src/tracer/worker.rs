//! One worker's figures, as atomics on their own cache lines.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};

use atmo_core::{RequestId, Timestamp, WorkerInfo, WorkerStatus};
use parking_lot::Mutex;

/// Weight of the newest sample in a worker's moving average of response time.
pub const RESPONSE_TIME_ALPHA: f64 = 0.2;

pub(super) const HEALTH_OK: u8 = 0;
pub(super) const HEALTH_ERROR: u8 = 1;
pub(super) const HEALTH_OFFLINE: u8 = 2;

/// `average_bits` before the first sample: a NaN payload that arithmetic never produces
/// (it yields the canonical NaN), so it cannot be confused with a real average.
const NO_SAMPLE: u64 = u64::MAX;

/// `last_activity` before any activity.
const NO_ACTIVITY: i64 = i64::MIN;

pub(super) fn ema(bits: u64, sample: f64) -> f64 {
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
pub(super) struct WorkerActivity {
    pub(super) worker_id: Arc<str>,
    pub(super) health: AtomicU8,
    pub(super) load: AtomicUsize,
    pub(super) sent: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) average_bits: AtomicU64,
    pub(super) last_activity: AtomicI64,
    pub(super) current: Mutex<Option<RequestId>>,
}

impl WorkerActivity {
    pub(super) fn new(worker_id: Arc<str>) -> Self {
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

    pub(super) fn touch(&self, at: Timestamp) {
        // fetch_max: records from several threads may arrive out of order.
        self.last_activity.fetch_max(at.as_micros(), Relaxed);
    }

    /// One fewer held (saturating: a stray finish must not wrap the load to `usize::MAX`); when
    /// nothing is held any more nothing runs, so the current request is cleared.
    pub(super) fn release(&self) {
        if let Ok(1) = self.load.fetch_update(Relaxed, Relaxed, |l| l.checked_sub(1)) {
            *self.current.lock() = None;
        }
    }

    pub(super) fn average_ms(&self) -> Option<f64> {
        let bits = self.average_bits.load(Relaxed);
        (bits != NO_SAMPLE).then(|| f64::from_bits(bits))
    }

    pub(super) fn status(&self) -> WorkerStatus {
        match self.health.load(Relaxed) {
            HEALTH_ERROR => WorkerStatus::Error,
            HEALTH_OFFLINE => WorkerStatus::Offline,
            _ if self.load.load(Relaxed) > 0 => WorkerStatus::Busy,
            _ => WorkerStatus::Idle,
        }
    }

    pub(super) fn info(&self, bank_id: &Arc<str>) -> WorkerInfo {
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
