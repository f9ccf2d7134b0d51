//! [`SqliteStore`]: opening, the thread plumbing, and the [`Store`] implementation.

use std::fmt;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use atmo_core::{
    ApplyOutcome, ClaimParams, Claimed, InsertOutcome, MetricsParams, Promoted, QueryPage, Request, RequestId,
    RequestQuery, RetentionParams, Store, StoreError, StoreFuture, StoreMetrics, Timestamp, Transition,
};
use crossbeam_channel::Sender;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::backup::{self, BackupReport, Overwrite};
use crate::error::Error;
use crate::health::Health;
use crate::options::{SqliteOptions, Synchronous};
use crate::runtime::{Finisher, Msg, ReadJob, Replies, WriteCtx, WriteJob, WriterShared, run_reader, run_writer};
use crate::schema::FileState;
use crate::sync::{SyncState, WRITER_CHECKPOINT_PAGES, Wal, run_checkpointer, run_syncer};
use crate::{read, row, schema, write};

/// A durable store in one SQLite file.
///
/// # Durability
///
/// Every mutating call (`insert_many`, `claim`, `apply`, `promote_scheduled`, `heartbeat`,
/// `rescue_*`, `delete_finished`) goes to one writer thread, which runs whatever is waiting in
/// one transaction (group commit) and answers each call only after `COMMIT`: when a call
/// returns, its effect is on disk (with [`Synchronous::Full`](crate::Synchronous::Full), the
/// default, even across a power loss: a sync thread fsyncs the write-ahead log before the
/// answer, while the writer runs the next batch). The file is in WAL mode; reads run on their
/// own connections and threads, so they never wait behind a write. If an fsync fails, what
/// reached the disk is unknown, so the store stops writing: every write from then on fails
/// with an error naming the failed fsync (reads still work); reopening the file recovers what
/// is on disk.
///
/// # Corruption
///
/// Opening an existing file runs `PRAGMA quick_check` (unless
/// [`SqliteOptions::integrity_check`] is off) and refuses a damaged one with
/// [`StoreError::Corrupt`]; an existing file of zero bytes is refused the same way (a store
/// file is never empty once created, so it was truncated; taken for a new file, it would be
/// written over). When SQLite meets damage later (`SQLITE_CORRUPT`, `SQLITE_NOTADB` on any
/// connection), the call fails with [`StoreError::Corrupt`], the cause is logged, and the store
/// stops as after a failed fsync: [`Store::health`] returns the error and every write is
/// refused with it; reads still run.
///
/// # One owner
///
/// A store holds an exclusive advisory lock on `<file>.lock` (an OS file lock, released when
/// the store is dropped or the process dies). A second store opening the same file, in this
/// process or another, gets [`StoreError::Locked`]. The lock is ours rather than SQLite's
/// `locking_mode=EXCLUSIVE` because that mode would also lock out this store's own read
/// connections. The lock file is left in place (an unlocked one is harmless), including next to
/// a file that was refused as not ours.
///
/// # What is not ours
///
/// A file that is not a SQLite database, or a SQLite database of another application, gives
/// [`StoreError::NotAStore`] and is left untouched; a store written by a newer schema gives
/// [`StoreError::SchemaTooNew`].
///
/// # Metrics
///
/// Counts, the throughput window and processing-time percentiles cover the requests held
/// (retention removes deleted ones from them); error counts cover every error recorded since
/// the file was created.
///
/// ```
/// use atmo_core::Store;
/// let store = atmo_sqlite::SqliteStore::open_in_memory()?;
/// assert_eq!(store.kind(), "sqlite");
/// # Ok::<(), atmo_core::StoreError>(())
/// ```
pub struct SqliteStore {
    writer: Option<Sender<Msg>>,
    /// `None` for an in-memory store, whose reads go to the writer.
    readers: Option<Sender<ReadJob>>,
    /// The reader threads, stopped first when the store drops (see `Drop`).
    reader_threads: Vec<JoinHandle<()>>,
    /// The writer's thread (which stops the checkpoint thread) and the sync thread.
    threads: Vec<JoinHandle<()>>,
    /// Write transactions committed since the store opened.
    commits: Arc<AtomicU64>,
    /// The sync thread's fsync count, when it runs.
    sync: Option<Arc<SyncState>>,
    /// Whether the store stopped writing, and why (a failed fsync, a corrupt file).
    health: Arc<Health>,
    path: Option<PathBuf>,
    /// Held for the store's lifetime; dropped after the threads have stopped.
    lock: Option<File>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the file at `path`, migrating it to the current
    /// schema.
    ///
    /// # Errors
    /// - [`StoreError::Locked`] when another store holds the file;
    /// - [`StoreError::NotAStore`] when the file is not an Atmo Workers store (it is not
    ///   modified);
    /// - [`StoreError::Corrupt`] when the file is ours but damaged, or empty (it is not
    ///   modified);
    /// - [`StoreError::SchemaTooNew`] when a newer version wrote it;
    /// - [`StoreError::Backend`] when SQLite or the file system fails.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let lock = lock_file(path)?;
        let file = schema::check_header(path)?;
        // A file that SQLite finds corrupt at its first reads is refused saying so.
        let at_open = |e: Error| match file {
            FileState::Sqlite { ours } => schema::corrupt_at_open(e, path, ours),
            FileState::Missing => e.into(),
        };
        let mut conn = Connection::open(path).map_err(|e| at_open(e.into()))?;
        configure(&conn, &options).map_err(at_open)?;
        if let FileState::Sqlite { ours } = file
            && options.integrity_check
        {
            schema::quick_check(&conn, path, ours)?;
        }
        schema::migrate(&mut conn).map_err(at_open)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(Error::from)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!("SQLite refused WAL mode (journal mode is {mode})").into()));
        }
        // With `Full`, the sync thread makes commits durable (see `sync.rs`); SQLite itself
        // syncs around checkpoints, which keeps the file consistent.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(Error::from)?;
        // Checkpoints run mostly on a thread of their own; the writer's automatic checkpoint
        // finishes them (see `sync.rs`).
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES).map_err(Error::from)?;
        let checkpointer = Connection::open(path).map_err(Error::from)?;
        configure(&checkpointer, &options)?;
        checkpointer.pragma_update(None, "synchronous", "NORMAL").map_err(Error::from)?;
        let mut readers = Vec::new();
        for _ in 0..options.readers.max(1) {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let r = Connection::open_with_flags(path, flags).map_err(Error::from)?;
            configure(&r, &options)?;
            readers.push(r);
        }
        let wal = (options.synchronous == Synchronous::Full).then(|| Wal::of(path));
        let mut store = Self::start(conn, readers, &options, wal, Some(checkpointer))?;
        store.path = Some(path.to_path_buf());
        store.lock = Some(lock);
        Ok(store)
    }

    /// A store in memory, for tests: the same SQL, nothing on disk, reads served by the writer.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when SQLite fails.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory().map_err(Error::from)?;
        let options = SqliteOptions::default();
        configure(&conn, &options)?;
        schema::migrate(&mut conn)?;
        Self::start(conn, Vec::new(), &options, None, None)
    }

    /// Write transactions committed since the store opened: with group commit, far fewer than
    /// the mutating calls made.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Fsyncs of the write-ahead log made to answer calls since the store opened (with
    /// [`Synchronous::Full`](crate::Synchronous::Full); 0 otherwise): at most one per commit,
    /// fewer when commits come faster than the disk syncs. Checkpoints sync too; those are not
    /// counted.
    pub fn syncs(&self) -> u64 {
        self.sync.as_ref().map_or(0, |s| s.syncs.load(Ordering::Relaxed))
    }

    /// Returns every assigned or processing request to `pending` (attempt kept, history saying
    /// `reason`), whoever held it, and returns their ids.
    ///
    /// Call it once right after [`SqliteStore::open`], before claiming: the store holds the
    /// file's lock, so nothing running in the file can have a live worker; what was running
    /// when the previous owner died (or was killed) is resumed at once instead of after its
    /// lease expires. Called later, it would also take back this store's own claims.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when SQLite fails; [`StoreError::Closed`] after a shutdown.
    pub fn rescue_orphans(&self, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        self.write(move |ctx| write::rescue_all_running(ctx, now, reason))
    }

    /// Copies the store to a new file `dest` while it keeps serving: a consistent snapshot of
    /// everything committed when the copy begins (every call answered before this one was
    /// made), compacted, synced and renamed into place (see [`backup`](crate::backup())).
    ///
    /// It runs on a read connection (the writer is not held up) or, for an in-memory store,
    /// on the writer's.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when `dest` exists (with [`Overwrite::Refuse`]) or SQLite or the
    /// file system fails; [`StoreError::Closed`] after a shutdown.
    pub fn backup(&self, dest: impl AsRef<Path>, overwrite: Overwrite) -> StoreFuture<'_, BackupReport> {
        let dest = dest.as_ref().to_path_buf();
        self.read(move |conn| backup::copy(conn, &dest, overwrite).map_err(Error::from))
    }

    /// The file, for a file store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Starts the threads: the writer, the readers, with `wal` the sync thread, and with
    /// `checkpointer` the checkpoint thread.
    fn start(
        conn: Connection,
        readers: Vec<Connection>,
        options: &SqliteOptions,
        wal: Option<Wal>,
        checkpointer: Option<Connection>,
    ) -> Result<Self, StoreError> {
        // Only pending and scheduled requests are ordered by `seq` (entering either state takes
        // a new one), so numbering continues after theirs; each is read off its partial index.
        let seq: i64 = conn
            .query_row(
                "SELECT ifnull(max(m), 0) FROM (SELECT max(seq) AS m FROM requests WHERE status = 0
                 UNION ALL SELECT max(seq) FROM requests WHERE status = 1)",
                [],
                |r| r.get(0),
            )
            .map_err(Error::from)?;
        let mut threads = Vec::new();
        let health = Arc::new(Health::default());
        let (wtx, wrx) = crossbeam_channel::unbounded();
        let max_batch = options.max_batch;
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        let (replies, sync) = match wal {
            Some(wal) => {
                let state = Arc::new(SyncState::new(health.clone()));
                let (stx, srx) = crossbeam_channel::unbounded();
                let (done_tx, done_rx) = crossbeam_channel::bounded(1);
                let s = state.clone();
                threads.push(spawn("atmo-sqlite-sync", move || run_syncer(wal, srx, s, done_tx))?);
                (Replies::AfterSync(stx, state.clone(), done_rx), Some(state))
            }
            None => (Replies::Direct, None),
        };
        let (checkpoint, checkpointer) = match checkpointer {
            Some(c) => {
                let (ctx, crx) = crossbeam_channel::bounded(1);
                (Some(ctx), Some(spawn("atmo-sqlite-checkpoint", move || run_checkpointer(c, crx))?))
            }
            None => (None, None),
        };
        let shared = WriterShared { commits: counter, health: health.clone() };
        threads.push(spawn("atmo-sqlite-writer", move || {
            let conn = run_writer(conn, wrx, seq, max_batch, shared, replies, checkpoint);
            // The writer's connection closes last (when this closure returns): SQLite checkpoints
            // the WAL into the file and removes it only when the last connection closes, and two
            // read-write connections closing at once would each find the other still open.
            if let Some(t) = checkpointer {
                join([t]);
            }
            drop(conn);
        })?);
        let mut reader_threads = Vec::new();
        let readers_tx = if readers.is_empty() {
            None
        } else {
            let (rtx, rrx) = crossbeam_channel::unbounded();
            for r in readers {
                let rrx = rrx.clone();
                reader_threads.push(spawn("atmo-sqlite-reader", move || run_reader(r, rrx))?);
            }
            Some(rtx)
        };
        Ok(SqliteStore {
            writer: Some(wtx),
            readers: readers_tx,
            reader_threads,
            threads,
            commits,
            sync,
            health,
            path: None,
            lock: None,
        })
    }

    /// Runs `f` in the writer's next batch; resolves after the batch commits. `f` may run more
    /// than once (see `runtime.rs`): only its last run's effects and result count.
    fn write<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut WriteCtx<'_>) -> Result<T, Error> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let health = self.health.clone();
        Box::pin(async move {
            let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
            // Taken by the finisher of the run that counts.
            let reply = Arc::new(Mutex::new(Some(tx)));
            let job: WriteJob = Box::new(move |ctx| {
                let result = f(ctx);
                let failed = result.is_err();
                let reply = reply.clone();
                let health = health.clone();
                let finish: Finisher = Box::new(move |commit| {
                    let out = match (commit, result) {
                        (_, Err(e)) => Err(e),
                        (Some(e), Ok(_)) => Err(Error::Commit(e.clone())),
                        (None, Ok(v)) => Ok(v),
                    };
                    let out = out.map_err(|e| {
                        health.watch(&e);
                        StoreError::from(e)
                    });
                    let tx = reply.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                    if let Some(tx) = tx {
                        // The caller may have stopped waiting; the work is done either way.
                        let _ = tx.send(out);
                    }
                });
                (failed, finish)
            });
            if let Some(e) = self.stopped() {
                return Err(e);
            }
            let writer = self.writer.as_ref().ok_or(StoreError::Closed)?;
            writer.send(Msg::Write(job)).map_err(|_| StoreError::Closed)?;
            // A write refused because the store stopped meanwhile says why.
            rx.await.map_err(|_| self.stopped().unwrap_or(StoreError::Closed))?
        })
    }

    /// The error of every write after the store stopped (see `health.rs`).
    fn stopped(&self) -> Option<StoreError> {
        self.health.error()
    }

    /// Runs `f` on a read connection.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let health = self.health.clone();
        Box::pin(async move {
            let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
            let job: ReadJob = Box::new(move |conn| {
                let out = f(conn).map_err(|e| {
                    health.watch(&e);
                    StoreError::from(e)
                });
                let _ = tx.send(out);
            });
            let sent = match (&self.readers, &self.writer) {
                (Some(r), _) => r.send(job).is_ok(),
                (None, Some(w)) => w.send(Msg::Read(job)).is_ok(),
                (None, None) => false,
            };
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }
}

/// Takes the exclusive lock on `<path>.lock`.
fn lock_file(path: &Path) -> Result<File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Locked(format!(
            "{} is open in another store (lock file {})",
            path.display(),
            lock_path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(StoreError::Backend(Box::new(e))),
    }
}

fn configure(conn: &Connection, options: &SqliteOptions) -> Result<(), Error> {
    conn.busy_timeout(std::time::Duration::from_millis(options.busy_timeout_ms.into()))?;
    conn.set_prepared_statement_cache_capacity(128);
    // Neither changes what is durable: a larger page cache (32 MiB instead of 2) keeps the
    // hot index pages of a large file in memory, and statement journals (a savepoint's undo
    // log) stay in memory instead of temporary files.
    conn.pragma_update(None, "cache_size", -32_768)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StoreError> {
    std::thread::Builder::new().name(name.into()).spawn(f).map_err(|e| StoreError::Backend(Box::new(e)))
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channels stops the threads once they finish what was sent; joining them
        // closes the connections before the lock is released. The read-only connections close
        // first and the writer's last: SQLite checkpoints the WAL into the file and removes it
        // when the last connection closes, which a read-only one cannot do, so a reader closing
        // last would leave the WAL behind (safe, but the file alone would not be the whole store).
        self.readers = None;
        join(self.reader_threads.drain(..));
        self.writer = None;
        join(self.threads.drain(..));
        self.lock = None;
    }
}

fn join(threads: impl IntoIterator<Item = JoinHandle<()>>) {
    for t in threads {
        if t.join().is_err() {
            tracing::error!("an atmo-sqlite thread panicked");
        }
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

// ===== impl Store =====

impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn health(&self) -> Result<(), StoreError> {
        self.stopped().map_or(Ok(()), Err)
    }

    fn insert_many(&self, requests: Vec<Request>) -> StoreFuture<'_, Vec<InsertOutcome>> {
        // Encoded here, on the caller's thread: the writer only binds the values.
        match requests.iter().map(row::encode_insert).collect::<Result<Vec<_>, _>>() {
            Ok(encoded) => self.write(move |ctx| write::insert_many(ctx, &requests, &encoded)),
            Err(e) => Box::pin(std::future::ready(Err(e.into()))),
        }
    }

    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<Claimed>> {
        self.write(move |ctx| write::claim(ctx, &params))
    }

    fn apply(&self, transitions: Vec<Transition>) -> StoreFuture<'_, Vec<ApplyOutcome>> {
        self.write(move |ctx| write::apply(ctx, &transitions))
    }

    fn promote_scheduled(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<Promoted>> {
        self.write(move |ctx| write::promote_scheduled(ctx, now, limit))
    }

    fn next_scheduled(&self) -> StoreFuture<'_, Option<Timestamp>> {
        self.read(|conn| read::next_scheduled(conn))
    }

    fn heartbeat(&self, owner: Arc<str>, until: Timestamp) -> StoreFuture<'_, usize> {
        self.write(move |ctx| write::heartbeat(ctx, &owner, until))
    }

    fn rescue_expired(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<RequestId>> {
        self.write(move |ctx| write::rescue_expired(ctx, now, limit))
    }

    fn rescue_owner(&self, owner: Arc<str>, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        self.write(move |ctx| write::rescue_owner(ctx, &owner, now, reason))
    }

    fn recover_orphans(&self, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        // This store holds the file's exclusive lock: anything still running in it was held
        // by a process that is gone.
        self.rescue_orphans(now, reason)
    }

    fn get(&self, id: RequestId) -> StoreFuture<'_, Option<Request>> {
        self.read(move |conn| read::get(conn, id))
    }

    fn query(&self, query: RequestQuery) -> StoreFuture<'_, QueryPage> {
        self.read(move |conn| read::query(conn, &query))
    }

    fn metrics(&self, params: MetricsParams) -> StoreFuture<'_, StoreMetrics> {
        self.read(move |conn| read::metrics(conn, &params))
    }

    fn delete_finished(&self, params: RetentionParams) -> StoreFuture<'_, usize> {
        self.write(move |ctx| write::delete_finished(ctx, &params))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// After an fsync of the WAL failed, writes are refused with an error that says so, the
    /// store reports itself unhealthy, and reads still work.
    #[tokio::test]
    async fn writes_after_a_failed_fsync_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("atmo.db"), SqliteOptions::default()).unwrap();
        assert!(store.health().is_ok());
        let failed = crate::sync::fsync_error(&std::io::Error::other("injected"));
        store.health.stop(crate::health::Stop::Fsync(Arc::new(failed)));
        let unhealthy = store.health().unwrap_err();
        assert!(format!("{unhealthy:?}").contains("fsync of the write-ahead log failed"), "{unhealthy:?}");
        let err = store.heartbeat(Arc::from("node"), Timestamp::EPOCH).await.unwrap_err();
        let chain = format!("{:?}", err);
        assert!(matches!(err, StoreError::Backend(_)), "{chain}");
        assert!(chain.contains("fsync of the write-ahead log failed"), "{chain}");
        assert_eq!(store.get(RequestId::from_u128(1)).await.unwrap(), None);
    }
}
