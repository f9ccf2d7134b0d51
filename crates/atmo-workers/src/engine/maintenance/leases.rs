//! The lease keeper: heartbeats this node's claims, and rescues requests whose lease expired
//! (held by this node when it stalled, or by a node that died).

use std::sync::Arc;
use std::time::Duration;

use crate::engine::Engine;

/// Heartbeats this node's leases and rescues expired ones (of this node or of dead nodes).
pub(crate) async fn run(inner: Arc<Engine>) {
    let period = (inner.config.lease_duration / 3).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            () = inner.sleep(period) => {}
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
                        if let Some(b) = inner.registry.bank_at(entry.bank) {
                            b.release(1);
                        }
                    }
                }
                inner.wake.requests_ready();
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "rescuing expired leases failed"),
        }
    }
}
