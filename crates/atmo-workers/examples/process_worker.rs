//! A process worker in Rust: the same binary is the engine and, started with `--worker`, a
//! worker process speaking the protocol on stdin/stdout through `WorkerResponder`. The engine
//! starts two of them as a process bank, checks their `worker-ready`, and sends them requests.
//!
//! Run with `cargo run -p atmo-workers --example process_worker`.

use std::time::Duration;

use atmo_workers::manifest::{ActionDefinition, CommandSpec, Manifest, ParamType, ParameterSpec};
use atmo_workers::responder::WorkerResponder;
use atmo_workers::{BankSpec, Handler, SubmitRequest, WorkerManager};
use serde_json::json;

fn manifest() -> anyhow::Result<Manifest> {
    Ok(Manifest::builder("strings")
        .version("1.0.0")
        .max_concurrent_tasks(4)
        .action(ActionDefinition::new("REVERSE").param(ParameterSpec::required("text", ParamType::String)))
        .build()?)
}

/// The worker side: a few lines with `WorkerResponder`.
fn worker() -> anyhow::Result<()> {
    WorkerResponder::for_manifest(&manifest()?)
        .on(
            "REVERSE",
            Handler::sync(|ctx, p| {
                // stdout belongs to the protocol; stderr is the worker's log.
                eprintln!("reversing for request {}", ctx.request_id);
                Ok(json!({"reversed": p["text"].as_str().unwrap_or("").chars().rev().collect::<String>()}))
            }),
        )
        .run()?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--worker") {
        return worker();
    }
    let manager = WorkerManager::builder().name("processes").start().await?;
    let me = std::env::current_exe()?;
    let command = CommandSpec {
        program: me.to_string_lossy().into_owned(),
        args: vec!["--worker".into()],
        env: Default::default(),
        working_dir: None,
    };
    manager.initialize_process_bank(BankSpec::new("strings", manifest()?).workers(2).command(command)).await?;

    let requests =
        ["stressed", "drawer", "level"].iter().map(|t| SubmitRequest::new("REVERSE", json!({"text": t}))).collect();
    for result in manager.submit_many_and_wait(requests).await? {
        println!("{}", result.payload.as_deref().map(|p| p["reversed"].to_string()).unwrap_or_default());
    }
    for w in manager.workers() {
        println!("worker {}: {} completed", w.worker_id, w.messages_completed);
    }
    manager.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
