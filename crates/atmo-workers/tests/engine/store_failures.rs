//! A store that fails for a while: what workers reported is applied once it recovers, never
//! dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atmo_workers::{RequestStatus, StoreError, SubmitOptions, WorkerManager};
use serde_json::json;

use atmo_workers::{Handler, TaskContext};
use serde_json::Value;

use atmo_testkit::hooked::Health;

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

/// A store that reports it stopped taking writes (as a durable store does after a failed
/// fsync) gets no more submissions: they fail at once with its reason, and nothing is stored;
/// once it is healthy again, submissions go through.
#[tokio::test]
async fn submissions_to_a_stopped_store_fail_at_once_with_its_reason() -> anyhow::Result<()> {
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let health: Health = {
        let stopped = stopped.clone();
        Arc::new(move || {
            if stopped.load(Ordering::SeqCst) {
                return Err(StoreError::Backend(Box::new(DiskFull)));
            }
            Ok(())
        })
    };
    let store = HookedStore { health: Some(health), ..HookedStore::default() };
    let manager = WorkerManager::builder().name("stopped").store(store).start().await?;
    bank(&manager, "b", lenient("b", &["job"])?, 1, 4, &quick())?;
    stopped.store(true, Ordering::SeqCst);
    let Err(err) = manager.submit("job", json!({"x": 1}), SubmitOptions::new()).await else {
        anyhow::bail!("a submission to a stopped store went through");
    };
    assert!(matches!(err, atmo_workers::Error::Store(StoreError::Backend(_))), "{err:?}");
    assert!(format!("{err:?}").contains("DiskFull"), "{err:?}");
    let batch = vec![atmo_workers::SubmitRequest::new("job", json!({"x": 2}))];
    assert!(matches!(manager.submit_many(batch).await, Err(atmo_workers::Error::Store(_))));
    assert_eq!(manager.metrics().await?.total_requests, 0, "nothing was stored");

    stopped.store(false, Ordering::SeqCst);
    let id = manager.submit("job", json!({"x": 3}), SubmitOptions::new()).await?;
    assert_eq!(manager.wait(id).await?.status, RequestStatus::Completed);
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}
