//! The threads behind a store: one writer that groups whatever is waiting into one
//! transaction (group commit), and readers that answer reads on their own connections.
//!
//! Work travels as closures over a channel; each carries its own reply channel, so the threads
//! know nothing about the operations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::Receiver;
use rusqlite::Connection;

/// Tells an operation how its batch ended (`None`: committed) and lets it reply.
pub(crate) type Finisher = Box<dyn FnOnce(Option<&Arc<rusqlite::Error>>) + Send>;

/// A write operation: runs inside the batch's transaction (in its own savepoint) and returns
/// whether it failed (its savepoint is then rolled back) and how to reply after the commit.
pub(crate) type WriteJob = Box<dyn FnOnce(&mut WriteCtx<'_>) -> (bool, Finisher) + Send>;

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
}

impl WriteCtx<'_> {
    /// A new queue sequence number: FIFO order among requests entering `pending` or
    /// `scheduled`.
    pub(crate) fn next_seq(&mut self) -> i64 {
        *self.seq += 1;
        *self.seq
    }
}

/// The writer thread's loop: waits for work, then takes everything already waiting (up to
/// `max_batch`) and runs it in one transaction, replying only after `COMMIT`. One fsync per
/// batch, however many submitters wait in it.
pub(crate) fn run_writer(
    mut conn: Connection,
    rx: Receiver<Msg>,
    mut seq: i64,
    max_batch: usize,
    commits: Arc<AtomicU64>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch.max(1) {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        if run_batch(&mut conn, batch, &mut seq) {
            commits.fetch_add(1, Ordering::Relaxed);
        }
    }
    tracing::debug!("sqlite writer stopped");
}

/// Runs one batch; returns whether a transaction committed.
fn run_batch(conn: &mut Connection, batch: Vec<Msg>, seq: &mut i64) -> bool {
    let mut finishers: Vec<Finisher> = Vec::with_capacity(batch.len());
    let mut reads: Vec<ReadJob> = Vec::new();
    let seq_before = *seq;
    let began = conn.execute_batch("BEGIN IMMEDIATE");
    if let Err(e) = began {
        let e = Arc::new(e);
        for m in batch {
            match m {
                // The job is not run: it learns of the failure through its finisher.
                Msg::Write(job) => fail_unrun(job, &e),
                Msg::Read(r) => reads.push(r),
            }
        }
        reads.into_iter().for_each(|r| r(conn));
        return false;
    }
    for m in batch {
        match m {
            Msg::Write(job) => {
                if let Err(e) = conn.execute_batch("SAVEPOINT op") {
                    fail_unrun(job, &Arc::new(e));
                    continue;
                }
                let (failed, finish) = job(&mut WriteCtx { conn, seq });
                // A failed operation leaves no trace; the rest of the batch still commits.
                let cleanup = if failed { "ROLLBACK TO op; RELEASE op" } else { "RELEASE op" };
                if let Err(e) = conn.execute_batch(cleanup) {
                    tracing::error!(error = %e, "sqlite savepoint cleanup failed");
                }
                finishers.push(finish);
            }
            Msg::Read(r) => reads.push(r),
        }
    }
    let committed = conn.execute_batch("COMMIT");
    let err = match committed {
        Ok(()) => None,
        Err(e) => {
            if let Err(r) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %r, "sqlite rollback failed");
            }
            *seq = seq_before;
            Some(Arc::new(e))
        }
    };
    for f in finishers {
        f(err.as_ref());
    }
    for r in reads {
        r(conn);
    }
    err.is_none()
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
