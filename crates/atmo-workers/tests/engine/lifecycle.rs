//! The lifecycle of requests through a real `WorkerManager`: history, lifecycle bundle, handler
//! context, bank choice.

use std::sync::Arc;
use std::time::Duration;

use atmo_workers::{
    ActionDefinition, BankSpec, BankStatus, Handler, Handlers, Manifest, ParamType, ParameterSpec, RequestStatus,
    SubmitOptions, TaskContext, TaskError,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::support::{bank, engine, lenient};

fn math_manifest() -> anyhow::Result<Manifest> {
    Ok(Manifest::builder("math")
        .version("2.1.0")
        .action(
            ActionDefinition::new("add")
                .description("adds two numbers")
                .param(ParameterSpec::required("a", ParamType::Number))
                .param(ParameterSpec::required("b", ParamType::Number)),
        )
        .build()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_request_records_its_whole_lifecycle_on_a_thread_bank() -> anyhow::Result<()> {
    let manager = engine("lifecycle").await?;
    let add = Handler::sync(|ctx: &TaskContext, p: &Value| {
        let sum = p["a"].as_f64().unwrap_or(0.0) + p["b"].as_f64().unwrap_or(0.0);
        Ok(json!({"result": sum, "worker": &*ctx.worker_id, "attempt": ctx.attempt}))
    });
    manager.initialize_worker_bank(
        BankSpec::new("math-bank", math_manifest()?).workers(2).handlers(Handlers::new().on("add", add)),
    )?;

    let result = manager.submit_and_wait("add", json!({"a": 5, "b": 3}), SubmitOptions::new().client_id("c1")).await?;
    assert_eq!(result.status, RequestStatus::Completed);
    assert!(result.success);
    assert_eq!(result.attempts, 1);
    let payload = result.payload.clone().ok_or_else(|| anyhow::anyhow!("no payload"))?;
    assert_eq!(payload["result"], json!(8.0));
    assert_eq!(payload["attempt"], json!(1));
    let worker = payload["worker"].as_str().unwrap_or_default().to_owned();
    assert!(worker == "math-bank/0" || worker == "math-bank/1", "{worker}");

    let request = manager.get_request(result.request_id).await?;
    let path: Vec<_> = request.history.iter().map(|h| (h.from, h.to)).collect();
    assert_eq!(
        path,
        [
            (None, RequestStatus::Pending),
            (Some(RequestStatus::Pending), RequestStatus::Assigned),
            (Some(RequestStatus::Assigned), RequestStatus::Processing),
            (Some(RequestStatus::Processing), RequestStatus::Completed),
        ]
    );
    let submitted = &request.history[0];
    assert_eq!((submitted.attempt, submitted.bank_id.as_deref(), submitted.worker_id.as_deref()), (0, None, None));
    for h in &request.history[1..] {
        assert_eq!(h.bank_id.as_deref(), Some("math-bank"), "{h:?}");
        assert_eq!(h.attempt, 1, "{h:?}");
    }
    // The worker is known from the start of processing on.
    assert_eq!(request.history[1].worker_id, None);
    for h in &request.history[2..] {
        assert_eq!(h.worker_id.as_deref(), Some(worker.as_str()), "{h:?}");
    }
    assert!(request.history.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(request.bank_id.as_deref(), Some("math-bank"));
    assert_eq!(request.worker_id.as_deref(), Some(worker.as_str()));
    assert_eq!(request.client_id.as_deref(), Some("c1"));

    let lifecycle = manager.get_lifecycle(result.request_id).await?;
    assert_eq!(lifecycle.request, request);
    let task = lifecycle.task.ok_or_else(|| anyhow::anyhow!("no task"))?;
    assert_eq!(
        (&*task.task_id, task.manifest.as_deref(), task.description.as_deref()),
        ("add", Some("math"), Some("adds two numbers"))
    );
    let bank = lifecycle.bank.ok_or_else(|| anyhow::anyhow!("no bank"))?;
    assert_eq!(&*bank.bank_id, "math-bank");
    assert_eq!(
        (bank.worker_count, bank.manifest.as_deref(), bank.manifest_version.as_deref()),
        (2, Some("math"), Some("2.1.0"))
    );
    let capability = lifecycle.capability.ok_or_else(|| anyhow::anyhow!("no capability"))?;
    assert_eq!((&*capability.bank_id, &*capability.task_id, capability.max_concurrency), ("math-bank", "add", 2));
    let assignment = lifecycle.assignment.ok_or_else(|| anyhow::anyhow!("no assignment"))?;
    assert_eq!(&*assignment.bank_id, "math-bank");
    assert_eq!(assignment.worker_id.as_deref(), Some(worker.as_str()));
    assert_eq!(assignment.attempt, 1);
    assert_eq!(assignment.queued_at, request.created_at);
    let (assigned, started, completed) = (assignment.assigned_at, assignment.started_at, assignment.completed_at);
    assert!(assigned.is_some() && started.is_some() && completed.is_some());
    assert!(assigned <= started && started <= completed);
    assert_eq!(lifecycle.result, Some(result));

    manager.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn timestamps_follow_the_engine_clock_with_async_handlers() -> anyhow::Result<()> {
    let manager = engine("timestamps").await?;
    let slow = Handler::asynchronous(|_ctx: TaskContext, _p: Arc<Value>| async {
        tokio::time::sleep(Duration::from_millis(250)).await;
        Ok(json!("done"))
    });
    bank(&manager, "io", lenient("io", &["fetch"])?, 1, 4, &slow)?;
    let started = manager.now();
    let result = manager.submit_and_wait("fetch", json!({}), SubmitOptions::new()).await?;
    assert_eq!(result.payload.as_deref(), Some(&json!("done")));
    // Paused time: the processing time is exactly the handler's sleep (to the timer's 1 ms).
    let ms = result.processing_time_ms.ok_or_else(|| anyhow::anyhow!("no processing time"))?;
    assert!((250.0..=251.0).contains(&ms), "{ms}");
    let request = manager.get_request(result.request_id).await?;
    assert_eq!(request.created_at, started);
    assert_eq!(request.assigned_at, Some(started));
    assert_eq!(request.started_at, Some(started));
    let completed = request.completed_at.ok_or_else(|| anyhow::anyhow!("not completed"))?;
    assert!(completed.saturating_since(started) >= Duration::from_millis(250));
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

trait Rates: Send + Sync {
    fn eur_usd(&self) -> f64;
}

struct FixedRates(f64);

impl Rates for FixedRates {
    fn eur_usd(&self) -> f64 {
        self.0
    }
}

#[derive(Deserialize)]
struct Convert {
    eur: f64,
}

#[tokio::test(start_paused = true)]
async fn handlers_get_typed_parameters_and_injected_resources() -> anyhow::Result<()> {
    let manager = engine("resources").await?;
    let convert = Handler::typed_async(|ctx: TaskContext, p: Convert| async move {
        let rates = ctx.resource::<Arc<dyn Rates>>()?;
        Ok::<_, TaskError>(json!({"usd": p.eur * rates.eur_usd(), "request": ctx.request_id.to_string()}))
    });
    manager.initialize_worker_bank(
        BankSpec::new("fx", lenient("fx", &["convert"])?)
            .handlers(Handlers::new().on("convert", convert))
            .resource::<Arc<dyn Rates>>(Arc::new(FixedRates(2.0))),
    )?;
    let result = manager.submit_and_wait("convert", json!({"eur": 21.0}), SubmitOptions::new()).await?;
    assert_eq!(result.payload.as_deref().map(|p| p["usd"].clone()), Some(json!(42.0)));
    assert_eq!(result.payload.as_deref().map(|p| p["request"].clone()), Some(json!(result.request_id.to_string())));
    // Parameters the handler cannot deserialize fail as a validation error, not retried.
    let bad = manager.submit_and_wait("convert", json!({"eur": "lots"}), SubmitOptions::new()).await?;
    assert_eq!(bad.status, RequestStatus::Failed);
    assert_eq!(bad.attempts, 1);
    assert_eq!(bad.error.map(|e| e.category), Some(atmo_workers::ErrorCategory::Validation));
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn requests_go_to_the_active_bank_that_can_run_them() -> anyhow::Result<()> {
    let manager = engine("choice").await?;
    let ok = Handler::asynchronous(|ctx: TaskContext, _p: Arc<Value>| async move { Ok(json!(&*ctx.bank_id)) });
    bank(&manager, "left", lenient("shared", &["work"])?, 1, 2, &ok)?;
    bank(&manager, "right", lenient("shared", &["work"])?, 1, 2, &ok)?;
    manager.set_bank_status("left", BankStatus::Inactive)?;
    for _ in 0..5 {
        let r = manager.submit_and_wait("work", json!({}), SubmitOptions::new()).await?;
        assert_eq!(r.payload.as_deref(), Some(&json!("right")));
        assert_eq!(manager.get_request(r.request_id).await?.bank_id.as_deref(), Some("right"));
    }
    manager.set_bank_status("left", BankStatus::Active)?;
    manager.set_bank_status("right", BankStatus::Inactive)?;
    let r = manager.submit_and_wait("work", json!({}), SubmitOptions::new()).await?;
    assert_eq!(r.payload.as_deref(), Some(&json!("left")));
    assert!(manager.set_bank_status("nowhere", BankStatus::Active).is_err());
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_bank_must_match_its_manifest() -> anyhow::Result<()> {
    let manager = engine("config").await?;
    let ok = Handler::asynchronous(|_ctx: TaskContext, _p: Arc<Value>| async { Ok(json!(1)) });
    let missing = manager.initialize_worker_bank(
        BankSpec::new("b1", lenient("m", &["x", "y"])?).handlers(Handlers::new().on("x", ok.clone())),
    );
    let message = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("action `y` has no handler"), "{message}");
    let zero = manager.initialize_worker_bank(
        BankSpec::new("b2", lenient("m", &["x"])?).workers(0).handlers(Handlers::new().on("x", ok.clone())),
    );
    assert!(zero.is_err());
    bank(&manager, "b3", lenient("m", &["x"])?, 1, 1, &ok)?;
    let duplicate = manager
        .initialize_worker_bank(BankSpec::new("b3", lenient("m", &["x"])?).handlers(Handlers::new().on("x", ok)));
    assert!(duplicate.is_err());
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_tracer_counts_real_dispatches() -> anyhow::Result<()> {
    let manager = engine("tracer").await?;
    let handler = Handler::sync(|_ctx: &TaskContext, p: &Value| {
        if p["fail"].as_bool() == Some(true) {
            return Err(TaskError::fatal("NOPE", "asked to fail"));
        }
        Ok(json!(1))
    });
    manager.initialize_worker_bank(
        BankSpec::new("traced", lenient("traced", &["job"])?).workers(2).handlers(Handlers::new().on("job", handler)),
    )?;
    let batch = (0..20).map(|i| atmo_workers::SubmitRequest::new("job", json!({"fail": i == 7}))).collect();
    let results = manager.submit_many_and_wait(batch).await?;
    assert_eq!(results.iter().filter(|r| r.status == RequestStatus::Failed).count(), 1);

    let workers = manager.workers();
    assert_eq!(workers.iter().map(|w| &*w.worker_id).collect::<Vec<_>>(), ["traced/0", "traced/1"]);
    assert_eq!(workers.iter().map(|w| w.messages_sent).sum::<u64>(), 20);
    assert_eq!(workers.iter().map(|w| w.messages_completed).sum::<u64>(), 20);
    assert_eq!(workers.iter().map(|w| w.errors).sum::<u64>(), 1);
    assert!(workers.iter().all(|w| w.current_load == 0));
    let report = manager.load_balancing_report();
    assert_eq!((report.totals.banks, report.totals.workers, report.totals.total_load), (1, 2, 0));
    assert_eq!((report.totals.messages_sent, report.totals.messages_completed, report.totals.errors), (20, 20, 1));
    manager.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
