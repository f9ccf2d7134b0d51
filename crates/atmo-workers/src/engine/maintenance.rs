//! Background services, one concern each: the scheduler (scheduled → pending when due), the
//! retention sweeper, and the lease keeper (heartbeat own leases, rescue expired ones).

use std::sync::Arc;
use std::time::Duration;

use atmo_core::RetentionParams;

use super::Inner;

const PROMOTE_BATCH: usize = 1024;
/// How soon a service retries after its store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Moves due scheduled requests to pending; sleeps until the next one is due or a new one
/// arrives.
pub(crate) async fn scheduler(inner: Arc<Inner>) {
    loop {
        let now = inner.clock.now();
        let mut failed = false;
        loop {
            match inner.store.promote_scheduled(now, PROMOTE_BATCH).await {
                Ok(ids) => {
                    if !ids.is_empty() {
                        for p in &ids {
                            inner.events.emit_with(|| atmo_core::EventKind::RequestStatusChanged {
                                request_id: p.id,
                                from: Some(atmo_core::RequestStatus::Scheduled),
                                to: atmo_core::RequestStatus::Pending,
                                attempt: p.attempt,
                            });
                        }
                        inner.dispatch_wake.notify_one();
                    }
                    if ids.len() < PROMOTE_BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "promoting scheduled requests failed");
                    failed = true;
                    break;
                }
            }
        }
        let next = match inner.store.next_scheduled().await {
            // After a store failure, look again soon rather than wait for a wake-up.
            Ok(next) if !failed => next,
            Ok(_) => Some(inner.clock.now() + STORE_RETRY),
            Err(e) => {
                tracing::error!(error = %e, "reading the next scheduled time failed");
                Some(inner.clock.now() + STORE_RETRY)
            }
        };
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep(t.saturating_since(inner.clock.now())).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = inner.schedule_wake.notified() => {}
            () = inner.shutdown.cancelled() => return,
        }
    }
}

/// Deletes finished requests beyond the retention window, in batches.
pub(crate) async fn retention(inner: Arc<Inner>) {
    let cfg = inner.config.retention.clone();
    if cfg.max_age.is_none() && cfg.max_count.is_none() {
        return;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(cfg.interval) => {}
            () = inner.shutdown.cancelled() => return,
        }
        sweep(&inner).await;
    }
}

/// One retention pass; returns how many requests were deleted.
pub(crate) async fn sweep(inner: &Inner) -> usize {
    let cfg = &inner.config.retention;
    let now = inner.clock.now();
    let params = RetentionParams {
        finished_before: cfg.max_age.map_or(atmo_core::Timestamp::EPOCH, |age| now.saturating_sub(age)),
        max_finished: cfg.max_count,
        batch_limit: cfg.batch.max(1),
    };
    let mut total = 0;
    loop {
        match inner.store.delete_finished(params).await {
            Ok(n) => {
                total += n;
                if n < params.batch_limit {
                    break;
                }
                // Let other work through between batches.
                tokio::task::yield_now().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "retention sweep failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::debug!(deleted = total, "retention sweep");
    }
    total
}

/// Heartbeats this node's leases and rescues expired ones (of this node or of dead nodes).
pub(crate) async fn leases(inner: Arc<Inner>) {
    let period = (inner.config.lease_duration / 3).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = inner.shutdown.cancelled() => return,
        }
        let now = inner.clock.now();
        if let Err(e) = inner.store.heartbeat(inner.node_id.clone(), now + inner.config.lease_duration).await {
            tracing::error!(error = %e, "lease heartbeat failed");
        }
        match inner.store.rescue_expired(now, 1024).await {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(count = ids.len(), "rescued requests whose lease expired");
                for id in ids {
                    // If one of ours was rescued (we stalled past the lease), its slot is free.
                    if let Some(entry) = inner.running.remove(id) {
                        entry.token.cancel();
                        if let Some(b) = inner.bank(entry.bank) {
                            b.release(1);
                        }
                    }
                }
                inner.dispatch_wake.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "rescuing expired leases failed"),
        }
    }
}
