//! `atmo bench inproc`: the engine in this process against the plain-threads baseline.
//!
//! Each scenario runs `--repeat` times. A run measures the engine and the baseline back to
//! back, alternating which goes first, so both see the same machine (other processes, CPU
//! frequency) and neither always gets the warmer caches; the report gives the median of each.
//! The engine is started afresh for every run, outside the timed part, so every run sees an
//! empty store (one engine reused across runs would carry millions of finished requests into
//! the later ones). It runs on a multi-thread tokio runtime (`--runtime-threads`, default 2)
//! with one bank of 2 worker threads; the baseline has 2 threads too.
//!
//! | scenario | value | baseline | target |
//! | --- | --- | --- | --- |
//! | `inproc-throughput` | requests/s through `submit_many_and_wait`, batches from several tasks | requests/s through the plain pool, as many batches in flight | ≥ 1,000,000/s and ≥ 0.15 |
//! | `inproc-latency` | p50 (and p99) of `submit_and_wait`, one at a time, µs | the same through the plain pool | p50 ≤ 20 µs |
//! | `inproc-memory` | bytes each retained finished request costs beyond its parameters and result | bytes a plain `HashMap<RequestId, Arc<Value>>` ledger costs per finished request | ≤ 512 |
//!
//! The memory baseline is the least any ledger of finished requests must keep (an id and a
//! result per request); the ratio says how many times that the engine's full record (status,
//! timestamps, attempts, bank and worker, status history, indexes) costs.

use std::io::Write;
use std::time::Duration;

use super::baseline::{self, Pool};
use super::report::Line;
use super::stats::{latency_medians, median};
use super::{engine, work};
use crate::ALLOC;
use crate::cli::{InprocArgs, InprocScenario};

/// Sizes of one run of each scenario.
#[derive(Clone, Copy, Debug)]
struct Plan {
    runs: u32,
    batch: usize,
    in_flight: usize,
    bank_capacity: usize,
    throughput_requests: usize,
    latency_warmup: usize,
    latency_samples: usize,
    memory_requests: usize,
}

impl Plan {
    fn new(args: &InprocArgs) -> Self {
        let runs = args.runs.count();
        let (throughput_requests, latency_warmup, latency_samples, memory_requests) =
            if args.runs.quick { (100_000, 500, 5_000, 20_000) } else { (1_000_000, 5_000, 50_000, 200_000) };
        Plan {
            runs,
            batch: args.load.batch as usize,
            in_flight: args.load.in_flight as usize,
            bank_capacity: args.load.bank_capacity as usize,
            throughput_requests,
            latency_warmup,
            latency_samples,
            memory_requests,
        }
    }
}

/// Runs the selected scenarios, printing each line as soon as it is measured.
///
/// # Errors
/// A scenario that fails, or stdout closing.
pub(crate) fn run(args: &InprocArgs) -> anyhow::Result<()> {
    let plan = Plan::new(args);
    let runtime = super::runtime(args.load.runtime_threads as usize)?;
    let pool = Pool::start(baseline::THREADS)?;
    let scenarios: &[InprocScenario] = if args.scenario.is_empty() { &InprocScenario::ALL } else { &args.scenario };
    let mut out = std::io::stdout().lock();
    for &scenario in InprocScenario::ALL.iter().filter(|s| scenarios.contains(s)) {
        let line = match scenario {
            InprocScenario::Throughput => throughput(&runtime, &pool, &plan)?,
            InprocScenario::Latency => latency(&runtime, &pool, &plan)?,
            InprocScenario::Memory => memory(&runtime, &pool, &plan)?,
        };
        line.write(&mut out, args.json)?;
    }
    out.flush()?;
    Ok(())
}

/// Runs `engine` and `baseline` once per run, alternating which goes first.
pub(super) fn interleaved<T, U>(
    runs: u32,
    mut engine: impl FnMut() -> anyhow::Result<T>,
    mut baseline: impl FnMut() -> anyhow::Result<U>,
) -> anyhow::Result<(Vec<T>, Vec<U>)> {
    let (mut e, mut b) = (Vec::new(), Vec::new());
    for run in 0..runs {
        if run % 2 == 0 {
            e.push(engine()?);
            b.push(baseline()?);
        } else {
            b.push(baseline()?);
            e.push(engine()?);
        }
    }
    Ok((e, b))
}

/// `n` events in `d`, per second.
pub(super) fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn throughput(rt: &tokio::runtime::Runtime, pool: &Pool, plan: &Plan) -> anyhow::Result<Line> {
    let n = plan.throughput_requests;
    let setup =
        engine::Setup { bank_capacity: plan.bank_capacity, retain_all: false, intake_only: false, sweep_every: None };
    let engine_run = |n: usize| {
        rt.block_on(async { engine::throughput_rate(engine::start(setup).await?, n, plan.batch, plan.in_flight).await })
    };
    let baseline_run = |n: usize| pool.throughput(n, plan.batch, plan.in_flight).map(|d| per_second(n, d));
    // Untimed warm-up: the allocator's arenas, the threads' stacks, the code in cache.
    engine_run(n / 10)?;
    baseline_run(n / 10)?;
    let (e, b) = interleaved(plan.runs, || engine_run(n), || baseline_run(n))?;
    Ok(Line::new(InprocScenario::Throughput.name(), "requests/s", median(&e), median(&b), plan.runs))
}

fn latency(rt: &tokio::runtime::Runtime, pool: &Pool, plan: &Plan) -> anyhow::Result<Line> {
    let setup =
        engine::Setup { bank_capacity: plan.bank_capacity, retain_all: false, intake_only: false, sweep_every: None };
    let engine_run = || {
        rt.block_on(async {
            engine::latency_times(engine::start(setup).await?, plan.latency_warmup, plan.latency_samples).await
        })
    };
    let baseline_run = || pool.latency(plan.latency_warmup, plan.latency_samples);
    let (e, b) = interleaved(plan.runs, engine_run, baseline_run)?;
    let ((e50, e99), (b50, b99)) = (latency_medians(e), latency_medians(b));
    Ok(Line::new(InprocScenario::Latency.name(), "µs", e50, b50, plan.runs).with_p99(e99, b99))
}

fn memory(rt: &tokio::runtime::Runtime, pool: &Pool, plan: &Plan) -> anyhow::Result<Line> {
    let n = plan.memory_requests;
    let (params_bytes, result_bytes) = work::noop_payload_bytes(&ALLOC, 10_000);
    let setup =
        engine::Setup { bank_capacity: plan.bank_capacity, retain_all: true, intake_only: false, sweep_every: None };
    let engine_run = || {
        rt.block_on(async {
            let manager = engine::start(setup).await?;
            let bytes = engine::memory(&manager, &ALLOC, n, plan.batch, params_bytes + result_bytes).await?;
            engine::stop(manager).await?;
            anyhow::Ok(bytes)
        })
    };
    let baseline_run = || pool.memory(&ALLOC, n, result_bytes);
    let (e, b) = interleaved(plan.runs, engine_run, baseline_run)?;
    Ok(Line::new(InprocScenario::Memory.name(), "bytes/request", median(&e), median(&b), plan.runs))
}
