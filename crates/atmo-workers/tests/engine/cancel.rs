//! Cancellation in every state, and what cannot be cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use atmo_workers::{
    BankSpec, BankStatus, Error, ErrorCategory, EventKind, Handler, Handlers, RequestId, RequestStatus, SubmitOptions,
    TaskContext,
};
use serde_json::{Value, json};

use super::support::{about, advance, bank, drain, engine, lenient, settle};

/// Counts calls; answers at once.
fn counting(calls: Arc<AtomicU32>) -> Handler {
    Handler::asynchronous(move |_ctx: TaskContext, _p: Arc<Value>| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(json!("ran"))
        }
    })
}

async fn assert_cancelled(
    manager: &atmo_workers::WorkerManager,
    id: RequestId,
    from: RequestStatus,
) -> anyhow::Result<()> {
    let r = manager.get_request(id).await?;
    assert_eq!(r.status, RequestStatus::Cancelled);
    assert_eq!(r.result, None);
    let last = r.history.last().ok_or_else(|| anyhow::anyhow!("no history"))?;
    assert_eq!((last.from, last.to), (Some(from), RequestStatus::Cancelled));
    assert_eq!(last.reason, "cancelled by client");
    assert!(r.completed_at.is_some());
    let result = manager.wait(id).await?;
    assert_eq!((result.status, result.success, result.payload), (RequestStatus::Cancelled, false, None));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn cancelling_pending_and_scheduled_requests_means_they_never_run() -> anyhow::Result<()> {
    let manager = engine("cancel-queued").await?;
    let calls = Arc::new(AtomicU32::new(0));
    bank(&manager, "b", lenient("b", &["job"])?, 1, 4, &counting(calls.clone()))?;
    manager.set_bank_status("b", BankStatus::Inactive)?;
    let mut events = manager.subscribe();

    let pending = manager.submit("job", json!({}), SubmitOptions::new()).await?;
    let scheduled = manager.submit("job", json!({}), SubmitOptions::new().delay(Duration::from_secs(60))).await?;
    let kept = manager.submit("job", json!({}), SubmitOptions::new()).await?;
    // Someone already waits for the pending one: the wait resolves with the cancellation.
    let waiter = tokio::spawn({
        let manager = manager.clone();
        async move { manager.wait(pending).await }
    });
    settle().await;

    manager.cancel(pending).await?;
    manager.cancel(scheduled).await?;
    assert_cancelled(&manager, pending, RequestStatus::Pending).await?;
    assert_cancelled(&manager, scheduled, RequestStatus::Scheduled).await?;
    assert_eq!(waiter.await??.status, RequestStatus::Cancelled);

    manager.set_bank_status("b", BankStatus::Active)?;
    assert_eq!(manager.wait(kept).await?.status, RequestStatus::Completed);
    advance(Duration::from_secs(120)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "only the request that was not cancelled ran");
    assert_eq!(manager.get_request(scheduled).await?.status, RequestStatus::Cancelled);

    let events = drain(&mut events);
    for id in [pending, scheduled] {
        assert!(
            about(&events, id)
                .iter()
                .any(|k| matches!(k, EventKind::RequestCancelled { reason, .. } if reason == "cancelled by client"))
        );
    }
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_processing_request_signals_its_handler_and_discards_its_result() -> anyhow::Result<()> {
    let manager = engine("cancel-running").await?;
    let observed = Arc::new(AtomicU32::new(0));
    let seen = observed.clone();
    let handler = Handler::asynchronous(move |ctx: TaskContext, _p: Arc<Value>| {
        let seen = seen.clone();
        async move {
            ctx.cancel.cancelled().await;
            seen.fetch_add(1, Ordering::SeqCst);
            // Answers anyway: the engine must discard it.
            Ok(json!("late"))
        }
    });
    bank(&manager, "b", lenient("b", &["job"])?, 1, 1, &handler)?;
    let processing =
        manager.next_event_where(Duration::from_secs(5), |e| matches!(e.kind, EventKind::RequestProcessing { .. }));
    let id = manager.submit("job", json!({}), SubmitOptions::new()).await?;
    processing.await?;
    assert_eq!(manager.get_request(id).await?.status, RequestStatus::Processing);
    assert_eq!(manager.metrics().await?.current_load, 1);

    manager.cancel(id).await?;
    settle().await;
    assert_eq!(observed.load(Ordering::SeqCst), 1, "the handler saw its token cancelled");
    assert_cancelled(&manager, id, RequestStatus::Processing).await?;
    advance(Duration::from_secs(1)).await;
    assert_eq!(manager.get_request(id).await?.status, RequestStatus::Cancelled);
    assert_eq!(manager.metrics().await?.current_load, 0, "the slot is free again");

    // The bank goes on with the next request.
    let observed_before = observed.load(Ordering::SeqCst);
    let next = manager.submit("job", json!({}), SubmitOptions::new()).await?;
    settle().await;
    assert_eq!(manager.get_request(next).await?.status, RequestStatus::Processing);
    manager.cancel(next).await?;
    settle().await;
    assert_eq!(observed.load(Ordering::SeqCst), observed_before + 1);
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn finished_and_unknown_requests_cannot_be_cancelled() -> anyhow::Result<()> {
    let manager = engine("cancel-conflict").await?;
    let calls = Arc::new(AtomicU32::new(0));
    bank(&manager, "b", lenient("b", &["job"])?, 1, 1, &counting(calls))?;
    let done = manager.submit_and_wait("job", json!({}), SubmitOptions::new()).await?;
    match manager.cancel(done.request_id).await {
        Err(Error::Conflict { id, status, .. }) => {
            assert_eq!((id, status), (done.request_id, RequestStatus::Completed));
        }
        other => anyhow::bail!("expected a conflict, got {other:?}"),
    }
    assert_eq!(manager.get_request(done.request_id).await?.status, RequestStatus::Completed);

    let delayed = manager.submit("job", json!({}), SubmitOptions::new().delay(Duration::from_secs(5))).await?;
    manager.cancel(delayed).await?;
    match manager.cancel(delayed).await {
        Err(e @ Error::Conflict { status: RequestStatus::Cancelled, .. }) => assert_eq!(e.code(), "CONFLICT"),
        other => anyhow::bail!("expected a conflict on a second cancel, got {other:?}"),
    }

    let unknown = RequestId::from_u128(42);
    match manager.cancel(unknown).await {
        Err(e @ Error::NotFound(_)) => assert_eq!(e.code(), "NOT_FOUND"),
        other => anyhow::bail!("expected not found, got {other:?}"),
    }
    assert!(matches!(manager.get_request(unknown).await, Err(Error::NotFound(_))));
    assert!(matches!(manager.wait(unknown).await, Err(Error::NotFound(_))));
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

/// A thread bank of one worker holding two requests: one running, one queued at the worker
/// (`assigned`). Cancelling the queued one means its handler never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_assigned_request_queued_at_a_busy_worker() -> anyhow::Result<()> {
    let manager = engine("cancel-assigned").await?;
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
    let handler = Handler::sync(move |_ctx: &TaskContext, p: &Value| {
        let label = p["label"].as_str().unwrap_or_default().to_owned();
        let _ = started_tx.send(label.clone());
        if p["block"].as_bool() == Some(true) {
            let rx = release_rx.lock().map_err(|_| atmo_workers::TaskError::system("POISONED", "lock"))?;
            let _ = rx.recv_timeout(Duration::from_secs(30));
        }
        Ok(json!(label))
    });
    manager.initialize_worker_bank(
        BankSpec::new("single", lenient("single", &["job"])?)
            .workers(1)
            .capacity(2)
            .handlers(Handlers::new().on("job", handler)),
    )?;

    let first = manager.submit("job", json!({"label": "first", "block": true}), SubmitOptions::new()).await?;
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), started_rx.recv()).await?.as_deref(), Some("first"));

    let assigned =
        manager.next_event_where(Duration::from_secs(10), |e| matches!(e.kind, EventKind::RequestAssigned { .. }));
    let queued = manager.submit("job", json!({"label": "queued"}), SubmitOptions::new()).await?;
    assigned.await?;
    assert_eq!(manager.get_request(queued).await?.status, RequestStatus::Assigned);

    manager.cancel(queued).await?;
    assert_cancelled(&manager, queued, RequestStatus::Assigned).await?;

    release_tx.send(())?;
    assert_eq!(manager.wait(first).await?.status, RequestStatus::Completed);
    // The worker skips the cancelled job and goes on with the next one.
    let next = manager.submit_and_wait("job", json!({"label": "next"}), SubmitOptions::new()).await?;
    assert_eq!(next.payload.as_deref(), Some(&json!("next")));
    let mut ran = Vec::new();
    while let Ok(label) = started_rx.try_recv() {
        ran.push(label);
    }
    assert_eq!(ran, ["next"], "the cancelled request's handler never ran");
    assert_eq!(manager.get_request(queued).await?.status, RequestStatus::Cancelled);
    manager.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}

/// Signals when it starts, then blocks until its token is cancelled (at most 30 s), and says
/// whether it saw the cancellation.
fn blocking_until_cancelled(
    started: tokio::sync::mpsc::UnboundedSender<RequestId>,
    stopped: tokio::sync::mpsc::UnboundedSender<bool>,
) -> Handler {
    Handler::sync(move |ctx: &TaskContext, _p: &Value| {
        let _ = started.send(ctx.request_id);
        let give_up = std::time::Instant::now() + Duration::from_secs(30);
        while !ctx.is_cancelled() && std::time::Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = stopped.send(ctx.is_cancelled());
        ctx.cancel.check()?;
        Ok(json!("gave up waiting"))
    })
}

/// A blocking handler on a real thread watches its token and stops when cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_handler_observes_cancellation() -> anyhow::Result<()> {
    let manager = engine("cancel-thread").await?;
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let (stopped_tx, mut stopped) = tokio::sync::mpsc::unbounded_channel();
    manager.initialize_worker_bank(
        BankSpec::new("slow", lenient("slow", &["slow"])?)
            .handlers(Handlers::new().on("slow", blocking_until_cancelled(started_tx, stopped_tx))),
    )?;
    let id = manager.submit("slow", json!({}), SubmitOptions::new()).await?;
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), started.recv()).await?, Some(id));
    manager.cancel(id).await?;
    // The worker thread saw its token long before its 30 s limit.
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), stopped.recv()).await?, Some(true));
    let r = manager.wait(id).await?;
    assert_eq!((r.status, r.payload), (RequestStatus::Cancelled, None));
    assert!(r.error.is_none_or(|e| e.category == ErrorCategory::Cancelled));

    // The thread lives on: a next request runs (and is cancelled) too.
    let next = manager.submit("slow", json!({}), SubmitOptions::new()).await?;
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), started.recv()).await?, Some(next));
    manager.cancel(next).await?;
    assert_eq!(manager.wait(next).await?.status, RequestStatus::Cancelled);
    manager.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}

/// A blocking handler that outlives its timeout: the request shows `processing` while it runs,
/// and the timeout stops it (the token is cancelled, the request ends `timed_out`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_handler_is_timed_out() -> anyhow::Result<()> {
    let manager = engine("timeout-thread").await?;
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let (stopped_tx, mut stopped) = tokio::sync::mpsc::unbounded_channel();
    manager.initialize_worker_bank(
        BankSpec::new("slow", lenient("slow", &["slow"])?)
            .handlers(Handlers::new().on("slow", blocking_until_cancelled(started_tx, stopped_tx))),
    )?;
    let options = SubmitOptions::new().timeout(Duration::from_millis(200)).retry(atmo_workers::RetryPolicy::none());
    let processing =
        manager.next_event_where(Duration::from_secs(10), |e| matches!(e.kind, EventKind::RequestProcessing { .. }));
    let id = manager.submit("slow", json!({}), options).await?;
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), started.recv()).await?, Some(id));
    let seen = processing.await;
    let status = manager.get_request(id).await?.status;
    assert!(seen.is_ok(), "no request-processing event; the request is {status}");
    let r = manager.wait_timeout(id, Duration::from_secs(10)).await?;
    assert_eq!(r.status, RequestStatus::TimedOut);
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), stopped.recv()).await?, Some(true));
    manager.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
