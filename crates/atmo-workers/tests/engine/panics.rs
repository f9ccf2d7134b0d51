//! Handler panics become failed attempts of category `system`; the worker lives on.

use std::sync::Arc;
use std::time::Duration;

use atmo_workers::{
    BankSpec, ErrorCategory, EventKind, Handler, Handlers, RequestStatus, RetryPolicy, SubmitOptions, TaskContext,
    WorkerStatus,
};
use serde_json::{Value, json};

use super::support::{about, drain, engine, lenient};

fn quiet_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(1),
        multiplier: 1.0,
        max_delay: Duration::from_millis(1),
        jitter: 0.0,
        ..RetryPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_its_attempt_and_the_thread_lives_on() -> anyhow::Result<()> {
    let manager = engine("panic").await?;
    let handler = Handler::sync(|ctx: &TaskContext, p: &Value| {
        let panic_until = p["panic_until"].as_u64().unwrap_or(0);
        if u64::from(ctx.attempt) <= panic_until {
            panic!("kaboom on attempt {}", ctx.attempt);
        }
        Ok(json!({"worker": &*ctx.worker_id, "attempt": ctx.attempt}))
    });
    manager.initialize_worker_bank(
        BankSpec::new("fragile", lenient("fragile", &["job"])?).workers(1).handlers(Handlers::new().on("job", handler)),
    )?;
    let mut events = manager.subscribe();

    // No retries: the panic fails the request, as a system error.
    let failed =
        manager.submit_and_wait("job", json!({"panic_until": 1}), SubmitOptions::new().retry(quiet_retry(0))).await?;
    assert_eq!((failed.status, failed.attempts), (RequestStatus::Failed, 1));
    let error = failed.error.ok_or_else(|| anyhow::anyhow!("no error"))?;
    assert_eq!((error.code.as_str(), error.category), ("HANDLER_PANIC", ErrorCategory::System));
    assert!(error.message.contains("kaboom on attempt 1"), "{}", error.message);

    // The same (only) worker thread runs the next request.
    let ok = manager.submit_and_wait("job", json!({}), SubmitOptions::new()).await?;
    assert_eq!(ok.status, RequestStatus::Completed);
    assert_eq!(ok.payload.as_deref(), Some(&json!({"worker": "fragile/0", "attempt": 1})));

    // System errors are retryable by default: a panic on the first attempt is retried.
    let retried =
        manager.submit_and_wait("job", json!({"panic_until": 1}), SubmitOptions::new().retry(quiet_retry(2))).await?;
    assert_eq!((retried.status, retried.attempts), (RequestStatus::Completed, 2));
    let request = manager.get_request(retried.request_id).await?;
    assert_eq!(
        request.errors.iter().map(|e| (e.category, e.retryable)).collect::<Vec<_>>(),
        [(ErrorCategory::System, true)]
    );

    // Panicking on every attempt uses the retries up.
    let exhausted =
        manager.submit_and_wait("job", json!({"panic_until": 99}), SubmitOptions::new().retry(quiet_retry(2))).await?;
    assert_eq!((exhausted.status, exhausted.attempts), (RequestStatus::Failed, 3));

    let events = drain(&mut events);
    let worker_errors = events.iter().filter(|e| matches!(&e.kind, EventKind::WorkerError { worker_id, message } if &**worker_id == "fragile/0" && message.contains("kaboom"))).count();
    assert_eq!(worker_errors, 1 + 1 + 3);
    assert!(about(&events, failed.request_id).iter().any(|k| matches!(k, EventKind::RequestFailed { .. })));
    let workers = manager.workers();
    assert_eq!(workers.len(), 1);
    assert!(matches!(workers[0].status, WorkerStatus::Idle | WorkerStatus::Busy), "{:?}", workers[0]);
    manager.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_panicking_async_handler_fails_its_attempt_too() -> anyhow::Result<()> {
    let manager = engine("panic-async").await?;
    let handler = Handler::asynchronous(|_ctx: TaskContext, p: Arc<Value>| async move {
        if p["panic"].as_bool() == Some(true) {
            panic!("async kaboom");
        }
        Ok(json!("fine"))
    });
    super::support::bank(&manager, "b", lenient("b", &["job"])?, 1, 1, &handler)?;
    let failed =
        manager.submit_and_wait("job", json!({"panic": true}), SubmitOptions::new().retry(RetryPolicy::none())).await?;
    assert_eq!(failed.status, RequestStatus::Failed);
    assert_eq!(failed.error.map(|e| (e.code, e.category)), Some(("HANDLER_PANIC".to_owned(), ErrorCategory::System)));
    let ok = manager.submit_and_wait("job", json!({}), SubmitOptions::new()).await?;
    assert_eq!(ok.payload.as_deref(), Some(&json!("fine")));
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}
