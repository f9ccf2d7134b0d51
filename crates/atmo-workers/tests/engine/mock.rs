//! The engine driven by `MockWorker`s: outcomes follow the mock's deterministic plan.

use std::time::Duration;

use atmo_workers::mock::MockWorker;
use atmo_workers::{
    BankSpec, ErrorCategory, Handlers, RequestResult, RequestStatus, RetryPolicy, SubmitOptions, SubmitRequest,
    WorkerManager,
};
use serde_json::json;

const MAX_RETRIES: u32 = 2;

fn retry_processing_errors() -> RetryPolicy {
    RetryPolicy {
        max_retries: MAX_RETRIES,
        base_delay: Duration::from_millis(2),
        multiplier: 2.0,
        max_delay: Duration::from_millis(10),
        jitter: 0.0,
        retryable_categories: vec![ErrorCategory::Processing],
    }
}

/// What the mock's plan says must happen to a request: the attempt it completes on, or `None`
/// when every attempt fails.
fn planned(mock: &MockWorker, r: &RequestResult) -> Option<u32> {
    (1..=MAX_RETRIES + 1).find(|a| !mock.will_fail(r.request_id, *a))
}

fn check(mock: &MockWorker, results: &[RequestResult]) -> (usize, usize) {
    let (mut completed, mut failed) = (0, 0);
    for r in results {
        match planned(mock, r) {
            Some(attempt) => {
                assert_eq!((r.status, r.attempts), (RequestStatus::Completed, attempt), "{}", r.request_id);
                let payload = r.payload.as_deref().cloned().unwrap_or_default();
                assert_eq!(payload["attempt"], json!(attempt));
                completed += 1;
            }
            None => {
                assert_eq!((r.status, r.attempts), (RequestStatus::Failed, MAX_RETRIES + 1), "{}", r.request_id);
                let e = r.error.clone().unwrap_or_else(|| panic!("{} failed without an error", r.request_id));
                assert_eq!(
                    (e.code.as_str(), e.category, e.retryable),
                    ("MOCK_FAILURE", ErrorCategory::Processing, false)
                );
                failed += 1;
            }
        }
    }
    (completed, failed)
}

#[tokio::test(start_paused = true)]
async fn async_mock_outcomes_follow_will_fail() -> anyhow::Result<()> {
    let manager = WorkerManager::builder().name("mock-async").start().await?;
    let mock =
        MockWorker::new().delay(Duration::from_millis(5)).jitter(Duration::from_millis(5)).failure_rate(0.3).seed(42);
    manager.initialize_worker_bank(
        BankSpec::new("mocks", MockWorker::manifest("mocks", &["mock"]))
            .workers(4)
            .capacity(64)
            .handlers(Handlers::new().on("mock", mock.async_handler())),
    )?;
    let batch = (0..500)
        .map(|i| {
            SubmitRequest::new("mock", json!({"i": i}))
                .with_options(SubmitOptions::new().retry(retry_processing_errors()))
        })
        .collect();
    let results = manager.submit_many_and_wait(batch).await?;
    let (completed, failed) = check(&mock, &results);
    // 0.3³ of requests fail every attempt: about 13 of 500.
    assert_eq!(completed + failed, 500);
    assert!(failed > 0 && failed < 40, "{failed} failed");
    assert!(results.iter().any(|r| r.attempts > 1), "some requests needed a retry");
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_mock_outcomes_follow_will_fail() -> anyhow::Result<()> {
    let manager = WorkerManager::builder().name("mock-threads").start().await?;
    let mock = MockWorker::new().failure_rate(0.3).seed(7);
    manager.initialize_worker_bank(
        BankSpec::new("mocks", MockWorker::manifest("mocks", &["mock"])).workers(2).handlers(mock.handlers(&["mock"])),
    )?;
    let batch = (0..1000)
        .map(|i| {
            SubmitRequest::new("mock", json!({"i": i}))
                .with_options(SubmitOptions::new().retry(retry_processing_errors()))
        })
        .collect();
    let results = manager.submit_many_and_wait(batch).await?;
    let (completed, failed) = check(&mock, &results);
    assert_eq!(completed + failed, 1000);
    assert!(failed > 0, "with 1000 requests some fail all three attempts");
    // Without retries of processing errors, the first failure is final.
    let once =
        manager.submit_many_and_wait((0..200).map(|i| SubmitRequest::new("mock", json!({"i": i}))).collect()).await?;
    for r in &once {
        let fails = mock.will_fail(r.request_id, 1);
        assert_eq!(r.status, if fails { RequestStatus::Failed } else { RequestStatus::Completed });
        assert_eq!(r.attempts, 1);
    }
    manager.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
