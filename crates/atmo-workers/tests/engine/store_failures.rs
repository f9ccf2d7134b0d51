//! A store that fails for a while: what workers reported is applied once it recovers, never
//! dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atmo_workers::{RequestStatus, StoreError, SubmitOptions, WorkerManager};
use serde_json::json;

use atmo_workers::{Handler, TaskContext};
use serde_json::Value;

use super::support::{BeforeApply, HookedStore, bank, lenient};

fn quick() -> Handler {
    Handler::asynchronous(|_ctx: TaskContext, _p: Arc<Value>| async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(json!("ok"))
    })
}

#[derive(Debug, thiserror::Error)]
#[error("disk full (simulated)")]
struct DiskFull;

#[tokio::test(start_paused = true)]
async fn outcomes_are_applied_once_the_store_recovers() -> anyhow::Result<()> {
    // The store's `apply` fails the next `failures` times.
    let (failures, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let hook: BeforeApply = {
        let (failures, failed) = (failures.clone(), failed.clone());
        Arc::new(move || {
            if failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                failed.fetch_add(1, Ordering::SeqCst);
                return Err(StoreError::Backend(Box::new(DiskFull)));
            }
            Ok(())
        })
    };
    let store = HookedStore { before_apply: Some(hook), ..HookedStore::default() };
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
