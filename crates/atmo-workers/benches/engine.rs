//! Criterion micro-benchmarks of the engine's hot paths.
//!
//! - `validate/add-2-params`: [`ActionDefinition::validate`] of a typical request
//!   (`{"a": 5, "b": 3}` against two required integers), the check every submission pays.
//! - `memory-store/insert-claim-apply-1000`: one batch of 1,000 requests through
//!   [`MemoryStore`] as the engine drives it: `insert_many`, `claim`, then `apply` of the
//!   starts and of the completions.
//! - `engine/submit-many-and-wait-1000`: 1,000 trivial requests through
//!   [`RequestManager::submit_many_and_wait`](atmo_workers::RequestManager::submit_many_and_wait)
//!   and a bank of 2 worker threads: the whole pipeline, tracking and history on.
//!
//! Run with `cargo bench -p atmo-workers --bench engine`. End-to-end figures against a baseline
//! come from `atmo bench inproc`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use atmo_testkit::fixtures::at;
use atmo_workers::store::MemoryStore;
use atmo_workers::{
    ActionDefinition, BankSpec, ClaimParams, EngineConfig, Handler, Handlers, Manifest, ParamType, ParameterSpec,
    RetentionConfig, Store, SubmitRequest, Transition, WorkerManager,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

const BATCH: usize = 1_000;

fn add_action() -> ActionDefinition {
    ActionDefinition::new("add")
        .param(ParameterSpec::required("a", ParamType::Integer))
        .param(ParameterSpec::required("b", ParamType::Integer))
}

fn add(params: &Value) -> Value {
    Value::from(params["a"].as_i64().unwrap_or(0) + params["b"].as_i64().unwrap_or(0))
}

fn validate(c: &mut Criterion) {
    let action = add_action();
    let params = json!({"a": 5, "b": 3});
    if let Err(e) = action.validate(params.clone()) {
        panic!("the benchmark's parameters must be valid: {e}");
    }
    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("add-2-params", |b| {
        b.iter_batched(|| params.clone(), |p| action.validate(black_box(p)), BatchSize::SmallInput)
    });
    group.finish();
}

fn memory_store(c: &mut Criterion) {
    let task: Arc<str> = Arc::from("bench-0");
    let (bank, owner, worker): (Arc<str>, Arc<str>, Arc<str>) =
        (Arc::from("bench-bank"), Arc::from("bench-node"), Arc::from("bench-bank/0"));
    let result = Arc::new(json!(8));
    let claim = ClaimParams {
        bank_id: bank,
        task_ids: vec![task.clone()],
        limit: BATCH,
        owner,
        now: at(1),
        lease_until: at(3600),
    };
    let mut group = c.benchmark_group("memory-store");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("insert-claim-apply-1000", |b| {
        b.iter_batched(
            // A fresh store per batch, so every iteration sees the same store size.
            || (MemoryStore::new(), atmo_testkit::bench::requests(std::slice::from_ref(&task), BATCH)),
            |(store, requests)| {
                futures::executor::block_on(async {
                    store.insert_many(requests).await.map_err(|e| e.to_string())?;
                    let claimed = store.claim(claim.clone()).await.map_err(|e| e.to_string())?;
                    let starts =
                        claimed.iter().map(|r| Transition::start(r.request_id, r.attempt, worker.clone(), at(2)));
                    store.apply(starts.collect()).await.map_err(|e| e.to_string())?;
                    let ends =
                        claimed.iter().map(|r| Transition::complete(r.request_id, r.attempt, result.clone(), at(3)));
                    let done = store.apply(ends.collect()).await.map_err(|e| e.to_string())?;
                    if done.iter().any(Result::is_err) || done.len() != BATCH {
                        return Err("a transition was rejected".to_owned());
                    }
                    Ok(store)
                })
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn engine(c: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot start a tokio runtime: {e}"),
    };
    // Finished requests are swept every second beyond the newest 100,000, so a long
    // measurement does not grow the store without bound.
    let config = EngineConfig {
        retention: RetentionConfig {
            max_count: Some(100_000),
            interval: Duration::from_secs(1),
            ..RetentionConfig::default()
        },
        ..EngineConfig::default()
    };
    let manager = runtime.block_on(async {
        let manager = WorkerManager::builder().name("criterion").configure(|b| b.config(config)).start().await?;
        let manifest = Manifest::builder("bench").action(add_action()).build().map_err(|e| e.to_string())?;
        manager.initialize_worker_bank(
            BankSpec::new("bench", manifest)
                .workers(2)
                .capacity(4096)
                .handlers(Handlers::new().on("add", Handler::sync(|_ctx, p| Ok(add(p))))),
        )?;
        Ok::<_, Box<dyn std::error::Error>>(manager)
    });
    let manager = match manager {
        Ok(m) => m,
        Err(e) => panic!("cannot start the engine: {e}"),
    };
    let batch = || (0..BATCH).map(|i| SubmitRequest::new("add", json!({"a": i, "b": 1}))).collect::<Vec<_>>();

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    group.bench_function("submit-many-and-wait-1000", |b| {
        b.iter_batched(
            batch,
            |requests| {
                let results = runtime.block_on(manager.submit_many_and_wait(requests));
                match results {
                    Ok(r) if r.len() == BATCH && r.iter().all(|r| r.success) => r,
                    Ok(_) => panic!("a request failed"),
                    Err(e) => panic!("submit_many_and_wait failed: {e}"),
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    if let Err(e) = runtime.block_on(manager.shutdown(Duration::from_secs(5))) {
        panic!("engine shutdown failed: {e}");
    }
}

criterion_group!(benches, validate, memory_store, engine);
criterion_main!(benches);
