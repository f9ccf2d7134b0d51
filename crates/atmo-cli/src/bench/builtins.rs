//! `atmo bench builtins`: every action of every built-in manifest through a thread bank,
//! against a direct call of its handler measured in the same run.
//!
//! One engine serves the whole benchmark: a [`WorkerManager`] on the memory store with every
//! built-in registered the way `atmo_builtins::banks` documents (one bank per manifest), each
//! bank with as many worker threads as the direct side has threads: the manifest's suggested
//! count capped at this machine's cores. For each action, one representative request (small
//! matrices, a kilobyte of text, a 480 × 360 JPEG photo, Argon2id at its default costs, ...)
//! is
//!
//! - submitted `n` times through `submit_many_and_wait` (batches of [`BATCH`], [`IN_FLIGHT`]
//!   batches at once), every result checked: the engine's requests/s, validation, lifecycle
//!   tracking and dispatch included;
//! - called `n` times directly on the handler from as many plain threads as the bank has
//!   workers, with the parameters already validated: the baseline's requests/s.
//!
//! The ratio (engine / direct) is what the engine costs on top of the work itself: near 1 for
//! actions that take milliseconds, lower for the microsecond ones. `n` is sized per action
//! from two short untimed runs (the direct call on one thread, then a warm-up through the
//! engine), so that neither side takes much more than [`Plan::budget`]: cheap actions get
//! many requests (at most [`Plan::max_requests`]), expensive ones like `PASSWORD_HASH` a few
//! per thread. Runs alternate which side goes first, as `bench inproc` does, and the report
//! gives the median of each. The whole `--quick` run takes under 10 s on 2 cores, a full run
//! (5 runs) about a minute.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use atmo_builtins::BuiltinBank;
use atmo_workers::{BankSpec, Handler, Resources, SubmitRequest, TaskContext, WorkerManager};
use serde_json::{Value, json};

use super::inproc::{interleaved, per_second};
use super::report::Line;
use super::stats::median;
use crate::cli::BuiltinsArgs;

/// Requests per `submit_many_and_wait` call.
const BATCH: usize = 256;
/// Batches in flight at once, one tokio task each.
const IN_FLIGHT: usize = 4;
/// Fewest requests per thread in a measured run.
const MIN_PER_THREAD: usize = 8;
/// Most requests of the engine's warm-up (and sizing) run of one action.
const WARMUP_MAX: usize = 500;
/// Width of the scenario column in `report`'s text lines; longer names push the rest right,
/// so this bench pads every line to its longest action id instead.
const REPORT_NAME_WIDTH: usize = super::report::NAME_WIDTH;

/// Sizes of the benchmark.
#[derive(Clone, Copy, Debug)]
struct Plan {
    runs: u32,
    /// Threads on each side: the bank's workers, the direct call's threads.
    threads: usize,
    /// About how long each side of one run takes.
    budget: Duration,
    /// How long the direct call is timed to size `n`.
    calibrate: Duration,
    /// Most requests per run of one action.
    max_requests: usize,
}

impl Plan {
    fn new(args: &BuiltinsArgs) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let (budget, calibrate, max_requests) = if args.runs.quick {
            (Duration::from_millis(50), Duration::from_millis(10), 20_000)
        } else {
            (Duration::from_millis(150), Duration::from_millis(50), 100_000)
        };
        Plan { runs: args.runs.count(), threads: cores.clamp(1, 2), budget, calibrate, max_requests }
    }

    /// Requests per run for an action whose request costs `per_call` of one thread's time.
    fn requests(&self, per_call: Duration) -> usize {
        let n = self.budget.as_secs_f64() * self.threads as f64 / per_call.as_secs_f64().max(1e-9);
        (n.round() as usize).clamp(MIN_PER_THREAD * self.threads, self.max_requests)
    }
}

/// Runs every selected action, printing each line as soon as it is measured.
///
/// # Errors
/// An action without a representative input, a request that failed, an engine error, or
/// stdout closing.
pub(crate) fn run(args: &BuiltinsArgs) -> anyhow::Result<()> {
    let plan = Plan::new(args);
    let banks = atmo_builtins::banks();
    let inputs = Inputs::build(&banks)?;
    let selected: Vec<(&BuiltinBank, &'static str, Value)> = banks
        .iter()
        .flat_map(|b| b.manifest.action_ids().map(move |a| (b, a)))
        .filter(|(_, a)| args.action.is_empty() || args.action.iter().any(|s| s == a))
        .map(|(b, a)| inputs.case(b, a).map(|(name, params)| (b, name, params)))
        .collect::<anyhow::Result<_>>()?;
    if let Some(unknown) = args.action.iter().find(|s| !selected.iter().any(|(_, a, _)| a == s)) {
        bail!("no built-in action `{unknown}`");
    }
    let width = selected.iter().map(|(_, a, _)| a.len()).max().unwrap_or(0).max(REPORT_NAME_WIDTH);

    let runtime = super::runtime(2)?;
    let manager = runtime.block_on(start(&banks, plan.threads))?;
    let mut out = std::io::stdout().lock();
    let measured = selected.iter().try_for_each(|(bank, action, params)| {
        let handler = bank.handlers.get(action).with_context(|| format!("no handler for {action}"))?;
        let line = measure(&runtime, &manager, handler, action, params, &plan)?;
        write(&line, &mut out, args.json, width)
    });
    runtime.block_on(manager.shutdown(Duration::from_secs(10))).context("engine shutdown failed")?;
    measured?;
    out.flush()?;
    Ok(())
}

/// An engine with every built-in bank, `threads` workers each.
async fn start(banks: &[BuiltinBank], threads: usize) -> anyhow::Result<WorkerManager> {
    let manager =
        WorkerManager::builder().name("atmo-bench-builtins").start().await.context("cannot start the engine")?;
    for b in banks {
        let spec = BankSpec::new(b.bank_id.clone(), b.manifest.clone())
            .handlers(b.handlers.clone())
            .workers(b.suggested_workers.min(threads));
        manager.initialize_worker_bank(spec).with_context(|| format!("cannot start bank {}", b.bank_id))?;
    }
    Ok(manager)
}

/// One line: the engine's and the direct call's median requests/s for `action`.
fn measure(
    rt: &tokio::runtime::Runtime,
    manager: &WorkerManager,
    handler: &Handler,
    action: &'static str,
    params: &Value,
    plan: &Plan,
) -> anyhow::Result<Line> {
    let engine_run = |n: usize| rt.block_on(through_engine(manager, action, params, n));
    let direct_run = |n: usize| direct(handler, action, params, n, plan.threads);
    // Sizing, untimed: the direct call alone on one thread (which also warms it up), then the
    // engine on a few requests (which warms it up); `n` keeps both sides near the budget.
    let direct_n = plan.requests(calibrate(handler, action, params, plan.calibrate)?);
    let warm = (direct_n / 20).clamp(plan.threads, WARMUP_MAX);
    let engine_rate = engine_run(warm)?;
    let engine_n = plan.requests(Duration::from_secs_f64(plan.threads as f64 / engine_rate.max(1e-9)));
    let n = direct_n.min(engine_n);
    let (e, d) = interleaved(plan.runs, || engine_run(n), || direct_run(n))?;
    Ok(Line::new(action, "requests/s", median(&e), median(&d), plan.runs))
}

/// Time of one direct call on one thread, averaged over calls for about `limit`.
fn calibrate(handler: &Handler, action: &str, params: &Value, limit: Duration) -> anyhow::Result<Duration> {
    let ctx = TaskContext::detached(action, Arc::new(Resources::new()));
    let start = Instant::now();
    let mut calls = 0u32;
    while calls == 0 || (start.elapsed() < limit && calls < 10_000) {
        handler.call_blocking(&ctx, params).map_err(|e| anyhow::anyhow!("{action} failed: {e}"))?;
        calls += 1;
    }
    Ok(start.elapsed() / calls)
}

/// `n` requests through the engine; requests/s. Every result must be a success.
async fn through_engine(
    manager: &WorkerManager,
    action: &'static str,
    params: &Value,
    n: usize,
) -> anyhow::Result<f64> {
    let batches = n.div_ceil(BATCH);
    let next = Arc::new(AtomicUsize::new(0));
    let params = Arc::new(params.clone());
    let start = Instant::now();
    let drivers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (manager, next, params) = (manager.clone(), next.clone(), params.clone());
            tokio::spawn(async move {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= batches {
                        return anyhow::Ok(());
                    }
                    let size = BATCH.min(n - k * BATCH);
                    let requests = (0..size).map(|_| SubmitRequest::new(action, (*params).clone())).collect();
                    let results = manager.submit_many_and_wait(requests).await?;
                    if results.len() != size {
                        bail!("{action}: a batch of {size} requests returned {} results", results.len());
                    }
                    if let Some(r) = results.iter().find(|r| !r.success) {
                        bail!("{action}: request {} failed: {:?}", r.request_id, r.error);
                    }
                }
            })
        })
        .collect();
    for d in drivers {
        d.await.context("a driver task panicked")??;
    }
    Ok(per_second(n, start.elapsed()))
}

/// `n` direct calls from `threads` plain threads; requests/s.
fn direct(handler: &Handler, action: &str, params: &Value, n: usize, threads: usize) -> anyhow::Result<f64> {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let ctx = TaskContext::detached(action, Arc::new(Resources::new()));
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        handler.call_blocking(&ctx, params).map_err(|e| anyhow::anyhow!("{action} failed: {e}"))?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a direct-call thread panicked"))?)
    })?;
    Ok(per_second(n, start.elapsed()))
}

/// Writes `line`, its text form padded so that every action's figures align.
fn write(line: &Line, out: &mut impl Write, json: bool, width: usize) -> anyhow::Result<()> {
    if json {
        return line.write(out, true);
    }
    let mut text = Vec::new();
    line.write(&mut text, false)?;
    let text = String::from_utf8(text)?;
    // `report` pads the name to its own column; re-pad it to `width`.
    let rest = text.get(line.scenario.len().max(REPORT_NAME_WIDTH)..).unwrap_or_default();
    write!(out, "{:<width$}{rest}", line.scenario)?;
    out.flush()?;
    Ok(())
}

// ===== the representative inputs =====

/// Inputs that other built-ins produce (keys, hashes, images), made once before measuring.
struct Inputs {
    key: String,
    keypair: Value,
    signature: Value,
    hmac: Value,
    sealed: Value,
    password_hash: Value,
    photo: String,
}

/// An 8 × 8 PNG of random colours: upscaled, the photo-like input of the image actions.
const SEED_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAA00lEQVR42gHIADf/AKVNyhglMLsdbRMs3tYjey7ZHj9yH8sZcQAXRJTWSTydXDRgvjEgHmn+2qDu6LmZf1wAfCmZ/a/lkyU81lSvTfrXFCegrrP+6SMvAIryIR+e5JHFsQvstVY7/B5vk0J+y8j+KQBV5c2ORtyO1LfCdk0qWk12dwb4XYaQAkoA1r2jQBvpyMvMyTX2zR9hImrhUziuGjQAAE0zug0kasBMgbG68j47+e71958rSTSvhwD1UgtpuUsNmC6Fu1W2cqhyY3rNdGb8tg6f2V+Mn7fMSwAAAABJRU5ErkJggg==";
/// The password of `PASSWORD_HASH` and `PASSWORD_VERIFY`.
const PASSWORD: &str = "correct horse battery staple";

impl Inputs {
    fn build(banks: &[BuiltinBank]) -> anyhow::Result<Self> {
        let call = |action: &str, params: Value| -> anyhow::Result<Value> {
            let bank = banks
                .iter()
                .find(|b| b.manifest.action(action).is_some())
                .with_context(|| format!("no built-in action {action}"))?;
            let params = validated(bank, action, params)?;
            let handler = bank.handlers.get(action).with_context(|| format!("no handler for {action}"))?;
            let ctx = TaskContext::detached(action, Arc::new(Resources::new()));
            handler.call_blocking(&ctx, &params).map_err(|e| anyhow::anyhow!("preparing {action}: {e}"))
        };
        let key = call("RANDOM_BYTES", json!({"length": 32, "seed": 1}))?["bytes"].clone();
        let key = key.as_str().context("RANDOM_BYTES gave no bytes")?.to_owned();
        let keypair = call("GENERATE_KEYPAIR", json!({"seed": key}))?;
        let signature =
            call("SIGN", json!({"privateKey": keypair["privateKey"], "message": text(1024)}))?["signature"].clone();
        let hmac = call("HMAC_SIGN", json!({"key": "secret", "data": text(1024)}))?["signature"].clone();
        let sealed = call("ENCRYPT", json!({"key": key, "plaintext": text(1024)}))?;
        let password_hash = call("PASSWORD_HASH", json!({"password": PASSWORD}))?["hash"].clone();
        let big = call(
            "RESIZE_IMAGE",
            json!({"imageData": SEED_PNG, "width": 480, "height": 360, "preserveAspectRatio": false, "resampling": "catmullrom"}),
        )?;
        let photo = call("CONVERT_FORMAT", json!({"imageData": big["imageData"], "format": "jpeg", "quality": 85}))?;
        let photo = photo["imageData"].as_str().context("CONVERT_FORMAT gave no image")?.to_owned();
        Ok(Inputs { key, keypair, signature, hmac, sealed, password_hash, photo })
    }

    /// The action's name for the report and the validated parameters of its representative
    /// request.
    fn case(&self, bank: &BuiltinBank, action: &str) -> anyhow::Result<(&'static str, Value)> {
        let Some(params) = self.params(action) else {
            bail!("`atmo bench builtins` has no representative input for {action}: add one in bench/builtins.rs");
        };
        let params = validated(bank, action, params)?;
        // A report line names its scenario with a `&'static str`; the few action ids measured
        // live for the rest of the process anyway.
        Ok((Box::leak(action.to_owned().into_boxed_str()), params))
    }

    /// The representative request of every built-in action, by action id.
    fn params(&self, action: &str) -> Option<Value> {
        let photo = &self.photo;
        let params = match action {
            // computation
            "MATRIX_MULTIPLY" => json!({"matrixA": matrix(32), "matrixB": matrix(32)}),
            "PRIME_FACTORIZATION" => json!({"number": 600_851_475_143u64}),
            "FOURIER_TRANSFORM" => json!({"signal": wave(1024), "windowFunction": "hanning"}),
            "MONTE_CARLO_PI" => json!({"iterations": 100_000, "seed": 7}),
            "SOLVE_LINEAR_SYSTEM" => {
                json!({"coefficientMatrix": dominant(32), "constantVector": vec![1.0; 32], "method": "lu"})
            }
            "NUMERICAL_INTEGRATION" => {
                json!({"function": "x^2 + sin(x)", "lowerBound": 0, "upperBound": 3.0, "subdivisions": 1000})
            }
            // crypto
            "HASH" => json!({"data": text(1024)}),
            "HMAC_SIGN" => json!({"key": "secret", "data": text(1024)}),
            "HMAC_VERIFY" => json!({"key": "secret", "data": text(1024), "signature": self.hmac}),
            "ENCRYPT" => json!({"key": self.key, "plaintext": text(1024)}),
            "DECRYPT" => {
                json!({"key": self.key, "ciphertext": self.sealed["ciphertext"], "nonce": self.sealed["nonce"]})
            }
            "PASSWORD_HASH" => json!({"password": PASSWORD}),
            "PASSWORD_VERIFY" => json!({"password": PASSWORD, "hash": self.password_hash}),
            "GENERATE_KEYPAIR" => json!({}),
            "SIGN" => json!({"privateKey": self.keypair["privateKey"], "message": text(1024)}),
            "VERIFY" => {
                json!({"publicKey": self.keypair["publicKey"], "message": text(1024), "signature": self.signature})
            }
            "RANDOM_BYTES" => json!({"length": 32}),
            // data-processing
            "CSV_PARSE" => json!({"csvData": csv(100)}),
            "JSON_TRANSFORM" => json!({"data": {"users": users(50)}, "transformations": [
                {"path": "$.users[*].name", "op": "rename", "to": "fullName"},
                {"path": "$.users[*].fullName", "op": "map", "function": "uppercase"},
                {"path": "$.users[?@.age > 40]", "op": "select"}
            ]}),
            "DATA_AGGREGATION" => json!({"dataset": sales(200), "groupBy": ["region"],
                       "aggregations": {"sales": ["sum", "mean", "max", "p90"]},
                       "filters": [{"field": "status", "op": "ne", "value": "void"}]}),
            "DATA_VALIDATION" => json!({"data": users(100), "schema": {"type": "object", "required": ["id", "name"],
                       "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "age": {"type": "integer"}}},
                       "businessRules": [{"field": "age", "rule": "min", "value": 18}, {"field": "id", "rule": "unique"}]}),
            "TIME_SERIES_ANALYSIS" => json!({"timeSeries": series(240), "timeColumn": "t", "valueColumn": "v"}),
            "DATA_DEDUPLICATION" => json!({"dataset": users(100), "matchFields": ["name"], "threshold": 0.8}),
            // geospatial
            "DISTANCE_CALCULATION" => {
                json!({"point1": {"lat": 48.8566, "lng": 2.3522}, "point2": {"lat": 40.7128, "lng": -74.006}, "method": "vincenty"})
            }
            "POLYGON_CONTAINS_POINT" => json!({"point": {"lat": 0.2, "lng": 0.3}, "polygon": octagon()}),
            "BUFFER_GEOMETRY" => {
                json!({"geometry": {"type": "Point", "coordinates": [2.35, 48.85]}, "distance": 1, "unit": "km", "segments": 16})
            }
            "SPATIAL_INTERSECTION" => json!({"geometry1": square(0.0, 0.0, 2.0), "geometry2": square(1.0, 1.0, 2.0)}),
            "COORDINATE_TRANSFORMATION" => {
                json!({"coordinates": coordinates(100), "fromProjection": "EPSG:4326", "toProjection": "EPSG:32631"})
            }
            "GENERATE_H3_CELLS" => json!({"geometry": square(0.0, 0.0, 0.1), "resolution": 8}),
            // image-processing
            "RESIZE_IMAGE" => json!({"imageData": photo, "width": 240, "height": 240}),
            "APPLY_FILTER" => json!({"imageData": photo, "filter": "blur"}),
            "CROP_IMAGE" => json!({"imageData": photo, "x": 40, "y": 30, "width": 320, "height": 240}),
            "ROTATE_IMAGE" => json!({"imageData": photo, "angle": 90}),
            "CONVERT_FORMAT" => json!({"imageData": photo, "format": "png"}),
            "THUMBNAIL" => json!({"imageData": photo, "size": 128}),
            // simulation
            "OPTION_PRICING" => {
                json!({"spot": 100, "strike": 100, "rate": 0.05, "volatility": 0.2, "maturity": 1, "paths": 20_000, "seed": 1})
            }
            "RANDOM_WALK" => json!({"steps": 1000, "walkers": 10, "seed": 1}),
            "N_BODY" => json!({"bodies": bodies(), "dt": 0.01, "steps": 1000}),
            "GAME_OF_LIFE" => json!({"width": 32, "height": 32, "density": 0.3, "generations": 20, "seed": 1}),
            "SIR_MODEL" => json!({"population": 10_000, "initialInfected": 1, "beta": 0.3, "gamma": 0.1, "days": 100}),
            "QUEUE_SIMULATION" => json!({"arrivalRate": 0.9, "serviceRate": 1, "customers": 1000, "seed": 5}),
            _ => return None,
        };
        Some(params)
    }
}

/// `params` with the manifest's defaults, as the engine hands them to the handler.
fn validated(bank: &BuiltinBank, action: &str, params: Value) -> anyhow::Result<Value> {
    let def = bank.manifest.action(action).with_context(|| format!("no action {action}"))?;
    def.validate(params).map_err(|e| anyhow::anyhow!("the input of {action} is invalid: {e}"))
}

fn text(len: usize) -> String {
    "The quick brown fox jumps over the lazy dog. ".chars().cycle().take(len).collect()
}

fn matrix(n: usize) -> Value {
    json!((0..n).map(|i| (0..n).map(|j| ((i * 7 + j * 3) % 11) as f64 - 5.0).collect::<Vec<_>>()).collect::<Vec<_>>())
}

/// A diagonally dominant matrix, so that every method converges.
fn dominant(n: usize) -> Value {
    json!(
        (0..n)
            .map(|i| (0..n)
                .map(|j| if i == j { 2.0 * n as f64 } else { ((i + j) % 5) as f64 * 0.5 })
                .collect::<Vec<_>>())
            .collect::<Vec<_>>()
    )
}

fn wave(n: usize) -> Value {
    json!((0..n).map(|i| (i as f64 * 0.1).sin() + 0.5 * (i as f64 * 0.37).cos()).collect::<Vec<_>>())
}

fn csv(rows: usize) -> String {
    let mut s = String::from("id,name,city,amount\n");
    for i in 0..rows {
        s.push_str(&format!("{i},\"Customer {i}\",City {},{}.{:02}\n", i % 13, i * 17 % 1000, i % 100));
    }
    s
}

fn users(n: usize) -> Value {
    const FIRST: [&str; 8] = ["Jon", "John", "Mary", "Marie", "Ann", "Anne", "Robert", "Rupert"];
    const LAST: [&str; 5] = ["Smith", "Smyth", "Jones", "Brown", "Braun"];
    json!(
        (0..n)
            .map(|i| json!({"id": i, "name": format!("{} {}", FIRST[i % 8], LAST[i % 5]), "age": 15 + i * 7 % 60}))
            .collect::<Vec<_>>()
    )
}

fn sales(n: usize) -> Value {
    const REGIONS: [&str; 4] = ["north", "south", "east", "west"];
    json!(
        (0..n)
            .map(|i| json!({"region": REGIONS[i % 4], "sales": (i * 37 % 500) as f64, "status": if i % 10 == 0 { "void" } else { "ok" }}))
            .collect::<Vec<_>>()
    )
}

fn series(n: usize) -> Value {
    json!(
        (0..n)
            .map(|t| json!({"t": t, "v": 0.05 * t as f64 + (2.0 * std::f64::consts::PI * t as f64 / 12.0).sin()}))
            .collect::<Vec<_>>()
    )
}

fn octagon() -> Value {
    json!(
        (0..8)
            .map(|k| {
                let a = k as f64 * std::f64::consts::PI / 4.0;
                json!({"lat": a.sin(), "lng": a.cos()})
            })
            .collect::<Vec<_>>()
    )
}

fn square(x0: f64, y0: f64, side: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side], [x0, y0]]]})
}

fn coordinates(n: usize) -> Value {
    json!((0..n).map(|i| [0.5 + (i % 10) as f64 * 0.5, 40.0 + (i / 10) as f64 * 0.5]).collect::<Vec<_>>())
}

fn bodies() -> Value {
    json!([
        {"mass": 1.0, "position": [0, 0, 0], "velocity": [0, 0, 0]},
        {"mass": 0.001, "position": [1, 0, 0], "velocity": [0, 1, 0]},
        {"mass": 0.0001, "position": [0, 1.5, 0], "velocity": [-0.8, 0, 0]}
    ])
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{BenchCommand, Cli, Command};

    #[test]
    fn every_builtin_action_has_a_valid_representative_input() -> anyhow::Result<()> {
        let banks = atmo_builtins::banks();
        let inputs = Inputs::build(&banks)?;
        for b in &banks {
            for action in b.manifest.action_ids() {
                let (name, _) = inputs.case(b, action)?;
                assert_eq!(name, action);
            }
        }
        Ok(())
    }

    #[test]
    fn requests_scale_with_the_cost_within_bounds() {
        let plan = Plan {
            runs: 1,
            threads: 2,
            budget: Duration::from_millis(100),
            calibrate: Duration::from_millis(10),
            max_requests: 10_000,
        };
        assert_eq!(plan.requests(Duration::from_millis(1)), 200);
        assert_eq!(plan.requests(Duration::from_secs(1)), 16);
        assert_eq!(plan.requests(Duration::from_nanos(1)), 10_000);
    }

    #[test]
    fn text_lines_align_past_the_report_column() -> anyhow::Result<()> {
        let mut out = Vec::new();
        write(&Line::new("HASH", "requests/s", 1000.0, 2000.0, 1), &mut out, false, 25)?;
        write(&Line::new("COORDINATE_TRANSFORMATION", "requests/s", 10.0, 20.0, 1), &mut out, false, 25)?;
        let text = String::from_utf8(out)?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].find('('), lines[1].find('('));
        assert!(lines[0].starts_with("HASH                      "), "{}", lines[0]);
        assert!(lines[0].ends_with("(baseline 2,000 requests/s, ratio 0.500)"), "{}", lines[0]);
        Ok(())
    }

    #[test]
    fn the_subcommand_parses() -> anyhow::Result<()> {
        let cli =
            Cli::try_parse_from(["atmo", "bench", "builtins", "--quick", "--json", "--action", "HASH,THUMBNAIL"])?;
        let Command::Bench(BenchCommand::Builtins(args)) = cli.command else {
            anyhow::bail!("parsed as another command");
        };
        assert!(args.runs.quick && args.json);
        assert_eq!(args.action, ["HASH", "THUMBNAIL"]);
        Ok(())
    }
}
