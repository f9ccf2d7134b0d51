//! The scheduler: moves `scheduled` requests (delayed submissions, retries waiting out their
//! backoff) to `pending` when they are due, and wakes the dispatcher.

use std::sync::Arc;

use super::{PROMOTE_BATCH, STORE_RETRY};
use crate::engine::Engine;

/// Moves due scheduled requests to pending; sleeps until the next one is due or a new one
/// arrives.
pub(crate) async fn run(inner: Arc<Engine>) {
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
                        inner.wake.requests_ready();
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
                Some(t) => inner.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = inner.wake.schedule_changed() => {}
            () = inner.shutdown.cancelled() => return,
        }
    }
}
