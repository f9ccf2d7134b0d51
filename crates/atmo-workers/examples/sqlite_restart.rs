//! The durable SQLite store across a restart: requests accepted by one engine survive it, and
//! the next engine on the same file runs them (requests that were running when a process
//! died are rescued the same way, their attempt counted and their history saying why).
//!
//! Run with `cargo run -p atmo-workers --example sqlite_restart`.

use std::time::Duration;

use atmo_sqlite::{SqliteOptions, SqliteStore};
use atmo_workers::mock::MockWorker;
use atmo_workers::{BankSpec, RequestQuery, RequestStatus, SubmitOptions, WorkerManager};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("requests.db");

    // First run: accept five requests with no bank to run them, then stop (a durable store
    // keeps what is queued for the next start).
    let ids = {
        let store = SqliteStore::open(&path, SqliteOptions::default())?;
        let manager = WorkerManager::builder().name("first").store(store).start().await?;
        // The task is known from its manifest even before a bank runs it.
        manager.register_manifest(MockWorker::manifest("echo", &["ECHO"]));
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(manager.submit("ECHO", json!({"n": i}), SubmitOptions::new()).await?);
        }
        println!("first run accepted {} requests", ids.len());
        manager.shutdown(Duration::ZERO).await?;
        ids
    };

    // Second run on the same file: the requests are still there and a bank runs them.
    let store = SqliteStore::open(&path, SqliteOptions::default())?;
    let manager = WorkerManager::builder().name("second").store(store).start().await?;
    let mock = MockWorker::new();
    manager.initialize_worker_bank(
        BankSpec::new("echo", MockWorker::manifest("echo", &["ECHO"])).handlers(mock.handlers(&["ECHO"])),
    )?;
    for id in &ids {
        let r = manager.wait_timeout(*id, Duration::from_secs(10)).await?;
        assert_eq!(r.status, RequestStatus::Completed);
    }
    let page = manager.query(RequestQuery::new().status([RequestStatus::Completed])).await?;
    println!("second run completed {} requests from the first run", page.total);
    manager.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}
