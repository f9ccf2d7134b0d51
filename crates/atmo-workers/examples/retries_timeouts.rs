//! Retries and timeouts: a flaky handler succeeds on its third attempt under a retry policy
//! with backoff; a slow one is timed out, its cancellation token fires, and it is not retried.
//!
//! Run with `cargo run -p atmo-workers --example retries_timeouts`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use atmo_workers::mock::MockWorker;
use atmo_workers::{
    BankSpec, ErrorCategory, Handler, Handlers, RequestStatus, RetryPolicy, SubmitOptions, TaskError, WorkerManager,
};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let manager = WorkerManager::builder().name("retries").start().await?;
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let flaky = Handler::sync(move |ctx, _params| {
        counted.fetch_add(1, Ordering::Relaxed);
        if ctx.attempt < 3 {
            // A network error: the default policy retries it.
            return Err(
                TaskError::new("UPSTREAM_DOWN", "the rates service answered 503").with_category(ErrorCategory::Network)
            );
        }
        Ok(json!({"rate": 1.08, "attempt": ctx.attempt}))
    });
    let slow = Handler::sync(|ctx, _params| {
        // A handler that watches its token stops as soon as the timeout fires.
        for _ in 0..1000 {
            ctx.cancel.check()?;
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(json!("finished"))
    });
    let manifest = MockWorker::manifest("retries", &["FLAKY", "SLOW"]);
    manager.initialize_worker_bank(
        BankSpec::new("retries", manifest).workers(2).handlers(Handlers::new().on("FLAKY", flaky).on("SLOW", slow)),
    )?;

    let policy = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(20),
        multiplier: 2.0,
        jitter: 0.0,
        ..RetryPolicy::default()
    };
    let result = manager.submit_and_wait("FLAKY", json!({}), SubmitOptions::new().retry(policy)).await?;
    assert_eq!(result.status, RequestStatus::Completed);
    assert_eq!(result.attempts, 3);
    let history = manager.get_request(result.request_id).await?;
    println!("FLAKY: {:?} after {} attempts ({} calls)", result.status, result.attempts, calls.load(Ordering::Relaxed));
    for e in &history.errors {
        println!("  attempt {} failed: {} ({})", e.attempt, e.code, e.category);
    }

    let timed_out = manager
        .submit_and_wait(
            "SLOW",
            json!({}),
            SubmitOptions::new().timeout(Duration::from_millis(50)).retry(RetryPolicy::none()),
        )
        .await?;
    assert_eq!(timed_out.status, RequestStatus::TimedOut);
    println!("SLOW: {:?} ({})", timed_out.status, timed_out.error.map(|e| e.message).unwrap_or_default());
    manager.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}
