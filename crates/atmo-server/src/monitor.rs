//! Background services of the server: the event pump (engine events into the hub, counters,
//! throughput buckets) and the history sampler behind `/v1/metrics/history`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atmo_workers::{EventItem, EventKind, EventStream, RequestStatus, Timestamp, WorkerManager};
use futures::StreamExt;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::watch;

use crate::hub::{EventHub, HubItem};

/// Counters since the server started, from the engine's events.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) submitted: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) rescued: AtomicU64,
    pub(crate) overloads: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) events_lost: AtomicU64,
}

/// What finished during the current sampling interval.
#[derive(Debug, Default)]
struct Bucket {
    submitted: u64,
    completed: u64,
    failed: u64,
    cancelled: u64,
    latencies_ms: Vec<f64>,
}

/// One point of `/v1/metrics/history`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistorySample {
    /// End of the interval.
    pub at: Timestamp,
    /// Requests submitted during the interval.
    pub submitted: u64,
    /// Requests completed during the interval.
    pub completed: u64,
    /// Requests failed or timed out for good during the interval.
    pub failed: u64,
    /// Requests cancelled during the interval.
    pub cancelled: u64,
    /// Median processing time of the requests completed during the interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th percentile of the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// Requests waiting (pending and scheduled) at the end of the interval.
    pub queue_depth: u64,
    /// Requests held by banks.
    pub current_load: usize,
    /// Requests held by the store, by status.
    pub by_status: BTreeMap<RequestStatus, u64>,
}

/// The history ring and the interval's bucket.
#[derive(Debug)]
pub(crate) struct Monitor {
    pub(crate) totals: Totals,
    bucket: Mutex<Bucket>,
    history: Mutex<VecDeque<HistorySample>>,
    capacity: usize,
    pub(crate) interval: Duration,
}

impl Monitor {
    pub(crate) fn new(interval: Duration, capacity: usize) -> Self {
        Monitor {
            totals: Totals::default(),
            bucket: Mutex::new(Bucket::default()),
            history: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity: capacity.max(1),
            interval,
        }
    }

    pub(crate) fn history(&self) -> Vec<HistorySample> {
        self.history.lock().iter().cloned().collect()
    }

    fn record(&self, kind: &EventKind) {
        let t = &self.totals;
        t.events.fetch_add(1, Ordering::Relaxed);
        match kind {
            EventKind::RequestSubmitted { .. } => {
                t.submitted.fetch_add(1, Ordering::Relaxed);
                self.bucket.lock().submitted += 1;
            }
            EventKind::RequestCompleted { processing_time_ms, .. } => {
                t.completed.fetch_add(1, Ordering::Relaxed);
                let mut b = self.bucket.lock();
                b.completed += 1;
                if let Some(ms) = processing_time_ms {
                    b.latencies_ms.push(*ms);
                }
            }
            EventKind::RequestFailed { .. } => {
                t.failed.fetch_add(1, Ordering::Relaxed);
                self.bucket.lock().failed += 1;
            }
            EventKind::RequestTimeout { r#final: true, .. } => {
                t.timed_out.fetch_add(1, Ordering::Relaxed);
                self.bucket.lock().failed += 1;
            }
            EventKind::RequestCancelled { .. } => {
                t.cancelled.fetch_add(1, Ordering::Relaxed);
                self.bucket.lock().cancelled += 1;
            }
            EventKind::RequestRetrying { .. } => {
                t.retried.fetch_add(1, Ordering::Relaxed);
            }
            EventKind::RequestRescued { .. } => {
                t.rescued.fetch_add(1, Ordering::Relaxed);
            }
            EventKind::SystemOverload { .. } => {
                t.overloads.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    async fn sample(&self, manager: &WorkerManager) {
        let bucket = std::mem::take(&mut *self.bucket.lock());
        let (queue_depth, current_load, by_status) = match manager.metrics().await {
            Ok(m) => (m.queue_depth, m.current_load, m.requests_by_status),
            Err(e) => {
                tracing::warn!(error = %e, "metrics sample failed");
                (0, 0, BTreeMap::new())
            }
        };
        let mut lat = bucket.latencies_ms;
        lat.sort_by(f64::total_cmp);
        let sample = HistorySample {
            at: manager.now(),
            submitted: bucket.submitted,
            completed: bucket.completed,
            failed: bucket.failed,
            cancelled: bucket.cancelled,
            p50_ms: percentile(&lat, 0.50),
            p99_ms: percentile(&lat, 0.99),
            queue_depth,
            current_load,
            by_status,
        };
        let mut h = self.history.lock();
        if h.len() == self.capacity {
            h.pop_front();
        }
        h.push_back(sample);
    }
}

/// The `q` quantile (nearest rank) of sorted samples.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Resolves when `stop` turns true or its sender is dropped.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Moves engine events into the hub and the monitor until the engine's bus closes or the
/// server stops.
pub(crate) async fn pump(
    mut stream: EventStream,
    hub: Arc<EventHub>,
    monitor: Arc<Monitor>,
    shutting_down: Arc<watch::Sender<bool>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let item = tokio::select! {
            item = stream.next() => item,
            _ = stopped(&mut stop) => return,
        };
        match item {
            Some(EventItem::Event(e)) => {
                monitor.record(&e.kind);
                if matches!(e.kind, EventKind::SystemShutdown {}) {
                    shutting_down.send_replace(true);
                }
                hub.push(HubItem::Event(e));
            }
            Some(EventItem::Lagged(n)) => {
                monitor.totals.events_lost.fetch_add(n, Ordering::Relaxed);
                hub.push(HubItem::Lagged(n));
            }
            None => return,
        }
    }
}

/// Samples the engine every interval into the history ring.
pub(crate) async fn sampler(manager: WorkerManager, monitor: Arc<Monitor>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(monitor.interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: skip it so the first sample covers a whole interval.
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => monitor.sample(&manager).await,
            _ = stopped(&mut stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
