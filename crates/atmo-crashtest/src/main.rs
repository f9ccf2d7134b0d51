//! `atmo-crash-child`: the process the crash test kills.
//!
//! `atmo-crash-child <store-file> [first-key]` opens the durable store at `<store-file>` with
//! the default options (`synchronous=FULL`), starts an engine with one bank of two threads
//! whose handler sleeps 0–2 ms and answers `{"n": params.n}`, then submits `{"n": k}` with
//! idempotency key `k` for `k = first-key, first-key + 1, ...`. After each `submit` returns
//! (the request is committed) it prints `ACK <k> <request-id>` on stdout and flushes, so every
//! line the test reads is a request the store promised to keep. The first request its bank runs
//! is held (the handler waits until it is cancelled) and announced with `HELD <n>`, so that a
//! kill after that line always finds a request to rescue. It runs until it is killed.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use atmo_sqlite::{SqliteOptions, SqliteStore};
use atmo_workers::{ActionDefinition, BankSpec, Handler, Handlers, Manifest, StoreError, SubmitOptions, WorkerManager};
use serde_json::json;

/// The task the child submits and its bank runs.
const TASK: &str = "echo";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atmo-crash-child: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let path = args.next().context("usage: atmo-crash-child <store-file> [first-key]")?;
    let first: u64 = match args.next() {
        Some(s) => s.to_str().context("first-key is not UTF-8")?.parse().context("first-key is not a number")?,
        None => 0,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let store = open(std::path::Path::new(&path))?;
        let manager = WorkerManager::builder().name("crash-child").store(store).start().await?;
        let manifest = Manifest::builder("crash").action(ActionDefinition::new(TASK).lenient()).build()?;
        let held = Arc::new(AtomicBool::new(false));
        let handler = Handler::sync(move |ctx, params| {
            if !held.swap(true, Ordering::AcqRel) {
                // A failed write shows as a child that never holds anything: the test fails.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "HELD {}", params["n"]).and_then(|()| out.flush());
                drop(out);
                // Held until the kill (or a cancellation) ends it.
                while !ctx.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                ctx.cancel.check()?;
            }
            std::thread::sleep(Duration::from_micros(fastrand::u64(0..=2_000)));
            Ok(json!({ "n": params["n"] }))
        });
        manager.initialize_worker_bank(
            BankSpec::new("crash-bank", manifest).workers(2).handlers(Handlers::new().on(TASK, handler)),
        )?;
        // Locked per line: the handler prints too.
        let mut out = std::io::stdout();
        for k in first.. {
            let id =
                manager.submit(TASK, json!({ "n": k }), SubmitOptions::new().idempotency_key(k.to_string())).await?;
            // Printed only after `submit` returned: the line is the store's promise.
            writeln!(out, "ACK {k} {id}")?;
            out.flush()?;
        }
        anyhow::Ok(())
    })
}

/// Opens the store, retrying while the previous owner (the test's engine, being dropped) still
/// holds the file's lock.
fn open(path: &std::path::Path) -> anyhow::Result<SqliteStore> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match SqliteStore::open(path, SqliteOptions::default()) {
            Err(StoreError::Locked(_)) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            r => return r.with_context(|| format!("cannot open {}", path.display())),
        }
    }
}
