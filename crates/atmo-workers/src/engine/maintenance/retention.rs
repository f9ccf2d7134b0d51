//! The retention sweeper: deletes finished requests beyond the configured age and count, in
//! batches, so the store does not grow without bound.

use std::sync::Arc;

use atmo_core::RetentionParams;

use crate::engine::Engine;

/// Deletes finished requests beyond the retention window, in batches.
pub(crate) async fn run(inner: Arc<Engine>) {
    let cfg = inner.config.retention.clone();
    if cfg.max_age.is_none() && cfg.max_count.is_none() {
        return;
    }
    loop {
        tokio::select! {
            () = inner.sleep(cfg.interval) => {}
            () = inner.shutdown.cancelled() => return,
        }
        sweep(&inner).await;
    }
}

/// One retention pass; returns how many requests were deleted.
pub(crate) async fn sweep(inner: &Engine) -> usize {
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
                crate::runtime::yield_now().await;
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
