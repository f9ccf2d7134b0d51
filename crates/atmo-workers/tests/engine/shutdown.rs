//! Bounded intake and graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use atmo_workers::mock::MockWorker;
use atmo_workers::{
    BankSpec, BankStatus, Error, EventKind, EventType, Handler, RequestStatus, SubmitOptions, SubmitRequest,
    TaskContext, TaskError, WorkerManager,
};
use serde_json::{Value, json};

use super::support::{about, bank, drain, lenient, settle};

/// Sleeps `ms` (default 10), stopping early when cancelled.
fn sleeper(cancelled: Arc<AtomicU32>) -> Handler {
    Handler::asynchronous(move |ctx: TaskContext, p: Arc<Value>| {
        let cancelled = cancelled.clone();
        async move {
            let ms = p["ms"].as_u64().unwrap_or(10);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(json!({"slept": ms})),
                () = ctx.cancel.cancelled() => {
                    cancelled.fetch_add(1, Ordering::SeqCst);
                    Err(TaskError::new("STOPPED", "cancelled"))
                }
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_submissions_and_says_so() -> anyhow::Result<()> {
    let manager = WorkerManager::builder().name("bounded").configure(|b| b.queue_capacity(3)).start().await?;
    bank(&manager, "b", lenient("b", &["job"])?, 1, 1, &sleeper(Arc::default()))?;
    manager.set_bank_status("b", BankStatus::Inactive)?;
    let mut events = manager.subscribe();

    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(manager.submit("job", json!({}), SubmitOptions::new()).await?);
    }
    match manager.submit("job", json!({}), SubmitOptions::new()).await {
        Err(e @ Error::QueueFull { queued: 3, capacity: 3 }) => {
            assert_eq!(e.code(), "QUEUE_FULL");
            assert!(e.to_string().contains("queue full"), "{e}");
        }
        other => anyhow::bail!("expected QueueFull, got {other:?}"),
    }
    let batch = vec![SubmitRequest::new("job", json!({})), SubmitRequest::new("job", json!({}))];
    assert!(matches!(manager.submit_many(batch).await, Err(Error::QueueFull { .. })));
    let overloads: Vec<(usize, usize)> = drain(&mut events)
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::SystemOverload { queued, capacity } => Some((queued, capacity)),
            _ => None,
        })
        .collect();
    assert_eq!(overloads, [(3, 3), (3, 3)]);
    assert_eq!(manager.metrics().await?.total_requests, 3, "refused requests are not stored");

    // Once work finishes, there is room again.
    manager.set_bank_status("b", BankStatus::Active)?;
    for id in &ids {
        manager.wait(*id).await?;
    }
    manager.submit_and_wait("job", json!({}), SubmitOptions::new()).await?;

    // Oversized parameters are refused too.
    let small = WorkerManager::builder().name("small").configure(|b| b.max_payload_bytes(64)).start().await?;
    bank(&small, "b", lenient("b", &["job"])?, 1, 1, &sleeper(Arc::default()))?;
    match small.submit("job", json!({"blob": "x".repeat(100)}), SubmitOptions::new()).await {
        Err(Error::PayloadTooLarge { size, limit: 64 }) => assert!(size > 100),
        other => anyhow::bail!("expected PayloadTooLarge, got {other:?}"),
    }
    small.shutdown(Duration::ZERO).await?;
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_intake_drains_then_cancels_what_is_left() -> anyhow::Result<()> {
    let manager = WorkerManager::builder().name("shutdown").start().await?;
    let cancelled = Arc::new(AtomicU32::new(0));
    bank(&manager, "b", lenient("b", &["job"])?, 1, 1, &sleeper(cancelled.clone()))?;
    let mut events = manager.subscribe();

    let a = manager.submit("job", json!({"ms": 1000}), SubmitOptions::new()).await?;
    let b = manager.submit("job", json!({"ms": 1000}), SubmitOptions::new()).await?;
    let long = manager.submit("job", json!({"ms": 3_600_000}), SubmitOptions::new()).await?;
    let queued = manager.submit("job", json!({"ms": 10}), SubmitOptions::new().priority(1)).await?;
    let later = manager.submit("job", json!({}), SubmitOptions::new().delay(Duration::from_secs(3600))).await?;
    settle().await;
    assert!(manager.is_accepting());

    let stopping = tokio::spawn({
        let manager = manager.clone();
        async move { manager.shutdown(Duration::from_secs(10)).await }
    });
    settle().await;
    assert!(!manager.is_accepting(), "intake stops as soon as shutdown begins");
    assert!(matches!(manager.submit("job", json!({}), SubmitOptions::new()).await, Err(Error::ShuttingDown)));
    let refused = manager.initialize_worker_bank(BankSpec::new("late", lenient("late", &["late"])?));
    assert!(matches!(refused, Err(Error::ShuttingDown)));
    stopping.await??;

    // Running work drained within the deadline; the rest was cancelled at it.
    assert_eq!(manager.wait(a).await?.status, RequestStatus::Completed);
    assert_eq!(manager.wait(b).await?.status, RequestStatus::Completed);
    for id in [long, queued, later] {
        let r = manager.get_request(id).await?;
        assert_eq!(r.status, RequestStatus::Cancelled, "{id}");
        assert_eq!(r.history.last().map(|h| h.reason.as_ref()), Some("engine shut down"));
        assert_eq!(manager.wait(id).await?.status, RequestStatus::Cancelled);
    }
    assert_eq!(cancelled.load(Ordering::SeqCst), 1, "the running handler saw its token");
    let cancelled_at = manager.get_request(long).await?.completed_at;
    let started_at = manager.get_request(long).await?.started_at;
    let ran = cancelled_at.zip(started_at).map(|(c, s)| c.saturating_since(s));
    assert!(ran.is_some_and(|d| d >= Duration::from_secs(7) && d <= Duration::from_secs(9)), "{ran:?}");

    let events = drain(&mut events);
    assert!(events.iter().any(|e| e.kind.event_type() == EventType::SystemShutdown));
    assert!(about(&events, long).iter().any(|k| matches!(k, EventKind::RequestCancelled { .. })));
    let metrics = manager.metrics().await?;
    assert_eq!(metrics.active_banks, 0);
    assert_eq!(metrics.queue_depth, 0);
    // A second shutdown is a no-op.
    manager.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_thread_workers_finish_their_requests() -> anyhow::Result<()> {
    let manager = WorkerManager::builder().name("drain-threads").start().await?;
    let mock = MockWorker::new().delay(Duration::from_millis(20)).fixed(json!("done"));
    manager.initialize_worker_bank(
        BankSpec::new("threads", MockWorker::manifest("threads", &["job"]))
            .workers(2)
            .handlers(mock.handlers(&["job"])),
    )?;
    let mut events = manager.subscribe();
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(manager.submit("job", json!({}), SubmitOptions::new()).await?);
    }
    manager.shutdown(Duration::from_secs(30)).await?;
    for id in ids {
        let r = manager.get_request(id).await?;
        assert_eq!((r.status, r.result.as_deref()), (RequestStatus::Completed, Some(&json!("done"))));
    }
    let terminated = drain(&mut events).iter().filter(|e| e.kind.event_type() == EventType::WorkerTerminated).count();
    assert_eq!(terminated, 2, "both worker threads stopped");
    Ok(())
}
