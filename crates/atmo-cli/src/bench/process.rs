//! `atmo bench process`: process worker banks against the in-process thread bank.
//!
//! The engine runs a process bank of `atmo worker bench` processes (this binary, serving the
//! benchmark's manifest with the Rust SDK, [`atmo_workers::responder::WorkerResponder`]) or of
//! Node processes running `workers/node/bench-worker.mjs`; the baseline is the same engine with
//! the same manifest on a bank of 2 worker threads, measured back to back with it, alternating
//! which goes first. Every result is checked.
//!
//! | scenario | value | baseline | target |
//! | --- | --- | --- | --- |
//! | `process-throughput` | requests/s through 2 Rust worker processes, pipelined, batches awaited | the thread bank | ≥ 100,000/s |
//! | `process-node` | the same through 2 Node worker processes | the thread bank | printed |
//! | `process-latency` | p50 (and p99) µs of one request at a time through 1 Rust process | the thread bank | p50 ≤ 100 µs |

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use atmo_workers::manifest::CommandSpec;
use atmo_workers::{BankSpec, WorkerManager};

use super::engine::{self, Setup};
use super::inproc::interleaved;
use super::report::Line;
use super::stats::{latency_medians, median};
use crate::cli::{ProcessArgs, ProcessScenario};

/// Worker processes in the throughput scenarios (as many as the baseline's threads).
const PROCESSES: usize = 2;

/// Sizes of one run of each scenario.
#[derive(Clone, Debug)]
struct Plan {
    runs: u32,
    batch: usize,
    in_flight: usize,
    pipeline: usize,
    setup: Setup,
    throughput_requests: usize,
    latency_warmup: usize,
    latency_samples: usize,
}

impl Plan {
    fn new(args: &ProcessArgs) -> Self {
        let (throughput_requests, latency_warmup, latency_samples) =
            if args.runs.quick { (20_000, 200, 2_000) } else { (200_000, 2_000, 20_000) };
        Plan {
            runs: args.runs.count(),
            batch: args.load.batch as usize,
            in_flight: args.load.in_flight as usize,
            pipeline: args.pipeline as usize,
            setup: Setup {
                bank_capacity: args.load.bank_capacity as usize,
                retain_all: false,
                intake_only: false,
                sweep_every: None,
            },
            throughput_requests,
            latency_warmup,
            latency_samples,
        }
    }
}

/// Runs the selected scenarios, printing each line as soon as it is measured.
///
/// # Errors
/// A scenario that fails (a worker that does not start, a wrong result), or stdout closing.
pub(crate) fn run(args: &ProcessArgs) -> anyhow::Result<()> {
    let plan = Plan::new(args);
    let runtime = super::runtime(args.load.runtime_threads as usize)?;
    let scenarios: &[ProcessScenario] = if args.scenario.is_empty() { &ProcessScenario::ALL } else { &args.scenario };
    let mut out = std::io::stdout().lock();
    for &scenario in ProcessScenario::ALL.iter().filter(|s| scenarios.contains(s)) {
        let line = match scenario {
            ProcessScenario::Throughput => throughput(&runtime, &plan, &rust_worker(plan.pipeline)?, scenario)?,
            ProcessScenario::Node => match node_worker() {
                Some(command) => throughput(&runtime, &plan, &command, scenario)?,
                None => {
                    eprintln!("process-node: skipped (needs `node` on PATH and workers/node/bench-worker.mjs)");
                    continue;
                }
            },
            ProcessScenario::Latency => latency(&runtime, &plan)?,
        };
        line.write(&mut out, args.json)?;
    }
    out.flush()?;
    Ok(())
}

/// `atmo worker bench`, this very binary.
fn rust_worker(pipeline: usize) -> anyhow::Result<CommandSpec> {
    let exe = std::env::current_exe().context("cannot find the atmo binary to run as a worker")?;
    Ok(CommandSpec {
        program: exe.to_string_lossy().into_owned(),
        args: vec!["worker".into(), "bench".into(), "--max-in-flight".into(), pipeline.to_string()],
        env: Default::default(),
        working_dir: None,
    })
}

/// `node workers/node/bench-worker.mjs`, when both exist.
fn node_worker() -> Option<CommandSpec> {
    let script = [
        PathBuf::from("workers/node/bench-worker.mjs"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workers/node/bench-worker.mjs"),
    ]
    .into_iter()
    .find(|p| p.is_file())?;
    let node = std::process::Command::new("node").arg("--version").output().ok()?;
    if !node.status.success() {
        return None;
    }
    Some(CommandSpec {
        program: "node".into(),
        args: vec![script.to_string_lossy().into_owned()],
        env: Default::default(),
        working_dir: None,
    })
}

/// Starts an engine whose benchmark bank is `workers` processes running `command`.
async fn start_process_bank(setup: Setup, command: &CommandSpec, workers: usize) -> anyhow::Result<WorkerManager> {
    let manager = WorkerManager::builder().name("atmo-bench").start().await.context("cannot start the engine")?;
    manager
        .initialize_process_bank(
            BankSpec::new("bench", engine::manifest()?)
                .workers(workers)
                .capacity(setup.bank_capacity)
                .command(command.clone()),
        )
        .await
        .context("cannot start the benchmark's worker processes")?;
    Ok(manager)
}

fn throughput(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    command: &CommandSpec,
    scenario: ProcessScenario,
) -> anyhow::Result<Line> {
    let n = plan.throughput_requests;
    let process_run = |n: usize| {
        rt.block_on(async {
            let manager = start_process_bank(plan.setup, command, PROCESSES).await?;
            engine::throughput_rate(manager, n, plan.batch, plan.in_flight).await
        })
    };
    let thread_run = |n: usize| {
        rt.block_on(async {
            engine::throughput_rate(engine::start(plan.setup).await?, n, plan.batch, plan.in_flight).await
        })
    };
    // Untimed warm-up.
    process_run(n / 10)?;
    thread_run(n / 10)?;
    let (e, b) = interleaved(plan.runs, || process_run(n), || thread_run(n))?;
    Ok(Line::new(scenario.name(), "requests/s", median(&e), median(&b), plan.runs))
}

fn latency(rt: &tokio::runtime::Runtime, plan: &Plan) -> anyhow::Result<Line> {
    let command = rust_worker(1)?;
    let (warmup, samples) = (plan.latency_warmup, plan.latency_samples);
    let process_run = || {
        rt.block_on(async {
            engine::latency_times(start_process_bank(plan.setup, &command, 1).await?, warmup, samples).await
        })
    };
    let thread_run =
        || rt.block_on(async { engine::latency_times(engine::start(plan.setup).await?, warmup, samples).await });
    let (e, b) = interleaved(plan.runs, process_run, thread_run)?;
    let ((e50, e99), (b50, b99)) = (latency_medians(e), latency_medians(b));
    Ok(Line::new(ProcessScenario::Latency.name(), "µs", e50, b50, plan.runs).with_p99(e99, b99))
}
