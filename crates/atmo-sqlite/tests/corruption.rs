//! A damaged file is caught: refused at open when the damage is visible then, and stopping
//! the store's writes (with `health` saying why) when SQLite meets it later.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use atmo_core::{InsertOutcome, RequestId, Store, StoreError};
use atmo_sqlite::{SqliteOptions, SqliteStore};
use atmo_testkit::fixtures::request;
use serde_json::json;

/// Writes a store of `n` requests with parameters of a few hundred bytes (a file of a few MB)
/// at `path`, closes it (its WAL checkpointed into the file) and returns their ids.
async fn filled(path: &Path, n: usize) -> Vec<RequestId> {
    let store = SqliteStore::open(path, SqliteOptions::default()).unwrap();
    let mut ids = Vec::new();
    for chunk in 0..n.div_ceil(500) {
        let batch = (0..500.min(n - chunk * 500))
            .map(|i| request("job").parameters(json!({ "i": i, "pad": "p".repeat(300) })).build())
            .collect();
        for o in store.insert_many(batch).await.unwrap() {
            let InsertOutcome::Inserted(id) = o else { panic!("{o:?}") };
            ids.push(id);
        }
    }
    drop(store);
    ids
}

/// Overwrites 16 KiB in the middle of the file with bytes that are no valid page.
fn scribble_middle(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start((len / 2) & !4095)).unwrap();
    let garbage: Vec<u8> = (0..16 * 1024u32).map(|i| (i.wrapping_mul(7919) >> 3) as u8 ^ 0xA5).collect();
    f.write_all(&garbage).unwrap();
    f.sync_all().unwrap();
}

/// A store file truncated to nothing is refused as corrupt, not taken for a new one and
/// written over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_truncated_to_zero_bytes_is_refused_and_left_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmo.db");
    filled(&path, 10).await;
    std::fs::File::create(&path).unwrap();
    let got = SqliteStore::open(&path, SqliteOptions::default());
    let Err(StoreError::Corrupt(message)) = got else { panic!("expected Corrupt, got {got:?}") };
    assert!(message.contains("is empty") && message.contains("truncated"), "{message}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

/// A new file (none at the path) still opens as an empty store.
#[tokio::test]
async fn a_missing_file_is_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmo.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert!(store.health().is_ok());
    drop(store);
    // Once created, it is not empty, so it opens again.
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    SqliteStore::open(&path, SqliteOptions::default()).unwrap();
}

/// 16 KiB of garbage in the middle of a store is found by the integrity check at open: the
/// file is refused as a corrupt Atmo Workers store (not "not an Atmo Workers store") and left
/// as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_middle_is_refused_at_open_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmo.db");
    filled(&path, 5_000).await;
    scribble_middle(&path);
    let before = std::fs::read(&path).unwrap();
    let got = SqliteStore::open(&path, SqliteOptions::default());
    let Err(StoreError::Corrupt(message)) = got else { panic!("expected Corrupt, got {got:?}") };
    assert!(message.contains("corrupt Atmo Workers store"), "{message}");
    assert!(!format!("{}", StoreError::Corrupt(message.clone())).contains("not an Atmo"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// Corruption met while the store runs (here: pages damaged after an open that skipped the
/// check) stops the store: the read that met it fails as corrupt, `health` reports it, and
/// writes are refused with the same cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_corrupted_while_running_stops_writes_and_fails_health() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmo.db");
    let ids = filled(&path, 5_000).await;
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert!(store.health().is_ok());
    scribble_middle(&path);
    let mut first_error = None;
    for id in ids {
        if let Err(e) = store.get(id).await {
            first_error = Some(e);
            break;
        }
    }
    let error = first_error.expect("a read meets the damaged pages");
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    let unhealthy = store.health().unwrap_err();
    assert!(matches!(&unhealthy, StoreError::Corrupt(m) if m.contains("stopped writing")), "{unhealthy:?}");
    let write = store.insert_many(vec![request("job").build()]).await.unwrap_err();
    assert!(matches!(write, StoreError::Corrupt(_)), "{write:?}");
}

/// With the check skipped, a file damaged in the middle opens (the operator chose speed), and
/// the first read of a damaged page stops the store as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipping_the_integrity_check_opens_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmo.db");
    let ids = filled(&path, 5_000).await;
    scribble_middle(&path);
    let store = SqliteStore::open(&path, SqliteOptions::default().integrity_check(false)).unwrap();
    assert!(store.health().is_ok());
    let mut failed = false;
    for id in ids {
        if store.get(id).await.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "a read meets the damaged pages");
    assert!(matches!(store.health(), Err(StoreError::Corrupt(_))));
}
