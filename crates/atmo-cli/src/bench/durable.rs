//! `atmo bench durable`: the engine on the SQLite store against the same engine on the memory
//! store (throughput, submit) or against a small file (open, query).
//!
//! For throughput and submit, every run opens a fresh store file in a new temporary directory (under `--dir`) with the
//! default options (WAL, `synchronous=FULL`, group commit), so every run starts empty and
//! every commit is a real fsync; the memory store's run is the baseline, measured back to back
//! with it, alternating which goes first, as `inproc` does. Both engines have one bank of 2
//! worker threads on a multi-thread tokio runtime (`--runtime-threads`, default 2).
//!
//! | scenario | value | baseline | target | schema 1 | schema 2 | schema 2 + sync thread | this machine |
//! | --- | --- | --- | --- | --- | --- | --- | --- |
//! | `durable-throughput` | requests/s, submit → completed, batches awaited; plus the WAL fsyncs per 1,000 requests | the same on the memory store | ≥ 50,000/s | 10,600/s | 26,200/s | 45,700/s | 82,000/s |
//! | `durable-submit` | acknowledged single submits/s from `--submitters` (64) tasks, no bank consuming (intake) | the same on the memory store | ≥ 100,000/s | | | 64,400/s | 110,700/s |
//! | `durable-submit-busy` | the same while the bank processes them | the same on the memory store | | 9,100/s | 19,700/s | 30,400/s | 53,900/s |
//! | `durable-open` | ms to open a file of 1,000,000 finished requests and start an engine on it | the same with 1,000 | < 1,000 ms | 224 ms | 67 ms | 75 ms | 50 ms |
//! | `durable-query` | p50 (and p99) µs of a filtered query of 50 on that file | the same with 1,000 | milliseconds | 35,600 µs (p99 63,100) | 280 µs (p99 1,300) | 223 µs (p99 1,470) | 160 µs (p99 880) |
//! | `durable-throughput-full` | `durable-throughput` on a copy of that file (the default retention's limit), the sweeper deleting every second | `durable-throughput` on an empty file, same sweeper | printed | | | | 55,200/s (ratio 0.73) |
//!
//! Schema 1 and 2: medians of three `atmo bench durable` invocations (each itself a median of
//! 5 runs), alternating the two builds, on a shared 2-core VM whose figures vary by a third
//! from run to run; `atmo-sqlite` is the only difference between the builds. Schema 1 kept
//! each request as one JSON body re-encoded at every state change, under 12 indexes (plus the
//! id's and the idempotency key's); schema 2 (see `atmo-sqlite`) writes only the columns a
//! change touches, under mostly partial indexes, and counts requests per status and task.
//! (Before `durable-submit-busy` existed, `durable-submit` measured what it measures.) The
//! "sync thread" column: one `--repeat 5` invocation on the quiet machine, after the sync
//! thread (fsyncs off the writer's path, commits joined while an fsync runs), the checkpoint
//! thread and the writer's row cache; the build before them measured 32,900/s and 25,800/s
//! (busy) in the same half hour. About 2 fsyncs per 1,000 requests throughout. The last
//! column: a later, faster VM (fdatasync ~0.15 ms instead of 0.2–0.5 ms; the memory-store
//! baseline about twice as fast), median of three invocations in a quiet period, after the row
//! cache was cut to 16,384 rows and the sync thread learned to free memory after the next
//! fsync (together ~5% on `durable-submit` when alternated with the build before them); most
//! of the difference with the previous column is the machine.
//!
//! The open, query and full-store scenarios share their files; see [`super::large`].

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use atmo_sqlite::{SqliteOptions, SqliteStore};
use atmo_workers::{Store, WorkerManager};

use super::engine::{self, Setup};
use super::inproc::{interleaved, per_second};
use super::large;
use super::report::Line;
use super::stats::{latency_medians, median};
use crate::cli::{DurableArgs, DurableScenario};

/// Sizes of one run of each scenario.
#[derive(Clone, Debug)]
struct Plan {
    runs: u32,
    batch: usize,
    in_flight: usize,
    submitters: usize,
    setup: Setup,
    throughput_requests: usize,
    submit_requests: usize,
    large_requests: usize,
    query_samples: usize,
}

impl Plan {
    fn new(args: &DurableArgs) -> Self {
        let runs = args.runs.count();
        let (throughput_requests, submit_requests, large_requests) =
            if args.runs.quick { (20_000, 10_000, 100_000) } else { (200_000, 100_000, 1_000_000) };
        Plan {
            runs,
            batch: args.load.batch as usize,
            in_flight: args.load.in_flight as usize,
            submitters: args.submitters as usize,
            setup: Setup {
                bank_capacity: args.load.bank_capacity as usize,
                retain_all: false,
                intake_only: false,
                sweep_every: None,
            },
            throughput_requests,
            submit_requests,
            large_requests,
            query_samples: 300,
        }
    }
}

/// Runs the selected scenarios, printing each line as soon as it is measured.
///
/// # Errors
/// A scenario that fails (the store cannot be created, the engine returned an error or a
/// wrong result), or stdout closing.
pub(crate) fn run(args: &DurableArgs) -> anyhow::Result<()> {
    let plan = Plan::new(args);
    let runtime = super::runtime(args.load.runtime_threads as usize)?;
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let scenarios: &[DurableScenario] = if args.scenario.is_empty() { &DurableScenario::ALL } else { &args.scenario };
    let mut out = std::io::stdout().lock();
    // The open and query scenarios' files, written once, when the first of them runs.
    let mut files = None;
    for &scenario in DurableScenario::ALL.iter().filter(|s| scenarios.contains(s)) {
        let line = match scenario {
            DurableScenario::Throughput => throughput(&runtime, &dir, &plan)?,
            DurableScenario::Submit => submit(&runtime, &dir, &plan, false)?,
            DurableScenario::SubmitBusy => submit(&runtime, &dir, &plan, true)?,
            DurableScenario::Open | DurableScenario::Query | DurableScenario::ThroughputFull => {
                if files.is_none() {
                    files = Some(runtime.block_on(async {
                        anyhow::Ok((
                            large::fill(&dir, plan.large_requests).await?,
                            large::fill(&dir, large::SMALL).await?,
                        ))
                    })?);
                }
                let Some((big, small)) = &files else { anyhow::bail!("the large files were not written") };
                match scenario {
                    DurableScenario::Open => open(&runtime, &big.path, &small.path, &plan)?,
                    DurableScenario::Query => query(&runtime, &big.path, &small.path, &plan)?,
                    _ => throughput_full(&runtime, &dir, &big.path, &plan)?,
                }
            }
        };
        line.write(&mut out, args.json)?;
    }
    out.flush()?;
    Ok(())
}

/// A store in a new temporary directory under `dir`: empty, or a copy of the store file
/// `seed`. The directory goes when the returned guard drops (after the store: drop the store
/// first).
fn fresh_store(dir: &Path, seed: Option<&Path>) -> anyhow::Result<(tempfile::TempDir, Arc<SqliteStore>)> {
    let tmp = tempfile::Builder::new()
        .prefix("atmo-bench-durable-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot create a temporary directory in {}", dir.display()))?;
    let path = tmp.path().join("atmo.db");
    if let Some(seed) = seed {
        // A closed store is one file: its last connection checkpointed the WAL and removed it.
        std::fs::copy(seed, &path).with_context(|| format!("cannot copy {}", seed.display()))?;
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).context("cannot open the SQLite store")?;
    Ok((tmp, Arc::new(store)))
}

/// Runs `f` on an engine with the benchmark's bank on a fresh SQLite store (a copy of `seed`,
/// if given), then stops it; returns what `f` returned and the store's WAL fsyncs while `f`
/// ran.
async fn on_sqlite<T, F, Fut>(dir: &Path, seed: Option<&Path>, setup: Setup, f: F) -> anyhow::Result<(T, u64)>
where
    F: FnOnce(WorkerManager) -> Fut,
    Fut: Future<Output = anyhow::Result<(T, WorkerManager)>>,
{
    let (tmp, store) = fresh_store(dir, seed)?;
    let manager = engine::start_on(setup, Some(store.clone() as Arc<dyn Store>)).await?;
    let before = store.syncs();
    let (value, manager) = f(manager).await?;
    let syncs = store.syncs() - before;
    engine::stop(manager).await?;
    // The engine's last reference goes with `manager`; the store's threads stop here, before
    // its directory is removed.
    drop(store);
    drop(tmp);
    Ok((value, syncs))
}

/// One `durable-throughput` run of `n` requests on a fresh store (a copy of `seed`, if
/// given): requests/s and fsyncs per 1,000 requests.
fn durable_throughput_run(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    seed: Option<&Path>,
    plan: &Plan,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    rt.block_on(on_sqlite(dir, seed, plan.setup, |m| async move {
        let elapsed = engine::throughput(&m, n, plan.batch, plan.in_flight).await?;
        Ok((elapsed, m))
    }))
    .map(|(elapsed, syncs)| rate_and_fsyncs(n, elapsed, syncs))
}

/// A run's rate of `n` operations and its fsyncs per 1,000 of them.
fn rate_and_fsyncs(n: usize, elapsed: Duration, syncs: u64) -> (f64, f64) {
    (per_second(n, elapsed), syncs as f64 * 1000.0 / n.max(1) as f64)
}

/// The line of a durable scenario: the medians of its runs' rates and fsyncs per 1,000, and
/// of its baseline's rates.
fn line_with_fsyncs(scenario: DurableScenario, unit: &'static str, runs: &[(f64, f64)], baseline: &[f64]) -> Line {
    let rates: Vec<f64> = runs.iter().map(|(r, _)| *r).collect();
    let fsyncs: Vec<f64> = runs.iter().map(|(_, f)| *f).collect();
    Line::new(scenario.name(), unit, median(&rates), median(baseline), u32::try_from(runs.len()).unwrap_or(u32::MAX))
        .with_fsyncs_per_1000(median(&fsyncs))
}

fn throughput(rt: &tokio::runtime::Runtime, dir: &Path, plan: &Plan) -> anyhow::Result<Line> {
    let n = plan.throughput_requests;
    let durable_run = |n: usize| durable_throughput_run(rt, dir, None, plan, n);
    let memory_run = |n: usize| {
        rt.block_on(async {
            engine::throughput_rate(engine::start(plan.setup).await?, n, plan.batch, plan.in_flight).await
        })
    };
    // Untimed warm-up: the allocator's arenas, the threads' stacks, the code in cache.
    durable_run(n / 10)?;
    memory_run(n / 10)?;
    let (d, m) = interleaved(plan.runs, || durable_run(n), || memory_run(n))?;
    Ok(line_with_fsyncs(DurableScenario::Throughput, "requests/s", &d, &m))
}

/// `durable-submit` (`busy`: `durable-submit-busy`, with the bank processing).
fn submit(rt: &tokio::runtime::Runtime, dir: &Path, plan: &Plan, busy: bool) -> anyhow::Result<Line> {
    let n = plan.submit_requests;
    let setup = Setup { intake_only: !busy, ..plan.setup };
    let durable_run = |n: usize| {
        rt.block_on(on_sqlite(dir, None, setup, |m| async move {
            let elapsed = engine::submit_load(&m, n, plan.submitters).await?;
            Ok((elapsed, m))
        }))
        .map(|(elapsed, syncs)| rate_and_fsyncs(n, elapsed, syncs))
    };
    let memory_run =
        |n: usize| rt.block_on(async { engine::submit_rate(engine::start(setup).await?, n, plan.submitters).await });
    durable_run(n / 10)?;
    memory_run(n / 10)?;
    let (d, m) = interleaved(plan.runs, || durable_run(n), || memory_run(n))?;
    let scenario = if busy { DurableScenario::SubmitBusy } else { DurableScenario::Submit };
    Ok(line_with_fsyncs(scenario, "submits/s", &d, &m))
}

/// `durable-throughput-full`: `durable-throughput` on a copy of the large file against
/// `durable-throughput` on an empty one, alternating.
fn throughput_full(rt: &tokio::runtime::Runtime, dir: &Path, big: &Path, plan: &Plan) -> anyhow::Result<Line> {
    let n = plan.throughput_requests;
    // The sweeper deletes the oldest finished requests every second, as fast as new ones
    // finish (the copy starts at the default retention's limit); the baseline runs the same.
    let plan = &Plan { setup: Setup { sweep_every: Some(Duration::from_secs(1)), ..plan.setup }, ..plan.clone() };
    let (full, empty) = interleaved(
        plan.runs,
        || durable_throughput_run(rt, dir, Some(big), plan, n),
        || durable_throughput_run(rt, dir, None, plan, n),
    )?;
    let empty: Vec<f64> = empty.iter().map(|(r, _)| *r).collect();
    Ok(line_with_fsyncs(DurableScenario::ThroughputFull, "requests/s", &full, &empty))
}

fn open(rt: &tokio::runtime::Runtime, big: &Path, small: &Path, plan: &Plan) -> anyhow::Result<Line> {
    let (b, s) = interleaved(plan.runs, || rt.block_on(large::open(big)), || rt.block_on(large::open(small)))?;
    Ok(Line::new(DurableScenario::Open.name(), "ms", median(&b), median(&s), plan.runs))
}

fn query(rt: &tokio::runtime::Runtime, big: &Path, small: &Path, plan: &Plan) -> anyhow::Result<Line> {
    let samples = plan.query_samples;
    let (b, s) = interleaved(
        plan.runs,
        || rt.block_on(large::query(big, samples)),
        || rt.block_on(large::query(small, samples)),
    )?;
    let ((b50, b99), (s50, s99)) = (latency_medians(b), latency_medians(s));
    Ok(Line::new(DurableScenario::Query.name(), "µs", b50, s50, plan.runs).with_p99(b99, s99))
}
