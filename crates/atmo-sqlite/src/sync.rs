//! Durability off the writer's path: the sync thread.
//!
//! With [`Synchronous::Full`](crate::Synchronous::Full) a commit must be on stable storage
//! before its callers hear of it. SQLite's own `synchronous=FULL` does that inside `COMMIT`: the
//! writer thread waits for the fsync of the WAL, and no work happens meanwhile. Instead, the
//! writer's connection runs with `synchronous=NORMAL` (SQLite then syncs only around
//! checkpoints, which keeps the file consistent) and hands each committed batch's replies to
//! this thread, which calls `fdatasync` on the WAL and only then replies. While it waits on
//! the disk, the writer runs the next batch; one fsync covers every batch committed before it
//! began, so the number of fsyncs adapts to the disk's speed.
//!
//! Why a reply after this thread's fsync means the batch is durable: the WAL only grows
//! between checkpoints, and the batch's frames were written (with `write`) before the batch was
//! sent here, so an `fdatasync` of the WAL that starts after that covers them. If a checkpoint
//! copied them into the database file in between and the WAL was then reused, SQLite
//! (`synchronous=NORMAL`) synced the WAL before that checkpoint and the database after it.
//!
//! An fsync that fails leaves the data's fate unknown (the kernel may drop the dirty pages and
//! report success next time), so the store stops: the waiting callers and every later write
//! get an error, and the next open recovers from what is on disk.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::health::{Health, Stop};
use crate::row::Loaded;
use crate::runtime::{Finisher, WriteJob};

/// A committed (or failed) batch's replies, waiting for durability.
pub(crate) struct Committed {
    /// Why the batch failed, if it did (then it waits for nothing, only its turn).
    pub(crate) error: Option<Arc<rusqlite::Error>>,
    pub(crate) finishers: Vec<Finisher>,
    /// What the batch is done with (its operations, with the requests they carried, and the
    /// cached rows of finished requests): freed after the replies, off the writer thread
    /// when this goes to the sync thread.
    pub(crate) garbage: Garbage,
}

/// Memory a batch leaves behind; see [`Committed::garbage`].
#[derive(Default)]
pub(crate) struct Garbage {
    pub(crate) jobs: Vec<WriteJob>,
    pub(crate) rows: Vec<Loaded>,
}

impl Committed {
    /// Replies to every caller of the batch, then frees its garbage.
    pub(crate) fn reply(self, error: Option<&Arc<rusqlite::Error>>) {
        self.answer(error).free();
    }

    /// Replies to every caller of the batch; returns its garbage, for the caller to free.
    fn answer(self, error: Option<&Arc<rusqlite::Error>>) -> Garbage {
        let Committed { error: own, finishers, garbage } = self;
        let error = own.as_ref().or(error);
        for f in finishers {
            f(error);
        }
        garbage
    }
}

/// Most answered batches whose memory the sync thread keeps while fsyncs follow each other.
const MAX_DEFERRED_GARBAGE: usize = 64;

impl Garbage {
    /// Frees it all (the callers were answered first: this is off their path).
    fn free(self) {
        drop(self.jobs);
        drop(self.rows);
    }
}

/// The WAL file of a store, opened for syncing at the first need (SQLite creates it).
pub(crate) struct Wal {
    path: PathBuf,
    file: Option<File>,
}

impl Wal {
    /// The WAL of the database at `db` (`<db>-wal`).
    pub(crate) fn of(db: &std::path::Path) -> Self {
        let mut name = db.as_os_str().to_owned();
        name.push("-wal");
        Wal { path: PathBuf::from(name), file: None }
    }

    /// Makes everything written to the WAL so far durable.
    fn sync(&mut self) -> io::Result<()> {
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = File::open(&self.path)?;
                // The WAL's directory entry, once: a new file's name is durable only when its
                // directory is synced.
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    File::open(dir)?.sync_all()?;
                }
                self.file.insert(f)
            }
        };
        file.sync_data()
    }
}

/// What the sync thread shares with the store.
pub(crate) struct SyncState {
    /// Stopped after an fsync failed: the writer then refuses every batch.
    pub(crate) health: Arc<Health>,
    /// Completed fsyncs of the WAL.
    pub(crate) syncs: AtomicU64,
    /// Whether an fsync is under way (the writer keeps its transaction open meanwhile).
    pub(crate) syncing: AtomicBool,
}

impl SyncState {
    pub(crate) fn new(health: Arc<Health>) -> Self {
        SyncState { health, syncs: AtomicU64::new(0), syncing: AtomicBool::new(false) }
    }
}

/// The sync thread's loop: takes every batch waiting, syncs the WAL once, replies to all of
/// them in commit order. The end of each fsync is signalled on `done` (the writer commits its
/// open batch then).
pub(crate) fn run_syncer(mut wal: Wal, rx: Receiver<Committed>, state: Arc<SyncState>, done: Sender<()>) {
    let mut failure: Option<Arc<rusqlite::Error>> = None;
    let mut garbage: Vec<Garbage> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        if failure.is_none() && waiting.iter().any(|c| c.error.is_none()) {
            state.syncing.store(true, Ordering::Release);
            let synced = wal.sync();
            state.syncing.store(false, Ordering::Release);
            let _ = done.try_send(());
            match synced {
                Ok(()) => {
                    state.syncs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(error = %e, wal = %wal.path.display(), "fsync of the SQLite WAL failed; the store stops writing");
                    let error = Arc::new(fsync_error(&e));
                    state.health.stop(Stop::Fsync(error.clone()));
                    failure = Some(error);
                }
            }
        }
        garbage.extend(waiting.into_iter().map(|c| c.answer(failure.as_ref())));
        // Freeing is off every caller's path, but not off the next fsync's: while batches wait
        // for one, it goes first (within a bound on the memory held back).
        if rx.is_empty() || garbage.len() >= MAX_DEFERRED_GARBAGE {
            garbage.drain(..).for_each(Garbage::free);
        }
    }
    tracing::debug!("sqlite sync thread stopped");
}

/// An fsync failure as the SQLite error its callers see.
pub(crate) fn fsync_error(e: &io::Error) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_FSYNC),
        Some(format!("fsync of the write-ahead log failed ({e}); the store stopped writing, reopen it to recover")),
    )
}

/// Pause between background checkpoints: commits accumulate, and one checkpoint copies each
/// page once however often it changed.
const CHECKPOINT_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// WAL frames after which the writer checkpoints by itself (SQLite's automatic checkpoint,
/// 16 MiB of 4 KiB pages); see [`run_checkpointer`].
pub(crate) const WRITER_CHECKPOINT_PAGES: i64 = 4_096;

/// The checkpoint thread's loop: after commits (the writer signals each), copies the WAL into
/// the database file with a passive checkpoint on a connection of its own, so the writer
/// neither copies most pages nor waits for the syncs around those copies.
///
/// Passive checkpoints never block the writer or the readers, but under a steady stream of
/// commits they never catch up completely, and SQLite reuses the WAL from its start only after
/// a checkpoint has copied everything. That last step is the writer's own automatic
/// checkpoint, every [`WRITER_CHECKPOINT_PAGES`]: between two of its transactions nothing is
/// appended, so it completes, and it copies only the frames this thread has not copied yet.
/// The WAL file thus stays one size, and its fsyncs do not also commit a growing file's
/// metadata. (A `RESTART` checkpoint from this thread would have to wait for the write lock,
/// which a busy writer takes back between every two batches.)
pub(crate) fn run_checkpointer(conn: rusqlite::Connection, rx: Receiver<()>) {
    'signals: while rx.recv().is_ok() {
        let until = std::time::Instant::now() + CHECKPOINT_PAUSE;
        loop {
            match rx.recv_deadline(until) {
                Ok(()) => {}
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
                // The writer stopped; closing the last connection checkpoints.
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break 'signals,
            }
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite background checkpoint failed");
        }
    }
    tracing::debug!("sqlite checkpoint thread stopped");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex;

    use super::*;

    /// A batch whose one caller records the error it was answered with.
    fn batch(answers: &Arc<Mutex<Vec<Option<String>>>>) -> Committed {
        let answers = answers.clone();
        let f: Finisher = Box::new(move |e| answers.lock().unwrap().push(e.map(|e| e.to_string())));
        Committed { error: None, finishers: vec![f], garbage: Garbage::default() }
    }

    #[test]
    fn answers_after_a_successful_fsync() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.db-wal"), b"frames").unwrap();
        let state = Arc::new(SyncState::new(Arc::default()));
        let (tx, rx) = crossbeam_channel::unbounded();
        let answers = Arc::new(Mutex::new(Vec::new()));
        tx.send(batch(&answers)).unwrap();
        tx.send(batch(&answers)).unwrap();
        drop(tx);
        run_syncer(Wal::of(&dir.path().join("a.db")), rx, state.clone(), crossbeam_channel::bounded(1).0);
        assert_eq!(*answers.lock().unwrap(), vec![None, None]);
        // Both batches were waiting: one fsync answered them.
        assert_eq!(state.syncs.load(Ordering::Relaxed), 1);
        assert!(!state.health.is_stopped());
    }

    #[test]
    fn a_failed_fsync_fails_the_waiting_callers_and_stops_the_store() {
        let dir = tempfile::tempdir().unwrap();
        // No WAL file: opening it for the fsync fails.
        let state = Arc::new(SyncState::new(Arc::default()));
        let (tx, rx) = crossbeam_channel::unbounded();
        let answers = Arc::new(Mutex::new(Vec::new()));
        tx.send(batch(&answers)).unwrap();
        drop(tx);
        run_syncer(Wal::of(&dir.path().join("missing.db")), rx, state.clone(), crossbeam_channel::bounded(1).0);
        let answers = answers.lock().unwrap();
        let error = answers[0].as_deref().expect("the caller is told of the failure");
        assert!(error.contains("fsync of the write-ahead log failed"), "{error}");
        assert!(state.health.is_stopped());
        assert_eq!(state.syncs.load(Ordering::Relaxed), 0);
    }
}
