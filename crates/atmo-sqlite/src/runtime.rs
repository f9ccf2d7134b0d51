//! The threads behind a store: one writer that groups whatever is waiting into one
//! transaction (group commit), and readers that answer reads on their own connections.
//!
//! Work travels as closures over a channel; each carries its own reply channel, so the threads
//! know nothing about the operations.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use atmo_core::RequestStatus;
use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;

use crate::cache::RowCache;
use crate::health::Health;
use crate::row::count_sql;
use crate::sync::{Committed, Garbage, SyncState};

/// Tells an operation how its batch ended (`None`: committed) and lets it reply.
pub(crate) type Finisher = Box<dyn FnOnce(Option<&Arc<rusqlite::Error>>) + Send>;

/// A write operation: runs inside the batch's transaction and returns whether it failed and how
/// to reply after the commit. It may run twice (see [`run_batch`]); only the finisher of its
/// last run is called.
pub(crate) type WriteJob = Box<dyn FnMut(&mut WriteCtx<'_>) -> (bool, Finisher) + Send>;

/// A read operation: runs on a connection of its own and replies at once.
pub(crate) type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// What the writer thread receives.
pub(crate) enum Msg {
    /// Joins the next batch.
    Write(WriteJob),
    /// Runs after the current batch commits (stores without a reader pool: in-memory ones).
    Read(ReadJob),
}

/// What a write operation may use.
pub(crate) struct WriteCtx<'a> {
    /// The write connection, inside the batch's transaction.
    pub(crate) conn: &'a Connection,
    /// The last queue sequence number handed out.
    seq: &'a mut i64,
    /// Changes to `status_counts` made by this operation, kept until it succeeds.
    counts: Vec<(RequestStatus, Arc<str>, i64)>,
    /// Live rows as written (see `cache.rs`).
    pub(crate) cache: &'a mut RowCache,
}

impl WriteCtx<'_> {
    /// A new queue sequence number: FIFO order among requests entering `pending` or
    /// `scheduled`.
    pub(crate) fn next_seq(&mut self) -> i64 {
        *self.seq += 1;
        *self.seq
    }

    /// Records that a request of `task` entered (`delta` 1) or left (-1) `status`. The batch
    /// sums these and writes each counter once, before its `COMMIT`.
    pub(crate) fn count(&mut self, status: RequestStatus, task: &Arc<str>, delta: i64) {
        self.counts.push((status, task.clone(), delta));
    }
}

/// The batch's changes to `status_counts`, summed.
type Counts = HashMap<(RequestStatus, Arc<str>), i64>;

/// Runs a cached statement without results (savepoints, commits).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Writes the batch's counter changes.
fn flush_counts(conn: &Connection, counts: Counts) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(count_sql())?;
    for ((status, task), delta) in counts {
        if delta != 0 {
            stmt.execute(rusqlite::params![status as u8, &*task, delta])?;
        }
    }
    Ok(())
}

/// What the writer shares with the store.
pub(crate) struct WriterShared {
    /// Write transactions committed.
    pub(crate) commits: Arc<AtomicU64>,
    /// Whether the store stopped: the writer then refuses every batch.
    pub(crate) health: Arc<Health>,
}

/// Where the writer sends each batch's replies.
pub(crate) enum Replies {
    /// Straight to the callers, after `COMMIT` (SQLite synced inside it, or durability was
    /// not asked for).
    Direct,
    /// Through the sync thread, which replies after an fsync of the WAL (see `sync.rs`) and
    /// signals the end of each fsync on the receiver.
    AfterSync(Sender<Committed>, Arc<SyncState>, Receiver<()>),
}

/// Lets work that arrives while the sync thread is in an fsync join the open transaction:
/// that work's commit could not be synced before the fsync ends anyway, and one commit of many
/// operations writes each page once instead of once per commit.
struct Joiner<'a> {
    rx: &'a Receiver<Msg>,
    synced: &'a Receiver<()>,
    state: &'a SyncState,
    max: usize,
    /// Reads that arrived meanwhile (only stores without readers send any).
    reads: Vec<ReadJob>,
    /// The longest a batch waits for an fsync to end.
    deadline: std::time::Instant,
}

impl Joiner<'_> {
    /// More work for the open transaction, waiting for it while an fsync is under way; `None`
    /// once the fsync is over, the batch is full or the writer is closing.
    fn more(&mut self, have: usize) -> Option<Vec<WriteJob>> {
        while have < self.max && self.state.syncing.load(Ordering::Acquire) {
            let left = self.deadline.saturating_duration_since(std::time::Instant::now());
            crossbeam_channel::select! {
                recv(self.rx) -> m => match m {
                    Ok(Msg::Write(job)) => {
                        let mut more = vec![job];
                        while have + more.len() < self.max {
                            match self.rx.try_recv() {
                                Ok(Msg::Write(job)) => more.push(job),
                                Ok(Msg::Read(r)) => self.reads.push(r),
                                Err(_) => break,
                            }
                        }
                        return Some(more);
                    }
                    Ok(Msg::Read(r)) => self.reads.push(r),
                    Err(_) => return None,
                },
                recv(self.synced) -> _ => return None,
                default(left) => return None,
            }
        }
        None
    }
}

/// The longest a batch keeps its transaction open for work to join it (see [`Joiner`]).
const MAX_JOIN_WAIT: std::time::Duration = std::time::Duration::from_millis(5);

/// The writer thread's loop: waits for work, then takes everything already waiting (up to
/// `max_batch`) and runs it in one transaction, replying only after `COMMIT` (and, with
/// [`Replies::AfterSync`], after the fsync that follows it). However many submitters wait in a
/// batch, it costs one commit.
pub(crate) fn run_writer(
    mut conn: Connection,
    rx: Receiver<Msg>,
    mut seq: i64,
    max_batch: usize,
    shared: WriterShared,
    replies: Replies,
    checkpoint: Option<Sender<()>>,
) -> Connection {
    let WriterShared { commits, health } = shared;
    let mut cache = RowCache::default();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch.max(1) {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        if health.is_stopped() {
            refuse(batch, &mut conn);
            continue;
        }
        let mut joiner = match &replies {
            Replies::AfterSync(_, state, synced) => {
                // Signals of fsyncs that ended before this batch began.
                while synced.try_recv().is_ok() {}
                Some(Joiner {
                    rx: &rx,
                    synced,
                    state,
                    max: max_batch.max(1),
                    reads: Vec::new(),
                    deadline: std::time::Instant::now() + MAX_JOIN_WAIT,
                })
            }
            Replies::Direct => None,
        };
        let (done, mut reads) = run_batch(&mut conn, batch, &mut seq, &mut cache, joiner.as_mut());
        if let Some(j) = joiner {
            reads.extend(j.reads);
        }
        if done.error.is_none() {
            commits.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = &checkpoint {
                // Full: a checkpoint is already due.
                let _ = c.try_send(());
            }
        }
        match &replies {
            Replies::AfterSync(tx, _, _) => {
                if let Err(crossbeam_channel::SendError(done)) = tx.send(done) {
                    // The sync thread is gone (it never stops first): nothing is known durable.
                    let e = Arc::new(crate::sync::fsync_error(&std::io::Error::other("the sync thread stopped")));
                    done.reply(Some(&e));
                }
            }
            Replies::Direct => done.reply(None),
        }
        for r in reads {
            r(&mut conn);
        }
    }
    tracing::debug!("sqlite writer stopped");
    // Dropping `checkpoint` stops the checkpoint thread; the connection goes back to the
    // caller, which closes it after that thread's (see `SqliteStore::start`).
    conn
}

/// Refuses a batch after the store stopped (see `health.rs`): its writes are not run (dropped,
/// their callers get the store's stopped error, see `SqliteStore::write`), its reads are.
fn refuse(batch: Vec<Msg>, conn: &mut Connection) {
    for m in batch {
        match m {
            Msg::Write(job) => drop(job),
            Msg::Read(r) => r(conn),
        }
    }
}

/// Runs one batch; returns its replies (with the error if it did not commit) and its reads, to
/// run after the replies. The status counts changed by the batch's successful operations are
/// summed and written once, just before `COMMIT`.
///
/// Operations almost never fail (a rejected transition is a result, not a failure), so the
/// batch first runs them one after another with nothing in between. If one fails, that
/// transaction is rolled back and the batch runs again with each operation in its own
/// savepoint, so the failed one leaves no trace and the rest still commit. (A savepoint for
/// every operation, every time, would copy each page an operation first touches into its undo
/// log: most of the cost of a small operation.)
fn run_batch(
    conn: &mut Connection,
    batch: Vec<Msg>,
    seq: &mut i64,
    cache: &mut RowCache,
    join: Option<&mut Joiner<'_>>,
) -> (Committed, Vec<ReadJob>) {
    let mut jobs: Vec<WriteJob> = Vec::with_capacity(batch.len());
    let mut reads: Vec<ReadJob> = Vec::new();
    for m in batch {
        match m {
            Msg::Write(job) => jobs.push(job),
            Msg::Read(r) => reads.push(r),
        }
    }
    let seq_before = *seq;
    let mut outcome = run_jobs(conn, &mut jobs, seq, cache, false, join);
    if matches!(outcome, Ran::Failed) {
        *seq = seq_before;
        outcome = run_jobs(conn, &mut jobs, seq, cache, true, None);
    }
    let (committed, finishers) = match outcome {
        Ran::Ready(finishers, counts) => {
            let committed = flush_counts(conn, counts).and_then(|()| exec(conn, "COMMIT"));
            (committed, finishers)
        }
        Ran::NotStarted(e) => {
            let e = Arc::new(e);
            for job in jobs {
                // The job is not run: it learns of the failure through its finisher.
                fail_unrun(job, &e);
            }
            return (Committed { error: Some(e), finishers: Vec::new(), garbage: Garbage::default() }, reads);
        }
        // A batch that runs with savepoints does not fail as a whole.
        Ran::Failed => (Ok(()), Vec::new()),
    };
    let error = match committed {
        Ok(()) => None,
        Err(e) => {
            if let Err(r) = exec(conn, "ROLLBACK") {
                tracing::error!(error = %r, "sqlite rollback failed");
            }
            *seq = seq_before;
            cache.clear();
            Some(Arc::new(e))
        }
    };
    let garbage = Garbage { jobs, rows: std::mem::take(&mut cache.retired) };
    (Committed { error, finishers, garbage }, reads)
}

/// How a run of a batch's jobs ended.
enum Ran {
    /// The transaction could not begin.
    NotStarted(rusqlite::Error),
    /// Without savepoints, a job failed; the transaction was rolled back.
    Failed,
    /// Every job ran (with savepoints: failed ones left no trace); the transaction is open.
    Ready(Vec<Finisher>, Counts),
}

/// Runs the jobs in one transaction, each in its own savepoint if `savepoints`; with `join`,
/// jobs that arrive meanwhile are added to `jobs` and run too (see [`Joiner`]).
fn run_jobs(
    conn: &Connection,
    jobs: &mut Vec<WriteJob>,
    seq: &mut i64,
    cache: &mut RowCache,
    savepoints: bool,
    mut join: Option<&mut Joiner<'_>>,
) -> Ran {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        return Ran::NotStarted(e);
    }
    let mut finishers: Vec<Finisher> = Vec::with_capacity(jobs.len());
    let mut counts = Counts::default();
    let mut next = 0;
    loop {
        if next == jobs.len() {
            match join.as_mut().and_then(|j| j.more(jobs.len())) {
                Some(more) => jobs.extend(more),
                None => break,
            }
        }
        let job = &mut jobs[next];
        next += 1;
        if savepoints && let Err(e) = exec(conn, "SAVEPOINT op") {
            // Its finisher is never made: its caller sees `Closed`, the cause is logged.
            tracing::error!(error = %e, "sqlite savepoint failed");
            continue;
        }
        let mut ctx = WriteCtx { conn, seq, counts: Vec::new(), cache };
        let (failed, finish) = job(&mut ctx);
        let counted = ctx.counts;
        if failed {
            // The cache may hold what is about to be rolled back.
            cache.clear();
        }
        if failed && !savepoints {
            drop(finish);
            if let Err(e) = exec(conn, "ROLLBACK") {
                tracing::error!(error = %e, "sqlite rollback failed");
            }
            return Ran::Failed;
        }
        if !failed {
            for (status, task, delta) in counted {
                *counts.entry((status, task)).or_default() += delta;
            }
        }
        if savepoints {
            // A failed operation leaves no trace; the rest of the batch still commits.
            let cleanup = if failed {
                exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op"))
            } else {
                exec(conn, "RELEASE op")
            };
            if let Err(e) = cleanup {
                tracing::error!(error = %e, "sqlite savepoint cleanup failed");
            }
        }
        finishers.push(finish);
    }
    Ran::Ready(finishers, counts)
}

/// Gives up on a job whose transaction could not be opened. Dropping it drops its reply
/// channel, so its caller sees [`StoreError::Closed`](atmo_core::StoreError::Closed); the
/// cause is logged here.
fn fail_unrun(job: WriteJob, e: &Arc<rusqlite::Error>) {
    drop(job);
    tracing::error!(error = %e, "sqlite write batch could not start");
}

/// A reader thread's loop.
pub(crate) fn run_reader(mut conn: Connection, rx: Receiver<ReadJob>) {
    while let Ok(job) = rx.recv() {
        job(&mut conn);
    }
}
