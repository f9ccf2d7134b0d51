//! A bank at run time: its executor, capacity and live figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use atmo_core::{Bank, BankPerformance, BankStatus, Manifest, Timestamp};
use serde_json::Value;

use super::executor::Executor;
use crate::tracer::BankActivity;

#[derive(Debug)]
pub(crate) struct BankRuntime {
    pub(crate) index: u32,
    pub(crate) id: Arc<str>,
    pub(crate) name: String,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) config: Value,
    pub(crate) created_at: Timestamp,
    pub(crate) task_ids: Vec<Arc<str>>,
    pub(crate) worker_ids: Vec<Arc<str>>,
    /// Requests the bank may hold at once (assigned plus processing).
    pub(crate) capacity: usize,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) proficiency: f64,
    /// Shown in bank lists and metrics (the engine's own banks, such as test mode's reducer,
    /// are not).
    pub(crate) listed: bool,
    /// Claims every registered task instead of its manifest's (test mode's reducer).
    pub(crate) catch_all: bool,
    status: AtomicU8,
    pub(crate) activity: Arc<BankActivity>,
    pub(crate) executor: Box<dyn Executor>,
    /// Counters of a bank whose workers speak the protocol.
    pub(crate) supervision_stats: Option<Arc<super::supervision::SupervisionStats>>,
    completed: AtomicU64,
    failed: AtomicU64,
    processing_micros: AtomicU64,
}

fn status_code(s: BankStatus) -> u8 {
    match s {
        BankStatus::Active => 0,
        BankStatus::Inactive => 1,
        BankStatus::Draining => 2,
        BankStatus::Error => 3,
        BankStatus::Terminated => 4,
    }
}

fn status_from(c: u8) -> BankStatus {
    match c {
        0 => BankStatus::Active,
        1 => BankStatus::Inactive,
        2 => BankStatus::Draining,
        3 => BankStatus::Error,
        _ => BankStatus::Terminated,
    }
}

impl BankRuntime {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: u32,
        id: Arc<str>,
        name: String,
        manifest: Arc<Manifest>,
        config: Value,
        created_at: Timestamp,
        worker_ids: Vec<Arc<str>>,
        capacity: usize,
        proficiency: f64,
        activity: Arc<BankActivity>,
        executor: Box<dyn Executor>,
    ) -> Self {
        let task_ids = manifest.actions.iter().map(|a| Arc::from(a.action_id.as_str())).collect();
        BankRuntime {
            index,
            id,
            name,
            manifest,
            config,
            created_at,
            task_ids,
            worker_ids,
            capacity,
            in_flight: AtomicUsize::new(0),
            proficiency,
            listed: true,
            catch_all: false,
            status: AtomicU8::new(status_code(BankStatus::Active)),
            activity,
            executor,
            supervision_stats: None,
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            processing_micros: AtomicU64::new(0),
        }
    }

    pub(crate) fn status(&self) -> BankStatus {
        status_from(self.status.load(Ordering::Acquire))
    }

    pub(crate) fn set_status(&self, s: BankStatus) {
        self.status.store(status_code(s), Ordering::Release);
    }

    pub(crate) fn spare(&self) -> usize {
        self.capacity.saturating_sub(self.in_flight.load(Ordering::Acquire))
    }

    pub(crate) fn load(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn release(&self, n: usize) {
        let _ = self.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(n)));
    }

    pub(crate) fn record_result(&self, success: bool, processing_micros: u64) {
        if success {
            self.completed.fetch_add(1, Ordering::Relaxed);
            self.processing_micros.fetch_add(processing_micros, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// [`BankRuntime::record_result`] for many requests at once.
    pub(crate) fn record_results(&self, completed: u64, failed: u64, processing_micros: u64) {
        if completed > 0 {
            self.completed.fetch_add(completed, Ordering::Relaxed);
            self.processing_micros.fetch_add(processing_micros, Ordering::Relaxed);
        }
        if failed > 0 {
            self.failed.fetch_add(failed, Ordering::Relaxed);
        }
    }

    pub(crate) fn success_rate(&self) -> f64 {
        let c = self.completed.load(Ordering::Relaxed);
        let f = self.failed.load(Ordering::Relaxed);
        if c + f == 0 { 1.0 } else { c as f64 / (c + f) as f64 }
    }

    pub(crate) fn average_processing_ms(&self) -> f64 {
        let c = self.completed.load(Ordering::Relaxed);
        if c == 0 { 0.0 } else { self.processing_micros.load(Ordering::Relaxed) as f64 / c as f64 / 1000.0 }
    }

    /// The original package's score: spare capacity, proficiency and success rate.
    pub(crate) fn score(&self) -> f64 {
        let spare = if self.capacity == 0 { 0.0 } else { self.spare() as f64 / self.capacity as f64 };
        0.4 * spare + 0.3 * self.proficiency + 0.3 * self.success_rate()
    }

    pub(crate) fn record(&self) -> Bank {
        Bank {
            bank_id: self.id.clone(),
            name: self.name.clone(),
            status: self.status(),
            manifest: Some(self.manifest.name.clone()),
            manifest_version: Some(self.manifest.version.clone()),
            worker_count: self.worker_ids.len(),
            capacity: self.capacity,
            config: self.config.clone(),
            created_at: Some(self.created_at),
        }
    }

    pub(crate) fn performance(&self) -> BankPerformance {
        let load = self.load();
        BankPerformance {
            bank_id: self.id.clone(),
            status: self.status(),
            worker_count: self.worker_ids.len(),
            capacity: self.capacity,
            current_load: load,
            utilization: if self.capacity == 0 { 0.0 } else { load as f64 / self.capacity as f64 },
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            success_rate: self.success_rate(),
            average_processing_time_ms: self.average_processing_ms(),
            protocol_errors: self.supervision_stats.as_ref().map_or(0, |s| s.protocol_errors()),
            worker_restarts: self.supervision_stats.as_ref().map_or(0, |s| s.restarts()),
            abandoned_workers: self.supervision_stats.as_ref().map_or(0, |s| s.abandoned_workers()),
        }
    }
}
