//! What only a durable store must do: survive a reopen exactly, recognise its files, refuse
//! what is not its own, and keep one owner.

use std::sync::Arc;

use atmo_core::{
    ClaimParams, InsertOutcome, Request, RequestQuery, RequestStatus, SortField, SortOrder, Store, StoreError,
    Transition,
};
use atmo_sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore, Synchronous};
use atmo_testkit::fixtures::{at, error, request};
use serde_json::json;

use crate::common::TempStore;

fn claim_params(task: &str, limit: usize, owner: &str) -> ClaimParams {
    ClaimParams {
        bank_id: Arc::from("bank"),
        task_ids: vec![Arc::from(task)],
        limit,
        owner: Arc::from(owner),
        now: at(10),
        lease_until: at(40),
    }
}

fn reopen(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).unwrap()
}

/// Requests in every kind of state — with results, errors, progress, metadata, histories —
/// read back after a reopen exactly as they were, and queries see the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_reads_back_exactly() {
    let t = TempStore::new();
    let reqs: Vec<Request> = (0..6)
        .map(|i| request("job").priority(3 + i).client("c").meta("n", i).parameters(json!({ "i": i })).build())
        .collect();
    t.insert_many(reqs.clone()).await.unwrap();
    t.insert_many(vec![request("later").run_at(at(500)).build()]).await.unwrap();
    let claimed = t.claim(claim_params("job", 6, "node-1")).await.unwrap();
    assert_eq!(claimed.len(), 6);
    let w: Arc<str> = Arc::from("w1");
    let ids: Vec<_> = claimed.iter().map(|c| c.request_id).collect();
    let mut steps: Vec<Transition> =
        ids.iter().take(5).map(|&id| Transition::start(id, 1, w.clone(), at(11))).collect();
    steps.push(Transition::complete(ids[0], 1, Arc::new(json!({ "sum": 1.5, "s": "é" })), at(12)));
    steps.push(Transition::fail(ids[1], 1, error("E_BAD", "bad", 1, at(12)), at(12)));
    steps.push(Transition::retry(ids[2], 1, error("E_NET", "net", 1, at(12)), at(60), at(12)));
    steps.push(Transition::progress(
        ids[3],
        1,
        atmo_core::Progress { percent: 33.3, message: Some("a third".into()), at: at(13) },
    ));
    steps.push(Transition::cancel(ids[4], "user asked", at(14)));
    assert!(t.apply(steps).await.unwrap().iter().all(Result::is_ok));

    let q = || RequestQuery::new().sort(SortField::Priority, SortOrder::Desc).limit(100);
    let before = t.query(q()).await.unwrap();
    assert_eq!(before.total, 7);
    let path = t.path();
    let TempStore { store, dir } = t;
    drop(store);

    let store = reopen(&path);
    assert_eq!(store.query(q()).await.unwrap(), before);
    for r in &before.requests {
        assert_eq!(store.get(r.request_id).await.unwrap().as_ref(), Some(r));
    }
    // ids[5] was assigned and ids[3] processing when the store closed: their leases expire
    // and the rescuer returns them, attempt kept, history saying why.
    let rescued = store.rescue_expired(at(41), 10).await.unwrap();
    assert_eq!(rescued.len(), 2);
    for id in rescued {
        let r = store.get(id).await.unwrap().unwrap();
        assert_eq!(r.status, RequestStatus::Pending);
        assert_eq!(r.attempts, 1);
        assert_eq!(r.history.last().map(|h| &*h.reason), Some("lease expired"));
    }
    // The scheduled ones keep their time.
    assert_eq!(store.next_scheduled().await.unwrap(), Some(at(60)));
    drop(store);
    drop(dir);
}

/// After a reopen, `rescue_orphans` returns what the previous owner was running, whatever its
/// lease, and leaves everything else alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_rescued_after_reopen() {
    let t = TempStore::new();
    let reqs: Vec<Request> = (0..4).map(|_| request("orphan").build()).collect();
    t.insert_many(reqs).await.unwrap();
    let claimed = t.claim(claim_params("orphan", 3, "old-life")).await.unwrap();
    let started = claimed[0].request_id;
    let w: Arc<str> = Arc::from("w");
    assert!(t.apply(vec![Transition::start(started, 1, w, at(11))]).await.unwrap()[0].is_ok());
    let path = t.path();
    let TempStore { store, dir } = t;
    drop(store);

    let store = reopen(&path);
    let mut rescued = store.rescue_orphans(at(20), "engine restarted").await.unwrap();
    rescued.sort();
    let mut expected: Vec<_> = claimed.iter().map(|c| c.request_id).collect();
    expected.sort();
    assert_eq!(rescued, expected);
    let r = store.get(started).await.unwrap().unwrap();
    assert_eq!((r.status, r.attempts), (RequestStatus::Pending, 1));
    assert_eq!(r.history.last().map(|h| &*h.reason), Some("engine restarted"));
    // All four are claimable again; the rescued ones keep their attempt count.
    let again = store.claim(claim_params("orphan", 10, "new-life")).await.unwrap();
    assert_eq!(again.len(), 4);
    assert!(store.rescue_orphans(at(21), "x").await.unwrap().len() == 4, "its own claims too: call it once");
    drop(store);
    drop(dir);
}

/// Re-submitting with an idempotency key after a reopen names the original request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_survives_reopen() {
    let t = TempStore::new();
    let first = request("job").idempotency_key("order-42").build();
    let out = t.insert_many(vec![first.clone()]).await.unwrap();
    assert_eq!(out, vec![InsertOutcome::Inserted(first.request_id)]);
    let path = t.path();
    let TempStore { store, dir } = t;
    drop(store);
    let store = reopen(&path);
    let again = request("job").idempotency_key("order-42").build();
    let out = store.insert_many(vec![again]).await.unwrap();
    assert_eq!(out, vec![InsertOutcome::Duplicate(first.request_id)]);
    assert_eq!(store.query(RequestQuery::new()).await.unwrap().total, 1);
    drop(store);
    drop(dir);
}

/// A file written by a newer schema is refused, and left as it was.
#[test]
fn schema_too_new_is_refused() {
    let t = TempStore::new();
    let path = t.path();
    let TempStore { store, dir } = t;
    drop(store);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    }
    match SqliteStore::open(&path, SqliteOptions::default()) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
    drop(dir);
}

/// A file that is not a SQLite database is refused and never overwritten.
#[test]
fn a_non_sqlite_file_is_refused_and_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let content = b"these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    let got = SqliteStore::open(&path, SqliteOptions::default());
    assert!(matches!(got, Err(StoreError::NotAStore(_))), "{got:?}");
    assert_eq!(std::fs::read(&path).unwrap(), content);
}

/// A SQLite file with a valid header but garbage after it (corrupt) is refused and unchanged.
#[test]
fn a_corrupt_file_is_refused_and_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    let mut content = b"SQLite format 3\0".to_vec();
    content.extend(std::iter::repeat_n(0xA5u8, 8192));
    std::fs::write(&path, &content).unwrap();
    let got = SqliteStore::open(&path, SqliteOptions::default());
    assert!(matches!(got, Err(StoreError::NotAStore(_))), "{got:?}");
    assert_eq!(std::fs::read(&path).unwrap(), content);
}

/// Another application's SQLite database is refused and unchanged.
#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('x');").unwrap();
    }
    let content = std::fs::read(&path).unwrap();
    let got = SqliteStore::open(&path, SqliteOptions::default());
    assert!(matches!(got, Err(StoreError::NotAStore(_))), "{got:?}");
    assert_eq!(std::fs::read(&path).unwrap(), content);
}

/// A second store on the same file is refused while the first is open, and allowed after.
#[test]
fn a_second_owner_is_refused() {
    let t = TempStore::new();
    let got = SqliteStore::open(t.path(), SqliteOptions::default());
    assert!(matches!(got, Err(StoreError::Locked(_))), "{got:?}");
    let path = t.path();
    let TempStore { store, dir } = t;
    drop(store);
    let again = SqliteStore::open(&path, SqliteOptions::default().synchronous(Synchronous::Normal));
    assert!(again.is_ok(), "{again:?}");
    drop(again);
    drop(dir);
}

/// Many concurrent submitters each get their own acknowledgement, and every acknowledged
/// request is stored once (the writer groups them into few transactions).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submits_are_all_committed() {
    let t = Arc::new(TempStore::new());
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<Request> = (0..20).map(|_| request("many").build()).collect();
            let out = t.insert_many(batch).await.unwrap();
            assert!(out.iter().all(|o| matches!(o, InsertOutcome::Inserted(_))));
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let page = t.query(RequestQuery::new().task("many")).await.unwrap();
    assert_eq!(page.total, 64 * 20);
    // Each call is answered after the commit holding it; none commits twice.
    assert!((1..=64).contains(&t.store.commits()), "{} commits", t.store.commits());
    // Each answer waited for an fsync of the WAL; one fsync may answer several commits.
    let syncs = t.store.syncs();
    assert!((1..=t.store.commits()).contains(&syncs), "{syncs} fsyncs for {} commits", t.store.commits());
}

/// A queue deeper than the writer's row cache (16,384 live rows): the rows inserted while it
/// was full are read from the file when claimed, in the same order, and every request
/// finishes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_deeper_than_the_row_cache_is_served_in_order() {
    const N: usize = 20_000;
    let t = TempStore::new();
    let mut submitted = Vec::with_capacity(N);
    for chunk in 0..N / 1000 {
        let batch: Vec<Request> =
            (0..1000).map(|i| request("deep").parameters(json!({ "n": chunk * 1000 + i })).build()).collect();
        submitted.extend(batch.iter().map(|r| r.request_id));
        let out = t.insert_many(batch).await.unwrap();
        assert!(out.iter().all(|o| matches!(o, InsertOutcome::Inserted(_))));
    }
    let w: Arc<str> = Arc::from("w");
    let mut claimed_order = Vec::with_capacity(N);
    loop {
        let claimed = t.claim(claim_params("deep", 2_500, "node")).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        for (i, c) in claimed.iter().enumerate() {
            // Each claim hands out the request's own parameters, cached or read.
            let n = claimed_order.len() + i;
            assert_eq!(*c.parameters, json!({ "n": n }), "claim {n}");
        }
        claimed_order.extend(claimed.iter().map(|c| c.request_id));
        let steps: Vec<Transition> = claimed
            .iter()
            .flat_map(|c| {
                [
                    Transition::start(c.request_id, 1, w.clone(), at(11)),
                    Transition::complete(c.request_id, 1, Arc::new(json!(1)), at(12)),
                ]
            })
            .collect();
        assert!(t.apply(steps).await.unwrap().iter().all(Result::is_ok));
    }
    assert_eq!(claimed_order, submitted, "FIFO within one priority, each request once");
    let done = t.query(RequestQuery::new().task("deep").status([RequestStatus::Completed])).await.unwrap();
    assert_eq!(done.total, N);
    assert_eq!(t.query(RequestQuery::new().task("deep")).await.unwrap().total, N);
}

/// An operation that fails (here: a row whose progress column was corrupted behind the
/// store's back) fails alone; the operations sharing its batch still commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_operation_leaves_its_batch_intact() {
    let t = TempStore::new();
    let victim = request("job").build();
    t.insert_many(vec![victim.clone()]).await.unwrap();
    let claimed = t.claim(claim_params("job", 1, "node-1")).await.unwrap();
    assert_eq!(claimed.len(), 1);
    {
        let conn = rusqlite::Connection::open(t.path()).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        conn.execute("UPDATE requests SET progress = 'not json'", []).unwrap();
    }
    // The writer caches the rows of live requests; a heartbeat empties that cache, so the
    // transitions below read the corrupted row.
    t.heartbeat(Arc::from("node-1"), at(10)).await.unwrap();
    for round in 0..20 {
        let fresh: Vec<Request> = (0..3).map(|_| request("other").build()).collect();
        let w: Arc<str> = Arc::from("w");
        let (inserted, applied, more) = tokio::join!(
            t.insert_many(fresh[..2].to_vec()),
            t.apply(vec![Transition::start(victim.request_id, 1, w, at(11))]),
            t.insert_many(fresh[2..].to_vec()),
        );
        assert!(matches!(applied, Err(StoreError::Corrupt(_))), "round {round}: {applied:?}");
        assert!(inserted.unwrap().iter().chain(&more.unwrap()).all(|o| matches!(o, InsertOutcome::Inserted(_))));
        for r in &fresh {
            assert_eq!(t.get(r.request_id).await.unwrap().map(|r| r.status), Some(RequestStatus::Pending));
        }
    }
    let page = t.query(RequestQuery::new().task("other")).await.unwrap();
    assert_eq!(page.total, 60);
    assert_eq!(page.requests.len(), 50);
}

/// Commits are copied into the database file in the background (the checkpoint thread), long
/// before the WAL reaches the size at which the writer would checkpoint by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_reach_the_database_file_in_the_background() {
    let t = TempStore::new();
    let before = std::fs::metadata(t.path()).unwrap().len();
    for _ in 0..10 {
        let batch: Vec<Request> = (0..200).map(|_| request("bg").build()).collect();
        t.insert_many(batch).await.unwrap();
    }
    let mut grown = 0;
    for _ in 0..100 {
        grown = std::fs::metadata(t.path()).unwrap().len();
        if grown > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(grown > before, "the database file stayed at {before} bytes: nothing was checkpointed");
    // The requests are all there, read through the WAL or the file alike.
    assert_eq!(t.query(RequestQuery::new().task("bg")).await.unwrap().total, 2000);
}

/// A store that closes leaves the whole store in its file: the WAL is checkpointed and
/// removed, whichever of its threads had served reads last (a read-only connection closing
/// last could not do it, and the WAL would stay behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_leaves_no_wal_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmo.db");
    let wal = dir.path().join("atmo.db-wal");
    for round in 0..20 {
        let store = reopen(&path);
        let batch = (0..50).map(|i| request("job").parameters(json!({ "i": i })).build()).collect();
        let ids: Vec<_> = store.insert_many(batch).await.unwrap().iter().map(|o| o.id()).collect();
        for id in ids {
            assert!(store.get(id).await.unwrap().is_some());
        }
        drop(store);
        assert!(
            !wal.exists(),
            "round {round}: the WAL outlived the store ({:?} bytes)",
            std::fs::metadata(&wal).map(|m| m.len())
        );
    }
    let store = reopen(&path);
    assert_eq!(store.query(RequestQuery::default()).await.unwrap().total, 1_000);
}
