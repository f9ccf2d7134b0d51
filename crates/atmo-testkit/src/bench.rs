//! Benchmark helpers: drive any [`Store`] through the request pipeline in batches and time it.
//!
//! Benchmarks live in the store crates (criterion benches, `atmo bench`); these helpers keep
//! the workload the same for every store. Requests are built before the clock starts, with
//! shared task ids and parameters, so only the store is measured.
//!
//! ```
//! use atmo_testkit::bench::{PipelineConfig, interleaved};
//! # use atmo_core::Store;
//! # async fn demo<S: Store>(store: S) {
//! let times = interleaved(&store, &PipelineConfig { requests: 10_000, batch: 256, tasks: 2 }).await;
//! println!("{:.0} requests/s", times.per_second());
//! # }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use atmo_core::{ClaimParams, Request, RetentionParams, Store, Timestamp, Transition};
use serde_json::json;

use crate::fixtures::{at, request};

/// The workload.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    /// Requests in all.
    pub requests: usize,
    /// Requests per store call.
    pub batch: usize,
    /// Distinct tasks the requests spread over (one claim asks for all of them).
    pub tasks: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { requests: 100_000, batch: 256, tasks: 1 }
    }
}

/// Time spent in each kind of store call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PipelineTimes {
    /// Requests that went through.
    pub requests: usize,
    /// `insert_many`.
    pub insert: Duration,
    /// `claim`.
    pub claim: Duration,
    /// `apply` of the starts.
    pub start: Duration,
    /// `apply` of the completions.
    pub complete: Duration,
    /// `delete_finished`.
    pub delete: Duration,
}

impl PipelineTimes {
    /// All store time.
    pub fn total(&self) -> Duration {
        self.insert + self.claim + self.start + self.complete + self.delete
    }

    /// Requests through the whole pipeline per second of store time.
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.total().as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// `n` pending requests spread round-robin over `tasks`, sharing task ids and parameters as
/// an engine's submissions do.
pub fn requests(tasks: &[Arc<str>], n: usize) -> Vec<Request> {
    let params = Arc::new(json!({"n": 1}));
    (0..n)
        .map(|i| {
            let mut r = request("bench").priority(1 + (i % 10) as u8).created_at(at(0)).build();
            if let Some(t) = tasks.get(i % tasks.len().max(1)) {
                r.task_id = t.clone();
            }
            r.parameters = params.clone();
            r
        })
        .collect()
}

fn task_ids(n: usize) -> Vec<Arc<str>> {
    (0..n.max(1)).map(|i| Arc::from(format!("bench-{i}"))).collect()
}

fn claim_params(tasks: &[Arc<str>], limit: usize, bank: &Arc<str>, owner: &Arc<str>) -> ClaimParams {
    ClaimParams {
        bank_id: bank.clone(),
        task_ids: tasks.to_vec(),
        limit,
        owner: owner.clone(),
        now: at(1),
        lease_until: at(3600),
    }
}

/// Each phase over all requests in turn: insert everything, claim everything, start, complete,
/// delete. Shows the cost of each operation at a large store size.
pub async fn phased<S: Store>(store: &S, cfg: &PipelineConfig) -> PipelineTimes {
    let tasks = task_ids(cfg.tasks);
    let (bank, owner): (Arc<str>, Arc<str>) = (Arc::from("bench-bank"), Arc::from("bench-node"));
    let batch = cfg.batch.max(1);
    let mut all = requests(&tasks, cfg.requests);
    let mut times = PipelineTimes { requests: cfg.requests, ..PipelineTimes::default() };

    while !all.is_empty() {
        let chunk: Vec<Request> = all.drain(..batch.min(all.len())).collect();
        let t = Instant::now();
        let out = store.insert_many(chunk).await.expect("insert_many");
        times.insert += t.elapsed();
        drop(out);
    }
    let mut claimed = Vec::with_capacity(cfg.requests);
    loop {
        let t = Instant::now();
        let got = store.claim(claim_params(&tasks, batch, &bank, &owner)).await.expect("claim");
        times.claim += t.elapsed();
        if got.is_empty() {
            break;
        }
        claimed.extend(got.into_iter().map(|r| r.request_id));
    }
    let worker: Arc<str> = Arc::from("bench-worker");
    let result = Arc::new(json!({"ok": true}));
    for ids in claimed.chunks(batch) {
        let starts = ids.iter().map(|&id| Transition::start(id, 1, worker.clone(), at(2))).collect();
        let t = Instant::now();
        store.apply(starts).await.expect("apply");
        times.start += t.elapsed();
    }
    for ids in claimed.chunks(batch) {
        let ends = ids.iter().map(|&id| Transition::complete(id, 1, result.clone(), at(3))).collect();
        let t = Instant::now();
        store.apply(ends).await.expect("apply");
        times.complete += t.elapsed();
    }
    times.delete = delete_all(store, batch).await;
    times
}

/// The engine's steady state: per batch, insert, claim, start, complete; finished requests
/// are deleted every 64 batches. Shows end-to-end throughput at a small live set.
pub async fn interleaved<S: Store>(store: &S, cfg: &PipelineConfig) -> PipelineTimes {
    let tasks = task_ids(cfg.tasks);
    let (bank, owner): (Arc<str>, Arc<str>) = (Arc::from("bench-bank"), Arc::from("bench-node"));
    let worker: Arc<str> = Arc::from("bench-worker");
    let result = Arc::new(json!({"ok": true}));
    let batch = cfg.batch.max(1);
    let mut times = PipelineTimes { requests: cfg.requests, ..PipelineTimes::default() };
    let mut round = 0u64;
    let mut left = cfg.requests;
    while left > 0 {
        // Built per batch, just before the insert (untimed), as an engine's submissions
        // arrive: a million prebuilt requests would be cold in memory and measure cache misses.
        let chunk = requests(&tasks, batch.min(left));
        left -= chunk.len();
        let t = Instant::now();
        store.insert_many(chunk).await.expect("insert_many");
        times.insert += t.elapsed();

        let t = Instant::now();
        let got = store.claim(claim_params(&tasks, batch, &bank, &owner)).await.expect("claim");
        times.claim += t.elapsed();
        let ids: Vec<_> = got.iter().map(|r| r.request_id).collect();
        drop(got);

        let starts = ids.iter().map(|&id| Transition::start(id, 1, worker.clone(), at(2))).collect();
        let t = Instant::now();
        store.apply(starts).await.expect("apply");
        times.start += t.elapsed();

        let ends = ids.iter().map(|&id| Transition::complete(id, 1, result.clone(), at(3))).collect();
        let t = Instant::now();
        store.apply(ends).await.expect("apply");
        times.complete += t.elapsed();

        round += 1;
        if round.is_multiple_of(64) {
            times.delete += delete_all(store, batch * 64).await;
        }
    }
    times.delete += delete_all(store, batch * 64).await;
    times
}

async fn delete_all<S: Store>(store: &S, batch: usize) -> Duration {
    let p = RetentionParams { finished_before: Timestamp::MAX, max_finished: None, batch_limit: batch };
    let t = Instant::now();
    while store.delete_finished(p).await.expect("delete_finished") > 0 {}
    t.elapsed()
}
