//! A background bank's handlers run on threads of the lowest CPU priority; other banks' at
//! the normal one.

use atmo_workers::mock::MockWorker;
use atmo_workers::{BankSpec, Handler, Handlers, SubmitRequest, TaskError, WorkerManager};
use serde_json::json;

/// The scheduling policy of the calling thread, from `/proc/thread-self/stat` (field 41:
/// 0 `SCHED_OTHER`, 3 `SCHED_BATCH`, 5 `SCHED_IDLE`).
fn policy_of_this_thread() -> Result<u64, TaskError> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").map_err(|e| TaskError::invalid(e.to_string()))?;
    // Fields after the command name (in parentheses, which may hold spaces) start at field 3.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| TaskError::invalid("no ) in stat"))?;
    let field = after.split_whitespace().nth(41 - 3).ok_or_else(|| TaskError::invalid("stat too short"))?;
    field.parse().map_err(|_| TaskError::invalid(format!("policy {field}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_banks_threads_run_at_idle_priority() -> anyhow::Result<()> {
    let manager = WorkerManager::builder().name("background").start().await?;
    let handler = || Handler::sync(|_, _| Ok(json!({ "policy": policy_of_this_thread()? })));
    manager.initialize_worker_bank(
        BankSpec::new("long", MockWorker::manifest("long", &["long"]))
            .workers(2)
            .background(true)
            .handlers(Handlers::new().on("long", handler())),
    )?;
    manager.initialize_worker_bank(
        BankSpec::new("short", MockWorker::manifest("short", &["short"]))
            .workers(2)
            .handlers(Handlers::new().on("short", handler())),
    )?;
    for (task, policy) in [("long", 5), ("short", 0)] {
        let requests = (0..20).map(|_| SubmitRequest::new(task, json!({}))).collect();
        for r in manager.submit_many_and_wait(requests).await? {
            assert!(r.success, "{r:?}");
            assert_eq!(r.payload.as_ref().map(|p| p["policy"].clone()), Some(json!(policy)), "{task}: {r:?}");
        }
    }
    manager.shutdown(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
