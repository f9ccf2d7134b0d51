//! `atmo bench http`: the service's HTTP API on loopback against the engine called in-process.
//!
//! The server ([`atmo_server::Server`]) runs on this process's tokio runtime with the
//! benchmark's bank (2 worker threads); the clients are OS threads with keep-alive connections
//! (`ureq`). The baseline is the same engine driven in-process, in the same run.
//!
//! | scenario | value | baseline | target |
//! | --- | --- | --- | --- |
//! | `http-submit` | single submits/s (POST /v1/requests) from 64 connections | in-process `submit` from 64 tasks | ≥ 20,000/s |
//! | `http-batch` | requests/s submitted in batches of 1,000 (POST /v1/requests/batch), 4 connections | in-process `submit_many`, 4 tasks | ≥ 200,000/s |
//! | `http-roundtrip` | p50 (and p99) µs of submit → result, one at a time (POST /v1/requests?wait=10s) | in-process `submit_and_wait` | printed |

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use atmo_server::{Server, ServerConfig};
use atmo_workers::{SubmitRequest, WorkerManager};
use serde_json::{Value, json};

use super::engine::{self, Setup};
use super::inproc::{interleaved, per_second};
use super::report::Line;
use super::stats::{latency_medians, median};
use super::work;
use crate::cli::{HttpArgs, HttpScenario};

/// Sizes of one run of each scenario.
#[derive(Clone, Debug)]
struct Plan {
    runs: u32,
    connections: usize,
    batch_connections: usize,
    batch: usize,
    setup: Setup,
    submit_requests: usize,
    batch_requests: usize,
    latency_warmup: usize,
    latency_samples: usize,
}

impl Plan {
    fn new(args: &HttpArgs) -> Self {
        let (submit_requests, batch_requests, latency_warmup, latency_samples) =
            if args.runs.quick { (10_000, 50_000, 100, 1_000) } else { (100_000, 500_000, 1_000, 10_000) };
        Plan {
            runs: args.runs.count(),
            connections: args.connections as usize,
            batch_connections: 4,
            batch: 1000,
            setup: Setup {
                bank_capacity: args.load.bank_capacity as usize,
                retain_all: false,
                intake_only: false,
                sweep_every: None,
            },
            submit_requests,
            batch_requests,
            latency_warmup,
            latency_samples,
        }
    }
}

/// Runs the selected scenarios, printing each line as soon as it is measured.
///
/// # Errors
/// A scenario that fails (an HTTP error, a wrong result), or stdout closing.
pub(crate) fn run(args: &HttpArgs) -> anyhow::Result<()> {
    let plan = Plan::new(args);
    let runtime = super::runtime(args.load.runtime_threads as usize)?;
    let scenarios: &[HttpScenario] = if args.scenario.is_empty() { &HttpScenario::ALL } else { &args.scenario };
    let mut out = std::io::stdout().lock();
    for &scenario in HttpScenario::ALL.iter().filter(|s| scenarios.contains(s)) {
        let line = match scenario {
            HttpScenario::Submit => submit(&runtime, &plan)?,
            HttpScenario::Batch => batch(&runtime, &plan)?,
            HttpScenario::Roundtrip => roundtrip(&runtime, &plan)?,
        };
        line.write(&mut out, args.json)?;
    }
    out.flush()?;
    Ok(())
}

/// An engine with the benchmark's bank and the HTTP server in front of it, on a free port.
struct Service {
    manager: WorkerManager,
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start_service(setup: Setup) -> anyhow::Result<Service> {
    let manager = engine::start(setup).await?;
    let config = ServerConfig { max_body_bytes: 64 * 1024 * 1024, ..ServerConfig::default() };
    let server = Server::new(manager.clone(), config).context("cannot start the HTTP server")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("cannot listen on loopback")?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    Ok(Service { manager, url, stop, task })
}

async fn stop_service(s: Service) -> anyhow::Result<()> {
    let _ = s.stop.send(());
    s.task.await.context("the server task panicked")?.context("the server failed")?;
    engine::stop(s.manager).await
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// POSTs `body` and returns the JSON answer, failing on any status but 201.
fn post(agent: &ureq::Agent, url: &str, body: &str) -> anyhow::Result<Value> {
    let mut res = agent.post(url).header("Content-Type", "application/json").send(body)?;
    let status = res.status().as_u16();
    let text = res.body_mut().with_config().limit(256 * 1024 * 1024).read_to_string()?;
    if status != 201 {
        bail!("POST {url}: HTTP {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// `threads` client threads each take the next unit of work until `units` are done.
fn drive(
    threads: usize,
    units: usize,
    f: impl Fn(&ureq::Agent, usize) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<Duration> {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let agent = agent();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= units {
                            return anyhow::Ok(());
                        }
                        f(&agent, k)?;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        }
        anyhow::Ok(())
    })?;
    Ok(start.elapsed())
}

fn submit(rt: &tokio::runtime::Runtime, plan: &Plan) -> anyhow::Result<Line> {
    let n = plan.submit_requests;
    let bodies: Vec<String> =
        (0..n).map(|i| json!({"taskId": "add", "parameters": work::params(i)}).to_string()).collect();
    let http_run = |n: usize| {
        let service = rt.block_on(start_service(plan.setup))?;
        let url = format!("{}/v1/requests", service.url);
        let elapsed = drive(plan.connections, n, |agent, i| post(agent, &url, &bodies[i]).map(drop));
        rt.block_on(stop_service(service))?;
        anyhow::Ok(per_second(n, elapsed?))
    };
    let inproc_run = |n: usize| {
        rt.block_on(async { engine::submit_rate(engine::start(plan.setup).await?, n, plan.connections).await })
    };
    http_run(n / 10)?;
    inproc_run(n / 10)?;
    let (e, b) = interleaved(plan.runs, || http_run(n), || inproc_run(n))?;
    Ok(Line::new(HttpScenario::Submit.name(), "requests/s", median(&e), median(&b), plan.runs))
}

fn batch(rt: &tokio::runtime::Runtime, plan: &Plan) -> anyhow::Result<Line> {
    let n = plan.batch_requests;
    let batches = n.div_ceil(plan.batch);
    let size = plan.batch;
    // The bodies are built before the clock starts: the server is measured, not the client's
    // JSON encoder (which shares the machine's cores with it).
    let bodies: Vec<String> = (0..batches)
        .map(|k| {
            let requests: Vec<Value> =
                (k * size..(k + 1) * size).map(|i| json!({"taskId": "add", "parameters": work::params(i)})).collect();
            json!({"requests": requests}).to_string()
        })
        .collect();
    let http_run = || {
        let service = rt.block_on(start_service(plan.setup))?;
        let url = format!("{}/v1/requests/batch", service.url);
        let elapsed = drive(plan.batch_connections, batches, |agent, k| {
            let reply = post(agent, &url, &bodies[k])?;
            let got = reply["requestIds"].as_array().map_or(0, Vec::len);
            if got != size {
                bail!("a batch of {size} returned {got} ids");
            }
            Ok(())
        });
        rt.block_on(stop_service(service))?;
        anyhow::Ok(per_second(batches * size, elapsed?))
    };
    let inproc_run = || {
        rt.block_on(async {
            let manager = engine::start(plan.setup).await?;
            let next = Arc::new(AtomicUsize::new(0));
            let start = Instant::now();
            let tasks: Vec<_> = (0..plan.batch_connections)
                .map(|_| {
                    let (m, next) = (manager.clone(), next.clone());
                    tokio::spawn(async move {
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= batches {
                                return anyhow::Ok(());
                            }
                            let requests = (k * size..(k + 1) * size)
                                .map(|i| SubmitRequest::new("add", work::params(i)))
                                .collect();
                            m.submit_many(requests).await?;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.context("a submitter panicked")??;
            }
            let elapsed = start.elapsed();
            engine::stop(manager).await?;
            anyhow::Ok(per_second(batches * size, elapsed))
        })
    };
    let (e, b) = interleaved(plan.runs, http_run, inproc_run)?;
    Ok(Line::new(HttpScenario::Batch.name(), "requests/s", median(&e), median(&b), plan.runs))
}

fn roundtrip(rt: &tokio::runtime::Runtime, plan: &Plan) -> anyhow::Result<Line> {
    let (warmup, samples) = (plan.latency_warmup, plan.latency_samples);
    let http_run = || {
        let service = rt.block_on(start_service(plan.setup))?;
        let url = format!("{}/v1/requests?wait=10s", service.url);
        let agent = agent();
        let mut times = Vec::with_capacity(samples);
        let measured = (|| {
            for i in 0..warmup + samples {
                let body = json!({"taskId": "add", "parameters": work::params(i)}).to_string();
                let start = Instant::now();
                let reply = post(&agent, &url, &body)?;
                let elapsed = start.elapsed();
                work::check(i, reply.pointer("/result/payload"))?;
                if i >= warmup {
                    times.push(elapsed);
                }
            }
            anyhow::Ok(())
        })();
        rt.block_on(stop_service(service))?;
        measured?;
        anyhow::Ok(times)
    };
    let inproc_run =
        || rt.block_on(async { engine::latency_times(engine::start(plan.setup).await?, warmup, samples).await });
    let (e, b) = interleaved(plan.runs, http_run, inproc_run)?;
    let ((e50, e99), (b50, b99)) = (latency_medians(e), latency_medians(b));
    Ok(Line::new(HttpScenario::Roundtrip.name(), "µs", e50, b50, plan.runs).with_p99(e99, b99))
}
