//! `atmo bench isolation`: one bank cannot slow another.
//!
//! Two built-in banks as `atmo serve` starts them (`builtin-crypto` and `builtin-computation`,
//! each with its suggested workers capped at the machine's cores, default capacity, the
//! computation bank in the background as `[builtins] background` has it by default): a
//! short-task bank's throughput (`HASH` of a short string, submitted in batches and awaited) is
//! measured alone, then with a long-task bank beside it busy with `MONTE_CARLO_PI` requests
//! submitted just before (enough of them to outlast the short ones). The value is the short
//! bank's requests/s beside the long bank, the baseline the same alone, alternating which goes
//! first; the target ratio is ≥ 0.8 on both stores. The `-normal` lines measure the same
//! with the long bank at normal priority (what it was before background banks).
//!
//! | scenario | value | baseline | target | before | after |
//! | --- | --- | --- | --- | --- | --- |
//! | `isolation-memory` | `HASH` requests/s beside 40 `MONTE_CARLO_PI` (2e7) | the same alone | ≥ 0.8 | 0.08 | 0.52–0.59 |
//! | `isolation-sqlite` | the same on a fresh SQLite file (default options) | the same alone | ≥ 0.8 | 0.22 | 1.19 |
//! | `isolation-memory-normal` | `isolation-memory` with the long bank at normal priority | the same alone | printed | | |
//! | `isolation-sqlite-normal` | `isolation-sqlite` with the long bank at normal priority | the same alone | printed | | |

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use atmo_workers::{BankSpec, Store, SubmitRequest, WorkerManager};
use serde_json::json;

use super::inproc::{interleaved, per_second};
use super::report::Line;
use super::stats::median;
use crate::cli::IsolationArgs;

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
struct Plan {
    runs: u32,
    /// Short requests per run.
    short: usize,
    /// Long requests beside them.
    long: usize,
    /// Iterations of each long request.
    iterations: u64,
    /// Short requests per `submit_many_and_wait`.
    batch: usize,
    /// Batches in flight.
    in_flight: usize,
}

/// Runs both scenarios, printing each line as soon as it is measured.
///
/// # Errors
/// A scenario that fails (the store cannot be created, a request failed), or stdout closing.
pub(crate) fn run(args: &IsolationArgs) -> anyhow::Result<()> {
    let plan = Plan {
        runs: args.runs.count(),
        short: if args.runs.quick { 2_000 } else { 5_000 },
        long: 40,
        iterations: if args.runs.quick { 5_000_000 } else { 20_000_000 },
        batch: 100,
        in_flight: 4,
    };
    let runtime = super::runtime(2)?;
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut out = std::io::stdout().lock();
    for (sqlite, background) in [(false, true), (true, true), (false, false), (true, false)] {
        let long = Some(if background { Priority::Background } else { Priority::Normal });
        let (beside, alone) = interleaved(
            plan.runs,
            || runtime.block_on(short_rate(&dir, sqlite, long, plan)),
            || runtime.block_on(short_rate(&dir, sqlite, None, plan)),
        )?;
        let name = match (sqlite, background) {
            (false, true) => "isolation-memory",
            (true, true) => "isolation-sqlite",
            (false, false) => "isolation-memory-normal",
            (true, false) => "isolation-sqlite-normal",
        };
        Line::new(name, "requests/s", median(&beside), median(&alone), plan.runs).write(&mut out, args.json)?;
    }
    Ok(())
}

/// The CPU priority of the long bank's threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Priority {
    /// As `atmo serve` runs the built-in computation bank.
    Background,
    /// Every bank at normal priority.
    Normal,
}

/// The short bank's requests/s in one run, with the long bank busy at the priority of `long`,
/// or idle (`None`).
async fn short_rate(dir: &Path, sqlite: bool, long: Option<Priority>, plan: Plan) -> anyhow::Result<f64> {
    let tmp = tempfile::Builder::new()
        .prefix("atmo-bench-isolation-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot create a temporary directory in {}", dir.display()))?;
    let mut builder = WorkerManager::builder().name("atmo-bench");
    let store = if sqlite {
        let store = atmo_sqlite::SqliteStore::open(tmp.path().join("atmo.db"), atmo_sqlite::SqliteOptions::default())
            .context("cannot open the SQLite store")?;
        Some(Arc::new(store))
    } else {
        None
    };
    if let Some(s) = &store {
        let s: Arc<dyn Store> = s.clone();
        builder = builder.configure(|b| b.shared_store(s));
    }
    let manager = builder.start().await.context("cannot start the engine")?;
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    for b in atmo_builtins::banks() {
        if b.bank_id != "builtin-crypto" && b.bank_id != "builtin-computation" {
            continue;
        }
        let workers = b.suggested_workers.min(cores).max(1);
        let background = long != Some(Priority::Normal)
            && crate::serve::config::DEFAULT_BACKGROUND_BUILTINS.contains(&b.manifest.name.as_str());
        let spec = BankSpec::new(b.bank_id.clone(), b.manifest).workers(workers).background(background);
        manager
            .initialize_worker_bank(spec.handlers(b.handlers))
            .with_context(|| format!("cannot start bank `{}`", b.bank_id))?;
    }
    let long = if long.is_some() {
        let requests = (0..plan.long)
            .map(|i| SubmitRequest::new("MONTE_CARLO_PI", json!({"iterations": plan.iterations, "seed": i})))
            .collect();
        manager.submit_many(requests).await.context("cannot submit the long requests")?
    } else {
        Vec::new()
    };
    let elapsed = short_load(&manager, plan).await;
    for id in long {
        // What is still running is cut short: only the short bank's time counts.
        let _ = manager.cancel(id).await;
    }
    manager.shutdown(Duration::from_secs(10)).await.context("engine shutdown failed")?;
    drop(manager);
    drop(store);
    drop(tmp);
    Ok(per_second(plan.short, elapsed?))
}

/// Runs the short requests in batches from a few tasks; returns the elapsed time.
async fn short_load(manager: &WorkerManager, plan: Plan) -> anyhow::Result<Duration> {
    let batches = plan.short.div_ceil(plan.batch);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let drivers: Vec<_> = (0..plan.in_flight)
        .map(|_| {
            let (manager, next) = (manager.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if k >= batches {
                        return anyhow::Ok(());
                    }
                    let n = plan.batch.min(plan.short - k * plan.batch);
                    let requests =
                        (0..n).map(|i| SubmitRequest::new("HASH", json!({"data": format!("row {k} {i}")}))).collect();
                    let results = manager.submit_many_and_wait(requests).await?;
                    if let Some(r) = results.iter().find(|r| !r.success) {
                        bail!("HASH request {} failed: {:?}", r.request_id, r.error);
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
