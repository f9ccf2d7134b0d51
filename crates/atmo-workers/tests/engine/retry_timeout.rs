//! Retries with backoff and timeouts, under paused tokio time (the engine's default clock follows
//! it), with async handlers living on the paused runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use atmo_workers::{
    ActionDefinition, ErrorCategory, EventKind, Handler, Manifest, RequestId, RequestStatus, RetryPolicy,
    SubmitOptions, TaskContext, TaskError, Timestamp,
};
use serde_json::{Value, json};

use super::support::{about, advance, bank, drain, engine, lenient, settle};

fn policy(max_retries: u32, base_ms: u64, multiplier: f64, categories: &[ErrorCategory]) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(base_ms),
        multiplier,
        max_delay: Duration::from_secs(60),
        jitter: 0.0,
        retryable_categories: categories.to_vec(),
    }
}

fn network(attempt: u32) -> TaskError {
    TaskError::new("UPSTREAM_DOWN", format!("attempt {attempt}: the upstream answered 503"))
        .with_category(ErrorCategory::Network)
}

/// Fails with a network error until attempt `succeed_at` (never, for `u32::MAX`); counts calls.
fn flaky(succeed_at: u32, calls: Arc<AtomicU32>) -> Handler {
    Handler::asynchronous(move |ctx: TaskContext, _p: Arc<Value>| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            if ctx.attempt >= succeed_at { Ok(json!({"attempt": ctx.attempt})) } else { Err(network(ctx.attempt)) }
        }
    })
}

/// The `(run_at - failure time)` of every retry event of `id`.
fn backoffs(events: &[Arc<atmo_workers::Event>], id: RequestId) -> Vec<(u32, Duration)> {
    about(events, id)
        .into_iter()
        .filter_map(|k| match k {
            EventKind::RequestRetrying { attempt, run_at, error, .. } => {
                Some((attempt, run_at.saturating_since(error.at)))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_retryable_failure_is_retried_with_exponential_backoff() -> anyhow::Result<()> {
    let manager = engine("retry").await?;
    let calls = Arc::new(AtomicU32::new(0));
    let manifest = Manifest::builder("flaky")
        .retry(policy(3, 100, 3.0, &[ErrorCategory::Network]))
        .action(ActionDefinition::new("fetch").lenient())
        .build()?;
    bank(&manager, "net", manifest, 1, 1, &flaky(3, calls.clone()))?;
    let mut events = manager.subscribe();

    let id = manager.submit("fetch", json!({}), SubmitOptions::new()).await?;
    let result = manager.wait(id).await?;
    assert_eq!(result.status, RequestStatus::Completed);
    assert_eq!(result.attempts, 3);
    assert_eq!(result.payload.as_deref(), Some(&json!({"attempt": 3})));
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let request = manager.get_request(id).await?;
    assert_eq!(request.errors.len(), 2);
    for (i, e) in request.errors.iter().enumerate() {
        assert_eq!(
            (e.attempt, e.category, e.retryable, e.code.as_str()),
            (i as u32 + 1, ErrorCategory::Network, true, "UPSTREAM_DOWN")
        );
    }
    // Base delay × multiplier^(retry - 1), no jitter.
    let events = drain(&mut events);
    assert_eq!(backoffs(&events, id), [(1, Duration::from_millis(100)), (2, Duration::from_millis(300))]);

    // The history shows each retry waiting in `scheduled` until its time.
    let path: Vec<_> = request.history.iter().map(|h| (h.from, h.to, h.attempt)).collect();
    use RequestStatus::*;
    assert_eq!(
        path,
        [
            (None, Pending, 0),
            (Some(Pending), Assigned, 1),
            (Some(Assigned), Processing, 1),
            (Some(Processing), Scheduled, 1),
            (Some(Scheduled), Pending, 1),
            (Some(Pending), Assigned, 2),
            (Some(Assigned), Processing, 2),
            (Some(Processing), Scheduled, 2),
            (Some(Scheduled), Pending, 2),
            (Some(Pending), Assigned, 3),
            (Some(Assigned), Processing, 3),
            (Some(Processing), Completed, 3),
        ]
    );
    for (i, wait) in [(3usize, 100u64), (7, 300)] {
        let (failed, promoted) = (request.history[i].at, request.history[i + 1].at);
        let waited = promoted.saturating_since(failed);
        assert!(
            waited >= Duration::from_millis(wait) && waited <= Duration::from_millis(wait + 1),
            "retry after {failed:?} promoted at {promoted:?}: waited {waited:?}, policy says {wait} ms"
        );
    }
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_fail_at_once() -> anyhow::Result<()> {
    let manager = engine("fatal").await?;
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let handler = Handler::asynchronous(move |_ctx: TaskContext, p: Arc<Value>| {
        let calls = counter.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            match p["kind"].as_str() {
                Some("fatal") => {
                    Err(TaskError::fatal("BAD_ACCOUNT", "the account is closed").with_category(ErrorCategory::Network))
                }
                Some("invalid") => {
                    Err(TaskError::invalid("`amount` must be positive").retry_after(Duration::from_secs(1)))
                }
                _ => Err(TaskError::new("DECLINED", "the card was declined")),
            }
        }
    });
    let manifest = Manifest::builder("pay")
        .retry(policy(5, 10, 1.0, &[ErrorCategory::Network, ErrorCategory::System]))
        .action(ActionDefinition::new("charge").lenient())
        .build()?;
    bank(&manager, "pay", manifest, 1, 4, &handler)?;
    let mut events = manager.subscribe();

    for (kind, code, category) in [
        ("fatal", "BAD_ACCOUNT", ErrorCategory::Network),
        ("invalid", "INVALID_PARAMETERS", ErrorCategory::Validation),
        ("processing", "DECLINED", ErrorCategory::Processing),
    ] {
        let before = calls.load(Ordering::SeqCst);
        let r = manager.submit_and_wait("charge", json!({"kind": kind}), SubmitOptions::new()).await?;
        assert_eq!(r.status, RequestStatus::Failed, "{kind}");
        assert_eq!(r.attempts, 1, "{kind}");
        let e = r.error.ok_or_else(|| anyhow::anyhow!("no error"))?;
        assert_eq!((e.code.as_str(), e.category, e.retryable), (code, category, false), "{kind}");
        assert_eq!(calls.load(Ordering::SeqCst), before + 1, "{kind}");
        let events = drain(&mut events);
        assert!(backoffs(&events, r.request_id).is_empty(), "{kind}: no retry expected");
        assert!(about(&events, r.request_id).iter().any(|k| matches!(k, EventKind::RequestFailed { .. })));
    }
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_fail_the_request() -> anyhow::Result<()> {
    let manager = engine("exhausted").await?;
    let calls = Arc::new(AtomicU32::new(0));
    let manifest = Manifest::builder("flaky")
        .retry(policy(2, 50, 2.0, &[ErrorCategory::Network]))
        .action(ActionDefinition::new("fetch").lenient())
        .build()?;
    bank(&manager, "net", manifest, 1, 1, &flaky(u32::MAX, calls.clone()))?;
    let r = manager.submit_and_wait("fetch", json!({}), SubmitOptions::new()).await?;
    assert_eq!(r.status, RequestStatus::Failed);
    assert_eq!(r.attempts, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let request = manager.get_request(r.request_id).await?;
    let retryable: Vec<bool> = request.errors.iter().map(|e| e.retryable).collect();
    assert_eq!(retryable, [true, true, false]);
    assert_eq!(r.error.map(|e| e.attempt), Some(3));
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn retry_policy_comes_from_request_then_action_then_manifest_then_default() -> anyhow::Result<()> {
    let manager = engine("override").await?;
    let calls = Arc::new(AtomicU32::new(0));
    let net = [ErrorCategory::Network];
    let manifest = Manifest::builder("layered")
        .retry(policy(1, 10, 2.0, &net))
        .action(ActionDefinition::new("with-action-policy").lenient().retry(policy(2, 20, 2.0, &net)))
        .action(ActionDefinition::new("manifest-policy").lenient())
        .action(ActionDefinition::new("not-retryable").lenient().retryable(false))
        .build()?;
    bank(&manager, "layered", manifest, 1, 8, &flaky(u32::MAX, calls.clone()))?;
    // No policy anywhere: the default (3 retries, 1 s doubling, ±10 % jitter, network retried).
    bank(&manager, "plain", lenient("plain", &["default-policy"])?, 1, 8, &flaky(u32::MAX, calls.clone()))?;
    let mut events = manager.subscribe();

    let ms = Duration::from_millis;
    let cases: Vec<(&str, SubmitOptions, u32, Vec<Duration>)> = vec![
        ("manifest-policy", SubmitOptions::new(), 2, vec![ms(10)]),
        ("with-action-policy", SubmitOptions::new(), 3, vec![ms(20), ms(40)]),
        ("with-action-policy", SubmitOptions::new().retry(policy(4, 5, 1.0, &net)), 5, vec![ms(5); 4]),
        ("manifest-policy", SubmitOptions::new().retry(RetryPolicy::none()), 1, vec![]),
        ("not-retryable", SubmitOptions::new().retry(policy(4, 5, 1.0, &net)), 1, vec![]),
    ];
    for (task, options, attempts, expected) in cases {
        let r = manager.submit_and_wait(task, json!({}), options).await?;
        assert_eq!((r.status, r.attempts), (RequestStatus::Failed, attempts), "{task}");
        let got: Vec<Duration> = backoffs(&drain(&mut events), r.request_id).into_iter().map(|(_, d)| d).collect();
        assert_eq!(got, expected, "{task}");
    }

    let r = manager.submit_and_wait("default-policy", json!({}), SubmitOptions::new()).await?;
    assert_eq!((r.status, r.attempts), (RequestStatus::Failed, 4));
    let got = backoffs(&drain(&mut events), r.request_id);
    assert_eq!(got.len(), 3);
    for ((_, d), nominal) in got.iter().zip([1.0f64, 2.0, 4.0]) {
        let s = d.as_secs_f64();
        assert!(s >= nominal * 0.9 - 1e-6 && s <= nominal * 1.1 + 1e-6, "{s} vs {nominal}");
    }
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_handler_can_ask_for_a_retry_after_a_delay() -> anyhow::Result<()> {
    let manager = engine("retry-after").await?;
    let handler = Handler::asynchronous(|ctx: TaskContext, _p: Arc<Value>| async move {
        if ctx.attempt == 1 {
            Err(TaskError::new("RATE_LIMITED", "slow down").retry_after(Duration::from_secs(7)))
        } else {
            Ok(json!("ok"))
        }
    });
    // Processing errors are not retryable by the default policy; `retry_after` marks it retryable.
    bank(&manager, "api", lenient("api", &["call"])?, 1, 1, &handler)?;
    let mut events = manager.subscribe();
    let r = manager.submit_and_wait("call", json!({}), SubmitOptions::new()).await?;
    assert_eq!((r.status, r.attempts), (RequestStatus::Completed, 2));
    assert_eq!(backoffs(&drain(&mut events), r.request_id), [(1, Duration::from_secs(7))]);
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

/// The scheduler's scheduled → pending event must carry the request's attempt, as the history does.
#[tokio::test(start_paused = true)]
async fn promotion_events_carry_the_attempt() -> anyhow::Result<()> {
    let manager = engine("promote-attempt").await?;
    let calls = Arc::new(AtomicU32::new(0));
    let manifest = Manifest::builder("flaky")
        .retry(policy(1, 100, 1.0, &[ErrorCategory::Network]))
        .action(ActionDefinition::new("fetch").lenient())
        .build()?;
    bank(&manager, "net", manifest, 1, 1, &flaky(2, calls))?;
    let mut events = manager.subscribe();
    let r = manager.submit_and_wait("fetch", json!({}), SubmitOptions::new()).await?;
    assert_eq!(r.attempts, 2);
    let promotions: Vec<u32> = about(&drain(&mut events), r.request_id)
        .into_iter()
        .filter_map(|k| match k {
            EventKind::RequestStatusChanged { from: Some(RequestStatus::Scheduled), attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(promotions, [1], "the history says the promotion belongs to attempt 1");
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

// ===== timeouts =====

/// A handler that hangs until its token is cancelled, then counts that and returns a (late) result.
fn hang_until_cancelled(cancelled: Arc<AtomicU32>) -> Handler {
    Handler::asynchronous(move |ctx: TaskContext, _p: Arc<Value>| {
        let cancelled = cancelled.clone();
        async move {
            ctx.cancel.cancelled().await;
            cancelled.fetch_add(1, Ordering::SeqCst);
            Ok(json!("too late"))
        }
    })
}

fn elapsed(from: Option<Timestamp>, to: Option<Timestamp>) -> Duration {
    match (from, to) {
        (Some(a), Some(b)) => b.saturating_since(a),
        _ => Duration::MAX,
    }
}

#[tokio::test(start_paused = true)]
async fn timeouts_come_from_request_then_action_then_manifest() -> anyhow::Result<()> {
    let manager = engine("timeouts").await?;
    let cancelled = Arc::new(AtomicU32::new(0));
    let manifest = Manifest::builder("slow")
        .default_timeout(Duration::from_secs(5))
        .retry(RetryPolicy::none())
        .action(ActionDefinition::new("action-timeout").lenient().timeout(Duration::from_secs(2)))
        .action(ActionDefinition::new("manifest-timeout").lenient())
        .build()?;
    bank(&manager, "slow", manifest, 1, 8, &hang_until_cancelled(cancelled.clone()))?;
    let mut events = manager.subscribe();

    let cases = [
        ("action-timeout", SubmitOptions::new().timeout(Duration::from_secs(1)), 1),
        ("action-timeout", SubmitOptions::new(), 2),
        ("manifest-timeout", SubmitOptions::new(), 5),
    ];
    for (i, (task, options, secs)) in cases.into_iter().enumerate() {
        let r = manager.submit_and_wait(task, json!({}), options).await?;
        assert_eq!((r.status, r.attempts, r.success), (RequestStatus::TimedOut, 1, false), "{task}");
        assert_eq!(r.payload, None, "the late result is discarded");
        let e = r.error.ok_or_else(|| anyhow::anyhow!("no error"))?;
        assert_eq!((e.code.as_str(), e.category), ("TIMEOUT", ErrorCategory::Timeout));
        let request = manager.get_request(r.request_id).await?;
        let ran = elapsed(request.started_at, request.completed_at);
        let limit = Duration::from_secs(secs);
        assert!(ran >= limit && ran <= limit + Duration::from_millis(1), "{task}: ran {ran:?}, limit {limit:?}");
        // The handler's token was cancelled, and its late answer changed nothing.
        settle().await;
        assert_eq!(cancelled.load(Ordering::SeqCst), i as u32 + 1);
        let again = manager.get_request(r.request_id).await?;
        assert_eq!((again.status, again.result.clone()), (RequestStatus::TimedOut, None));
        let kinds = about(&drain(&mut events), r.request_id);
        assert!(kinds.iter().any(|k| matches!(k, EventKind::RequestTimeout { r#final: true, attempt: 1, .. })));
    }
    assert_eq!(manager.metrics().await?.current_load, 0);
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_retried_then_finally_times_out() -> anyhow::Result<()> {
    let manager = engine("timeout-retry").await?;
    let cancelled = Arc::new(AtomicU32::new(0));
    let manifest = Manifest::builder("slow")
        .default_timeout(Duration::from_secs(1))
        .retry(policy(1, 500, 1.0, &[ErrorCategory::Timeout]))
        .action(ActionDefinition::new("hang").lenient())
        .build()?;
    bank(&manager, "slow", manifest, 1, 1, &hang_until_cancelled(cancelled.clone()))?;
    let mut events = manager.subscribe();
    let r = manager.submit_and_wait("hang", json!({}), SubmitOptions::new()).await?;
    assert_eq!((r.status, r.attempts), (RequestStatus::TimedOut, 2));
    settle().await;
    assert_eq!(cancelled.load(Ordering::SeqCst), 2);
    let request = manager.get_request(r.request_id).await?;
    let retryable: Vec<(ErrorCategory, bool)> = request.errors.iter().map(|e| (e.category, e.retryable)).collect();
    assert_eq!(retryable, [(ErrorCategory::Timeout, true), (ErrorCategory::Timeout, false)]);
    let timeouts: Vec<(u32, bool)> = about(&drain(&mut events), r.request_id)
        .into_iter()
        .filter_map(|k| match k {
            EventKind::RequestTimeout { attempt, r#final, .. } => Some((attempt, r#final)),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, [(1, false), (2, true)]);
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_late_result_of_a_timed_out_attempt_never_overwrites_the_next_one() -> anyhow::Result<()> {
    let manager = engine("late").await?;
    // Attempt 1 ignores its token and answers at 1.5 s, after its 1 s timeout, while attempt 2
    // (started at 1.1 s) is still running; attempt 2 answers at 1.9 s.
    let handler = Handler::asynchronous(|ctx: TaskContext, _p: Arc<Value>| async move {
        let ms = if ctx.attempt == 1 { 1500 } else { 800 };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(json!({"attempt": ctx.attempt}))
    });
    let manifest = Manifest::builder("stubborn")
        .default_timeout(Duration::from_secs(1))
        .retry(policy(1, 100, 1.0, &[ErrorCategory::Timeout]))
        .action(ActionDefinition::new("work").lenient())
        .build()?;
    bank(&manager, "stubborn", manifest, 1, 2, &handler)?;
    let r = manager.submit_and_wait("work", json!({}), SubmitOptions::new()).await?;
    assert_eq!((r.status, r.attempts), (RequestStatus::Completed, 2));
    assert_eq!(r.payload.as_deref(), Some(&json!({"attempt": 2})));

    // A handler that ignores cancellation and answers long after its request timed out.
    let once = Handler::asynchronous(|_ctx: TaskContext, _p: Arc<Value>| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok(json!("late"))
    });
    bank(&manager, "once", lenient("once", &["once"])?, 1, 1, &once)?;
    let options = SubmitOptions::new().timeout(Duration::from_secs(1)).retry(RetryPolicy::none());
    let r = manager.submit_and_wait("once", json!({}), options).await?;
    assert_eq!(r.status, RequestStatus::TimedOut);
    advance(Duration::from_secs(20)).await;
    let request = manager.get_request(r.request_id).await?;
    assert_eq!((request.status, request.result), (RequestStatus::TimedOut, None));
    assert_eq!(request.history.last().map(|h| h.to), Some(RequestStatus::TimedOut));
    assert_eq!(manager.metrics().await?.current_load, 0);
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test]
async fn a_timeout_or_delay_beyond_the_engine_limits_is_refused_naming_the_limit() -> anyhow::Result<()> {
    let manager = atmo_workers::WorkerManager::builder()
        .configure(|b| b.limits(Duration::from_secs(60), Duration::from_secs(3600)))
        .start()
        .await?;
    manager.register_manifest(lenient("m", &["A"])?);
    let refused = [
        SubmitOptions::new().timeout(Duration::from_secs(61)),
        // What a client asking for 2^70 ms ends up as: the longest duration there is.
        SubmitOptions::new().timeout(Duration::MAX),
        SubmitOptions::new().delay(Duration::from_secs(3601)),
        SubmitOptions::new().run_at(manager.now() + Duration::from_secs(7200)),
    ];
    for options in refused {
        match manager.submit("A", serde_json::json!({}), options).await {
            Err(atmo_workers::Error::Validation { errors, .. }) => {
                let issue = &errors.issues()[0];
                assert!(issue.message.contains("max_timeout") || issue.message.contains("max_delay"), "{issue:?}");
                assert!(issue.message.contains("60000 ms") || issue.message.contains("3600000 ms"), "{issue:?}");
            }
            other => anyhow::bail!("expected a validation error, got {other:?}"),
        }
    }
    // At the limits, accepted.
    manager.submit("A", serde_json::json!({}), SubmitOptions::new().timeout(Duration::from_secs(60))).await?;
    manager.submit("A", serde_json::json!({}), SubmitOptions::new().delay(Duration::from_secs(3600))).await?;
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

/// A synchronous handler that ignores its cancellation token keeps its OS thread after the
/// timeout; once it overstays by the grace period, the thread is written off and a new one
/// serves the bank, so the bank's other requests do not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_stuck_past_its_timeout_is_written_off_and_replaced() -> anyhow::Result<()> {
    let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
    let handler = Handler::sync(move |ctx, _p| {
        if &*ctx.task_id == "STUCK" {
            // Ignores the token: blocks until the test lets it go.
            let _ = release_rx.recv();
        }
        Ok(json!("done"))
    });
    let manager = atmo_workers::WorkerManager::builder().name("stuck").start().await?;
    let manifest = lenient("stuck", &["STUCK", "QUICK"])?;
    let handlers = manifest.action_ids().fold(atmo_workers::Handlers::new(), |h, a| h.on(a, handler.clone()));
    let supervision = atmo_workers::Supervision { cancel_grace: Duration::from_millis(20), ..Default::default() };
    manager.initialize_worker_bank(
        atmo_workers::BankSpec::new("stuck", manifest).workers(1).handlers(handlers).supervision(supervision),
    )?;
    let mut events = manager.subscribe();
    let stuck = manager
        .submit("STUCK", json!({}), SubmitOptions::new().timeout(Duration::from_millis(20)).retry(RetryPolicy::none()))
        .await?;
    assert_eq!(manager.wait_timeout(stuck, Duration::from_secs(10)).await?.status, RequestStatus::TimedOut);
    // The only worker thread is still inside STUCK: this completes only on a replacement.
    let quick = manager.submit("QUICK", json!({}), SubmitOptions::new()).await?;
    let quick = manager.wait_timeout(quick, Duration::from_secs(10)).await?;
    assert_eq!(quick.status, RequestStatus::Completed);
    let metrics = manager.metrics().await?;
    assert_eq!(metrics.bank_performance[0].abandoned_workers, 1);
    let errors: Vec<_> = drain(&mut events)
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::WorkerError { message, .. } if message.contains("written off")))
        .collect();
    assert_eq!(errors.len(), 1, "one worker-error event");
    // The old thread finishes late; its result is discarded.
    release_tx.send(())?;
    manager.shutdown(Duration::from_secs(1)).await?;
    assert_eq!(manager.get_request(stuck).await?.status, RequestStatus::TimedOut);
    Ok(())
}
