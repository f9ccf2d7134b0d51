//! `durable-open`, `durable-query` and `durable-throughput-full`: a SQLite store holding many finished requests.
//!
//! The large file (1,000,000 finished requests; 100,000 with `--quick`) and a small one (1,000)
//! are written once, by inserting finished requests straight into the store (as an import
//! would; running a million requests through the engine first would only make the benchmark
//! slow). The baseline of each scenario is the same measurement on the small file, so the
//! ratio says how the figure grows with the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use atmo_sqlite::{SqliteOptions, SqliteStore};
use atmo_workers::{
    HistoryEntry, Request, RequestId, RequestQuery, RequestStatus, SortField, SortOrder, Store, Timestamp,
    WorkerManager,
};
use serde_json::json;

/// Requests in the baseline's small file.
pub(super) const SMALL: usize = 1_000;
/// Requests inserted per store call while filling a file.
const CHUNK: usize = 10_000;
/// Distinct client ids in the files, for the client filter.
const CLIENTS: usize = 100;

/// A filled store file, and the directory that holds it while the benchmark runs.
pub(super) struct Filled {
    _dir: tempfile::TempDir,
    /// The store file.
    pub(super) path: PathBuf,
}

/// Writes `n` finished requests into a new store file in a temporary directory under `dir`.
///
/// # Errors
/// When the directory or the store cannot be created, or the store fails.
pub(super) async fn fill(dir: &Path, n: usize) -> anyhow::Result<Filled> {
    let tmp = tempfile::Builder::new()
        .prefix("atmo-bench-large-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot create a temporary directory in {}", dir.display()))?;
    let path = tmp.path().join("atmo.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).context("cannot open the SQLite store")?;
    let now = Timestamp::from_millis(
        i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(i64::MAX),
    );
    let n_i64 = i64::try_from(n).unwrap_or(i64::MAX);
    let mut done = 0;
    while done < n {
        let size = CHUNK.min(n - done);
        let requests = (done..done + size).map(|i| finished(i, now.as_millis() - n_i64 + i as i64)).collect();
        let outcomes = store.insert_many(requests).await?;
        ensure!(outcomes.len() == size, "the store answered {} of {size} inserts", outcomes.len());
        done += size;
    }
    drop(store);
    Ok(Filled { _dir: tmp, path })
}

/// Finished request number `i`, created at `created_ms`: completed in one attempt, with the
/// history the engine would have written.
fn finished(i: usize, created_ms: i64) -> Request {
    let created = Timestamp::from_millis(created_ms);
    let done = Timestamp::from_millis(created_ms + 1);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&(i as u64).to_le_bytes());
    let mut r = Request::new(RequestId::from_parts(created, random), "add", json!({ "a": i, "b": 1 }), created, None);
    let bank: Arc<str> = Arc::from("bench");
    let worker: Arc<str> = Arc::from("bench/0");
    r.client_id = Some(Arc::from(format!("client-{}", i % CLIENTS).as_str()));
    r.status = RequestStatus::Completed;
    r.attempts = 1;
    r.bank_id = Some(bank.clone());
    r.worker_id = Some(worker.clone());
    r.assigned_at = Some(created);
    r.started_at = Some(created);
    r.completed_at = Some(done);
    r.updated_at = done;
    r.result = Some(Arc::new(json!(i + 1)));
    for (from, to, reason) in [
        (RequestStatus::Pending, RequestStatus::Assigned, "claimed by bank bench"),
        (RequestStatus::Assigned, RequestStatus::Processing, "started"),
        (RequestStatus::Processing, RequestStatus::Completed, "completed"),
    ] {
        r.history.push(HistoryEntry {
            from: Some(from),
            to,
            at: if to == RequestStatus::Completed { done } else { created },
            reason: reason.into(),
            bank_id: Some(bank.clone()),
            worker_id: (to != RequestStatus::Assigned).then(|| worker.clone()),
            attempt: 1,
        });
    }
    r
}

/// Time to open the file and start an engine on it (what a restart costs), in milliseconds.
///
/// # Errors
/// When the store or the engine fails.
pub(super) async fn open(path: &Path) -> anyhow::Result<f64> {
    let start = Instant::now();
    let store = SqliteStore::open(path, SqliteOptions::default()).context("cannot open the SQLite store")?;
    // Retention off: a sweep deleting old rows in the background would change the file.
    let manager = WorkerManager::builder().store(store).configure(|b| b.retention(None, None)).start().await?;
    let elapsed = start.elapsed();
    manager.shutdown(Duration::from_secs(10)).await?;
    drop(manager);
    Ok(elapsed.as_secs_f64() * 1e3)
}

/// Times `samples` filtered, paginated queries (50 per page) on an open store, cycling through
/// a task-and-status filter, a client filter and the task filter's second page.
///
/// # Errors
/// When the store fails or a page comes back empty.
pub(super) async fn query(path: &Path, samples: usize) -> anyhow::Result<Vec<Duration>> {
    let store = SqliteStore::open(path, SqliteOptions::default()).context("cannot open the SQLite store")?;
    let by_task = RequestQuery::new()
        .status([RequestStatus::Completed])
        .task("add")
        .sort(SortField::Created, SortOrder::Desc)
        .limit(50);
    let first = store.query(by_task.clone()).await?;
    let cursor = first.next_cursor.context("the first page has no next page")?;
    let second_page = by_task.clone().after(cursor);
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        let q = match i % 3 {
            0 => by_task.clone(),
            1 => RequestQuery::new()
                .client(format!("client-{}", i % CLIENTS))
                .sort(SortField::Created, SortOrder::Desc)
                .limit(50),
            _ => second_page.clone(),
        };
        let start = Instant::now();
        let page = store.query(q).await?;
        times.push(start.elapsed());
        ensure!(!page.requests.is_empty(), "a query returned no requests");
    }
    Ok(times)
}
