//! The crash test of the durable store: a child process submits requests to a SQLite store in
//! a loop while its bank processes them, and is killed with SIGKILL at a random moment. After
//! each kill the test reopens the file and checks the durability contract: every request the
//! child acknowledged is there exactly once, what was running is rescued, and running the
//! engine to completion finishes every request once with the right result.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use atmo_sqlite::{SqliteOptions, SqliteStore};
use atmo_workers::{
    ActionDefinition, BankSpec, Handler, Handlers, Manifest, Request, RequestId, RequestQuery, RequestStatus, Store,
    WorkerManager, query,
};
use serde_json::json;

const ROUNDS: usize = 5;
/// The child's task (see `src/main.rs`).
const TASK: &str = "echo";

/// What one round saw, for the test's output.
#[derive(Debug)]
struct RoundReport {
    stored: usize,
    rescued: usize,
}

#[test]
fn acknowledged_requests_survive_sigkill() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("crash.db");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // Every ACK of every round so far: key → id. Later rounds must still hold earlier ones.
    let mut acked: HashMap<u64, RequestId> = HashMap::new();
    let mut next_key = 0;
    let mut total_rescued = 0;
    for round in 0..ROUNDS {
        let acks = run_child(&path, next_key)?;
        let this_round = acks.len();
        for (k, id) in acks {
            // The first key of a round may have been committed but not acknowledged last
            // round: the idempotency key must lead the child back to the same request.
            if let Some(previous) = acked.insert(k, id) {
                ensure!(previous == id, "key {k} was acknowledged as {previous} and later as {id}");
            }
            next_key = next_key.max(k + 1);
        }
        let report = runtime.block_on(check(&path, &acked))?;
        // The child held a request when it was killed (see `run_child`).
        ensure!(report.rescued > 0, "round {round}: nothing was running when the child was killed");
        total_rescued += report.rescued;
        println!(
            "round {round}: {this_round} acked ({} in all), {} stored, {} rescued",
            acked.len(),
            report.stored,
            report.rescued
        );
    }
    println!("{ROUNDS} rounds: {} acked, {total_rescued} rescued", acked.len());
    ensure!(total_rescued >= ROUNDS, "{total_rescued} rescued in {ROUNDS} rounds");
    Ok(())
}

/// Runs the child from key `first`, kills it 50–400 ms after its first ACK and the start of
/// the request it holds (so the kill always lands while a request runs), and returns the ACKs
/// it printed.
fn run_child(path: &Path, first: u64) -> anyhow::Result<Vec<(u64, RequestId)>> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atmo-crash-child"))
        .arg(path)
        .arg(first.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start atmo-crash-child")?;
    let stdout = child.stdout.take().context("the child has no stdout")?;
    let (started, ready) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        let mut held = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // A line cut short by the kill has no complete id and does not parse: it was never
            // a complete acknowledgement.
            let was_ready = held && !acks.is_empty();
            if let Some(ack) = parse_ack(&line) {
                acks.push(ack);
            } else if line.starts_with("HELD ") {
                held = true;
            }
            if !was_ready && held && !acks.is_empty() {
                let _ = started.send(());
            }
        }
        acks
    });
    // The kill window starts once the child acknowledged a request and holds one, so that a
    // slow start-up does not eat it and the kill always finds a request to rescue.
    let waited = ready.recv_timeout(Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(fastrand::u64(50..=400)));
    child.kill().context("cannot kill the child")?;
    let status = child.wait()?;
    let acks = reader.join().map_err(|_| anyhow!("the stdout reader panicked"))?;
    ensure!(waited.is_ok(), "the child acknowledged or held nothing before it ended ({status})");
    Ok(acks)
}

fn parse_ack(line: &str) -> Option<(u64, RequestId)> {
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("ACK"), Some(k), Some(id), None) => Some((k.parse().ok()?, id.parse().ok()?)),
        _ => None,
    }
}

/// Reopens the store the child died holding and checks the contract; leaves every request
/// completed.
async fn check(path: &Path, acked: &HashMap<u64, RequestId>) -> anyhow::Result<RoundReport> {
    // The child's lock went with it.
    let store = SqliteStore::open(path, SqliteOptions::default())?;

    // ----- as the crash left it -----
    let before = all_requests(&store).await?;
    let by_key = index_by_key(&before)?;
    ensure!(before.len() >= acked.len(), "{} stored, fewer than the {} acknowledged", before.len(), acked.len());
    for (k, id) in acked {
        let stored = store.get(*id).await?.with_context(|| format!("acknowledged request {k} ({id}) is lost"))?;
        ensure!(by_key.get(k) == Some(id), "key {k}: acknowledged {id}, stored {:?}", by_key.get(k));
        ensure!(*stored.parameters == json!({ "n": k }), "request {id} has parameters {}", stored.parameters);
    }
    let running: HashMap<RequestId, u32> = before
        .iter()
        .filter(|r| matches!(r.status, RequestStatus::Assigned | RequestStatus::Processing))
        .map(|r| (r.request_id, r.attempts))
        .collect();

    // ----- after the engine starts (no bank yet, so nothing is claimed again) -----
    let manager = WorkerManager::builder().name("crash-check").store(store).start().await?;
    let after = all_requests(manager.store().as_ref()).await?;
    ensure!(after.len() == before.len(), "{} requests before the engine started, {} after", before.len(), after.len());
    for r in &after {
        ensure!(
            !matches!(r.status, RequestStatus::Assigned | RequestStatus::Processing),
            "request {} is still {:?} after the restart",
            r.request_id,
            r.status
        );
        let Some(&attempts) = running.get(&r.request_id) else { continue };
        ensure!(r.status == RequestStatus::Pending, "rescued request {} is {:?}", r.request_id, r.status);
        ensure!(r.attempts == attempts, "rescued request {} had {attempts} attempts, now {}", r.request_id, r.attempts);
        let entry = r.history.last().context("a rescued request without history")?;
        ensure!(
            matches!(entry.from, Some(RequestStatus::Assigned | RequestStatus::Processing))
                && entry.to == RequestStatus::Pending
                && !entry.reason.trim().is_empty(),
            "rescued request {} ends its history with {entry:?}",
            r.request_id
        );
    }

    // ----- run to completion -----
    let manifest = Manifest::builder("crash").action(ActionDefinition::new(TASK).lenient()).build()?;
    let handler = Handler::sync(|_ctx, params| Ok(json!({ "n": params["n"] })));
    manager.initialize_worker_bank(
        BankSpec::new("crash-bank", manifest).workers(2).handlers(Handlers::new().on(TASK, handler)),
    )?;
    for (k, id) in &by_key {
        // A hang guard, not a timing assertion: a request that never finishes fails the test.
        let result = manager.wait_timeout(*id, Duration::from_secs(120)).await?;
        ensure!(result.status == RequestStatus::Completed, "request {k} ({id}) ended {:?}", result.status);
        ensure!(result.payload.as_deref() == Some(&json!({ "n": k })), "request {k} answered {:?}", result.payload);
        let request = manager.get_request(*id).await?;
        let completions = request.history.iter().filter(|h| h.to == RequestStatus::Completed).count();
        ensure!(completions == 1, "request {k} ({id}) completed {completions} times");
    }
    manager.shutdown(Duration::from_secs(5)).await?;
    Ok(RoundReport { stored: before.len(), rescued: running.len() })
}

/// Every request in the store, page by page.
async fn all_requests(store: &dyn Store) -> anyhow::Result<Vec<Request>> {
    let mut all = Vec::new();
    let mut query = RequestQuery::new().limit(query::MAX_PAGE_SIZE);
    loop {
        let page = store.query(query.clone()).await?;
        all.extend(page.requests);
        match page.next_cursor {
            Some(cursor) => query = query.after(cursor),
            None => break,
        }
    }
    let unique: HashSet<RequestId> = all.iter().map(|r| r.request_id).collect();
    ensure!(unique.len() == all.len(), "a query returned a request twice");
    Ok(all)
}

/// Maps each request's idempotency key (the child's `k`) to its id, failing when a key is
/// missing or held twice.
fn index_by_key(requests: &[Request]) -> anyhow::Result<HashMap<u64, RequestId>> {
    let mut by_key = HashMap::new();
    for r in requests {
        let key = r.idempotency_key.as_deref().with_context(|| format!("request {} has no key", r.request_id))?;
        let k: u64 = key.parse().with_context(|| format!("request {} has key {key:?}", r.request_id))?;
        if let Some(other) = by_key.insert(k, r.request_id) {
            anyhow::bail!("key {k} is held by both {other} and {}", r.request_id);
        }
    }
    Ok(by_key)
}
