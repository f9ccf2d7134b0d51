//! Backups of a store that is open and being written: the copy restores every request
//! acknowledged before the backup began.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use atmo_core::{InsertOutcome, RequestId, RequestQuery, RequestStatus, Store, StoreError};
use atmo_sqlite::{Overwrite, SCHEMA_VERSION, SqliteOptions, SqliteStore};
use atmo_testkit::fixtures::request;
use serde_json::json;

/// Submitters inserting one request per call until told to stop; each id is recorded once its
/// insert was acknowledged.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<RequestId>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(store: &Arc<SqliteStore>, submitters: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..submitters)
            .map(|s| {
                let (store, stop, acked) = (store.clone(), stop.clone(), acked.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let r = request("job").parameters(json!({ "submitter": s, "n": n })).build();
                        let id = r.request_id;
                        let out = store.insert_many(vec![r]).await.unwrap();
                        assert!(matches!(out[..], [InsertOutcome::Inserted(_)]), "{out:?}");
                        acked.lock().unwrap().push(id);
                        n += 1;
                    }
                })
            })
            .collect();
        Load { stop, acked, tasks }
    }

    /// Waits until at least `n` inserts were acknowledged (however long that takes).
    async fn until_acked(&self, n: usize) {
        while self.acked.lock().unwrap().len() < n {
            tokio::task::yield_now().await;
        }
    }

    fn acked(&self) -> Vec<RequestId> {
        self.acked.lock().unwrap().clone()
    }

    async fn stop(self) -> Vec<RequestId> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}

/// Every acknowledged id of `before` is in the store at `path`, as submitted (pending).
async fn assert_restores(path: &std::path::Path, before: &[RequestId]) -> u64 {
    let restored = SqliteStore::open(path, SqliteOptions::default()).unwrap();
    for &id in before {
        let r = restored.get(id).await.unwrap();
        assert_eq!(r.map(|r| r.status), Some(RequestStatus::Pending), "{id} was acknowledged before the backup");
    }
    restored.query(RequestQuery::new().limit(1)).await.unwrap().total as u64
}

/// `atmo_sqlite::backup` on the file of a store that another handle holds (as `atmo backup`
/// does next to a running service), while 8 submitters keep inserting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_the_file_under_load_restores_every_acknowledged_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmo.db");
    let store = Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    let load = Load::start(&store, 8);
    load.until_acked(500).await;

    let before = load.acked();
    let dest = dir.path().join("backup.db");
    let (src, dst) = (path.clone(), dest.clone());
    let report =
        tokio::task::spawn_blocking(move || atmo_sqlite::backup(&src, &dst, Overwrite::Refuse)).await.unwrap().unwrap();
    // The store kept taking submissions during and after the copy.
    let during = load.acked().len();
    load.until_acked(during + 100).await;
    let all = load.stop().await;

    assert_eq!(report.path, dest);
    assert_eq!(report.schema_version, SCHEMA_VERSION);
    assert!(report.bytes > 0);
    assert!(report.requests >= before.len() as u64, "{} < {}", report.requests, before.len());
    let total = assert_restores(&dest, &before).await;
    assert_eq!(total, report.requests);
    assert!(total < all.len() as u64, "the copy is a snapshot, not the store at the end");
    // The source is untouched and still ours.
    drop(store);
    assert_eq!(assert_restores(&path, &all).await, all.len() as u64);
}

/// `SqliteStore::backup`, on the store's own read connection, under the same load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_backup_under_load_restores_every_acknowledged_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("atmo.db"), SqliteOptions::default()).unwrap());
    let load = Load::start(&store, 8);
    load.until_acked(500).await;
    let before = load.acked();
    let dest = dir.path().join("nested-name.db");
    let report = store.backup(&dest, Overwrite::Refuse).await.unwrap();
    let all = load.stop().await;
    assert!(report.requests >= before.len() as u64);
    assert_eq!(assert_restores(&dest, &before).await, report.requests);
    assert!(all.len() >= before.len());
}

/// An existing destination is refused (and kept) unless replacing was asked for; no partial
/// file is left beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_destination_is_refused_unless_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmo.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    store.insert_many(vec![request("job").build()]).await.unwrap();
    let dest = dir.path().join("backup.db");
    std::fs::write(&dest, b"keep me").unwrap();

    let err = atmo_sqlite::backup(&path, &dest, Overwrite::Refuse).unwrap_err();
    assert!(err.to_string().contains("backup"), "{err}");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"keep me");
    let err = store.backup(&dest, Overwrite::Refuse).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");

    let report = store.backup(&dest, Overwrite::Replace).await.unwrap();
    assert_eq!(report.requests, 1);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!names.iter().any(|n| n.to_string_lossy().contains("partial")), "{names:?}");
}

/// A file that is not a store, or no file at all, is refused and nothing is written.
#[test]
fn what_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("backup.db");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database").unwrap();
    let err = atmo_sqlite::backup(&text, &dest, Overwrite::Refuse).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore(_)), "{err:?}");

    let other = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
    drop(conn);
    let err = atmo_sqlite::backup(&other, &dest, Overwrite::Refuse).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore(_)), "{err:?}");

    let err = atmo_sqlite::backup(dir.path().join("missing.db"), &dest, Overwrite::Refuse).unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(!dest.exists());
}

/// A store file no store holds (the service is stopped) is copied too, and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_is_copied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmo.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let reqs: Vec<_> = (0..10).map(|_| request("job").build()).collect();
    let ids: Vec<_> = reqs.iter().map(|r| r.request_id).collect();
    store.insert_many(reqs).await.unwrap();
    drop(store);
    let dest = dir.path().join("backup.db");
    let report = atmo_sqlite::backup(&path, &dest, Overwrite::Refuse).unwrap();
    assert_eq!(report.requests, 10);
    assert_eq!(assert_restores(&dest, &ids).await, 10);
    assert_eq!(assert_restores(&path, &ids).await, 10);
}
