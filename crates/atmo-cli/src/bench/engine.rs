//! The engine side of the in-process scenarios: Atmo Workers as a user would run it.
//!
//! A [`WorkerManager`] with the default memory store, full lifecycle tracking and status
//! history, one bank of 2 worker threads running synchronous handlers, and a manifest that
//! declares its parameters (so every submission is validated, as in production).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use atmo_workers::{
    ActionDefinition, BankSpec, EngineConfig, Handler, Handlers, Manifest, ParamType, ParameterSpec, RetentionConfig,
    Store, SubmitOptions, SubmitRequest, WorkerManager,
};
use serde_json::Value;

use super::work;
use crate::alloc::Counting;

/// `{"a": integer, "b": integer}` → `a + b`.
const ADD: &str = "add";
/// `{}` → `null`: the memory scenario's request, whose parameters and result are as small as
/// JSON allows.
const NOOP: &str = "noop";
/// Worker threads of the bank, as many as the baseline's.
const WORKERS: usize = 2;

/// How to set up the engine.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setup {
    /// Requests the bank may hold at once.
    pub(crate) bank_capacity: usize,
    /// Keep every finished request (no age or count limit), as the memory scenario needs.
    pub(crate) retain_all: bool,
    /// Register the benchmark's tasks without a bank: submissions stay pending (intake only).
    pub(crate) intake_only: bool,
    /// Run the retention sweeper this often instead of every 10 s (the default), so that a
    /// run of a few seconds on a store at its retention limit sees its deletions.
    pub(crate) sweep_every: Option<Duration>,
}

/// Starts a manager with the benchmark's bank.
///
/// # Errors
/// When the engine cannot start (no runtime, threads unavailable).
pub(crate) async fn start(setup: Setup) -> anyhow::Result<WorkerManager> {
    start_on(setup, None).await
}

/// Starts a manager with the benchmark's bank on `store` (`None`: the default memory store).
///
/// # Errors
/// When the engine cannot start (no runtime, threads unavailable, the store failing).
pub(crate) async fn start_on(setup: Setup, store: Option<Arc<dyn Store>>) -> anyhow::Result<WorkerManager> {
    let mut builder = WorkerManager::builder().name("atmo-bench");
    if let Some(store) = store {
        builder = builder.configure(|b| b.shared_store(store));
    }
    if let Some(interval) = setup.sweep_every {
        let retention = RetentionConfig { interval, ..RetentionConfig::default() };
        builder = builder.configure(|b| b.config(EngineConfig { retention, ..EngineConfig::default() }));
    }
    if setup.retain_all {
        builder = builder.configure(|b| b.retention(None, None));
    }
    let manager = builder.start().await.context("cannot start the engine")?;
    if setup.intake_only {
        manager.register_manifest(manifest()?);
        return Ok(manager);
    }
    manager
        .initialize_worker_bank(
            BankSpec::new("bench", manifest()?).workers(WORKERS).capacity(setup.bank_capacity).handlers(handlers()),
        )
        .context("cannot start the benchmark's bank")?;
    Ok(manager)
}

/// The benchmark's manifest: `add` (two declared integer parameters) and `noop`.
///
/// # Errors
/// Never in practice: the manifest is fixed and valid.
pub(crate) fn manifest() -> anyhow::Result<Manifest> {
    Manifest::builder("bench")
        .description("trivial actions for `atmo bench`")
        .action(
            ActionDefinition::new(ADD)
                .description("a + b")
                .param(ParameterSpec::required("a", ParamType::Integer))
                .param(ParameterSpec::required("b", ParamType::Integer)),
        )
        .action(ActionDefinition::new(NOOP).description("does nothing, returns null"))
        .build()
        .context("the benchmark's manifest is invalid")
}

/// The handlers of [`manifest`], also served by `atmo worker bench` in process banks.
pub(crate) fn handlers() -> Handlers {
    Handlers::new()
        .on(ADD, Handler::sync(|_ctx, params| Ok(work::add(params))))
        .on(NOOP, Handler::sync(|_ctx, _params| Ok(Value::Null)))
}

/// Requests/s of [`throughput`] on `manager`, which is stopped afterwards.
///
/// # Errors
/// An engine error, a wrong result, or a failed shutdown.
pub(crate) async fn throughput_rate(
    manager: WorkerManager,
    total: usize,
    batch: usize,
    in_flight: usize,
) -> anyhow::Result<f64> {
    let elapsed = throughput(&manager, total, batch, in_flight).await;
    stop(manager).await?;
    Ok(super::inproc::per_second(total, elapsed?))
}

/// Acknowledged submits/s of [`submit_load`] on `manager`, which is stopped afterwards.
///
/// # Errors
/// An engine error or a failed shutdown.
pub(crate) async fn submit_rate(manager: WorkerManager, total: usize, submitters: usize) -> anyhow::Result<f64> {
    let elapsed = submit_load(&manager, total, submitters).await;
    stop(manager).await?;
    Ok(super::inproc::per_second(total, elapsed?))
}

/// [`latency`] on `manager`, driven from a task on the runtime (where a user's request handler
/// would run); `manager` is stopped afterwards.
///
/// # Errors
/// An engine error, a wrong result, a panicked driver, or a failed shutdown.
pub(crate) async fn latency_times(
    manager: WorkerManager,
    warmup: usize,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
    let m = manager.clone();
    let times = tokio::spawn(async move { latency(&m, warmup, samples).await }).await;
    stop(manager).await?;
    times.context("the latency driver panicked")?
}

/// Stops a manager, letting nothing linger into the next measurement.
///
/// # Errors
/// When shutdown fails.
pub(crate) async fn stop(manager: WorkerManager) -> anyhow::Result<()> {
    // Without a bank (intake only) nothing would drain what is pending.
    let drain = if manager.banks().is_empty() { Duration::ZERO } else { Duration::from_secs(10) };
    manager.shutdown(drain).await.context("engine shutdown failed")
}

/// Runs `total` requests in batches of `batch` through `submit_many_and_wait`, from
/// `in_flight` tokio tasks that each take the next batch as soon as their last one is done, so
/// the pipeline stays full; returns the elapsed time. Every result is checked.
///
/// # Errors
/// An engine error or a wrong result.
pub(crate) async fn throughput(
    manager: &WorkerManager,
    total: usize,
    batch: usize,
    in_flight: usize,
) -> anyhow::Result<Duration> {
    let batches = total.div_ceil(batch);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let drivers: Vec<_> = (0..in_flight)
        .map(|_| {
            let manager = manager.clone();
            let next = next.clone();
            tokio::spawn(async move {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= batches {
                        return anyhow::Ok(());
                    }
                    let (lo, hi) = (k * batch, ((k + 1) * batch).min(total));
                    let requests = (lo..hi).map(|i| SubmitRequest::new(ADD, work::params(i))).collect();
                    let results = manager.submit_many_and_wait(requests).await?;
                    if results.len() != hi - lo {
                        bail!("a batch of {} requests returned {} results", hi - lo, results.len());
                    }
                    for (i, r) in (lo..hi).zip(&results) {
                        work::check(i, r.payload.as_deref())?;
                    }
                }
            })
        })
        .collect();
    for d in drivers {
        d.await.context("a driver task panicked")??;
    }
    Ok(start.elapsed())
}

/// Submits `total` requests one `submit` at a time from `submitters` tokio tasks that each
/// take the next number as soon as their last submit was acknowledged; returns the elapsed
/// time. The bank processes them meanwhile; nothing waits for their results.
///
/// # Errors
/// An engine error.
pub(crate) async fn submit_load(manager: &WorkerManager, total: usize, submitters: usize) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let drivers: Vec<_> = (0..submitters)
        .map(|_| {
            let manager = manager.clone();
            let next = next.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return anyhow::Ok(());
                    }
                    manager.submit(ADD, work::params(i), SubmitOptions::new()).await?;
                }
            })
        })
        .collect();
    for d in drivers {
        d.await.context("a submitter task panicked")??;
    }
    Ok(start.elapsed())
}

/// Round-trip times of `samples` requests submitted one at a time with `submit_and_wait`, after
/// `warmup` untimed ones.
///
/// # Errors
/// An engine error or a wrong result.
pub(crate) async fn latency(manager: &WorkerManager, warmup: usize, samples: usize) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(samples);
    for i in 0..warmup + samples {
        let params = work::params(i);
        let start = Instant::now();
        let result = manager.submit_and_wait(ADD, params, SubmitOptions::new()).await?;
        let elapsed = start.elapsed();
        work::check(i, result.payload.as_deref())?;
        if i >= warmup {
            times.push(elapsed);
        }
    }
    Ok(times)
}

/// Heap bytes each retained finished request costs beyond its parameters and result.
///
/// The manager keeps every finished request (retention off). After a warm-up that brings the
/// engine's fixed structures to size, the allocator's counter runs while `requests` requests
/// with `{}` parameters and a `null` result go through, in batches of `batch`; once they
/// settle, the net growth divided by `requests`, less `payload_bytes` (what their parameters
/// and result occupy by themselves), is the answer. It includes everything the engine keeps
/// per request: the record, its status history, its indexes, and the spare capacity of the
/// store's growing tables.
///
/// # Errors
/// An engine error or a failed request.
pub(crate) async fn memory(
    manager: &WorkerManager,
    alloc: &Counting,
    requests: usize,
    batch: usize,
    payload_bytes: f64,
) -> anyhow::Result<f64> {
    let run = |n: usize| async move {
        let mut done = 0;
        while done < n {
            let size = batch.min(n - done);
            let batch: Vec<SubmitRequest> =
                (0..size).map(|_| SubmitRequest::new(NOOP, Value::Object(serde_json::Map::new()))).collect();
            let results = manager.submit_many_and_wait(batch).await?;
            if let Some(r) = results.iter().find(|r| !r.success) {
                bail!("request {} failed: {:?}", r.request_id, r.error);
            }
            done += size;
        }
        anyhow::Ok(())
    };
    run(batch.min(requests)).await?;
    settle().await;
    alloc.start();
    run(requests).await?;
    settle().await;
    let net = alloc.stop();
    Ok(net as f64 / requests.max(1) as f64 - payload_bytes)
}

/// Gives the engine's services a moment to finish what the last batch started (event
/// delivery, waiter cleanup), so their transient buffers are not counted as retained.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}
