//! A store that fails for a while: what workers reported is applied once it recovers, never
//! dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atmo_workers::store::MemoryStore;
use atmo_workers::{
    ApplyOutcome, ClaimParams, Claimed, InsertOutcome, MetricsParams, Promoted, QueryPage, Request, RequestId,
    RequestQuery, RequestStatus, RetentionParams, Store, StoreError, StoreFuture, StoreMetrics, SubmitOptions,
    Timestamp, Transition, WorkerManager,
};
use serde_json::json;

use atmo_workers::{Handler, TaskContext};
use serde_json::Value;

use super::support::{bank, lenient};

fn quick() -> Handler {
    Handler::asynchronous(|_ctx: TaskContext, _p: Arc<Value>| async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(json!("ok"))
    })
}

/// A memory store whose `apply` fails the next `failures` times.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStore,
    failures: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

#[derive(Debug, thiserror::Error)]
#[error("disk full (simulated)")]
struct DiskFull;

impl Store for FlakyStore {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn insert_many(&self, requests: Vec<Request>) -> StoreFuture<'_, Vec<InsertOutcome>> {
        self.inner.insert_many(requests)
    }
    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<Claimed>> {
        self.inner.claim(params)
    }
    fn apply(&self, transitions: Vec<Transition>) -> StoreFuture<'_, Vec<ApplyOutcome>> {
        let fail = self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if fail {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Box::pin(async { Err(StoreError::Backend(Box::new(DiskFull))) });
        }
        self.inner.apply(transitions)
    }
    fn promote_scheduled(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<Promoted>> {
        self.inner.promote_scheduled(now, limit)
    }
    fn next_scheduled(&self) -> StoreFuture<'_, Option<Timestamp>> {
        self.inner.next_scheduled()
    }
    fn heartbeat(&self, owner: Arc<str>, until: Timestamp) -> StoreFuture<'_, usize> {
        self.inner.heartbeat(owner, until)
    }
    fn rescue_expired(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<RequestId>> {
        self.inner.rescue_expired(now, limit)
    }
    fn rescue_owner(&self, owner: Arc<str>, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        self.inner.rescue_owner(owner, now, reason)
    }
    fn get(&self, id: RequestId) -> StoreFuture<'_, Option<Request>> {
        self.inner.get(id)
    }
    fn query(&self, query: RequestQuery) -> StoreFuture<'_, QueryPage> {
        self.inner.query(query)
    }
    fn metrics(&self, params: MetricsParams) -> StoreFuture<'_, StoreMetrics> {
        self.inner.metrics(params)
    }
    fn delete_finished(&self, params: RetentionParams) -> StoreFuture<'_, usize> {
        self.inner.delete_finished(params)
    }
}

#[tokio::test(start_paused = true)]
async fn outcomes_are_applied_once_the_store_recovers() -> anyhow::Result<()> {
    let store = FlakyStore::default();
    let (failures, failed) = (store.failures.clone(), store.failed.clone());
    let manager = WorkerManager::builder().name("flaky").store(store).start().await?;
    bank(&manager, "b", lenient("b", &["job"])?, 1, 4, &quick())?;
    // The next three applies fail: the attempt's outcome must survive them.
    failures.store(3, Ordering::SeqCst);
    let id = manager.submit("job", json!({"x": 1}), SubmitOptions::new()).await?;
    let result = tokio::time::timeout(Duration::from_secs(60), manager.wait(id)).await??;
    assert_eq!(result.status, RequestStatus::Completed);
    assert_eq!(failed.load(Ordering::SeqCst), 3, "the store refused three times");
    let request = manager.get_request(id).await?;
    assert_eq!(request.attempts, 1, "no attempt was lost or repeated");
    let metrics = manager.metrics().await?;
    assert_eq!(metrics.current_load, 0, "the bank's capacity was given back");
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}
