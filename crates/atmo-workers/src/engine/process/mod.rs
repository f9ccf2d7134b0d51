//! The process executor: a bank of worker processes speaking the JSON-lines worker protocol
//! (`docs/protocol.md`, [`atmo_core::protocol`]).
//!
//! Each worker slot has a supervisor task that owns its process: it spawns it, checks its
//! `worker-ready` against the bank's manifest, writes `execute-task` lines (pipelined up to the
//! worker's concurrency, flushed once per batch), sends `cancel-task` for attempts the engine
//! timed out or cancelled and kills a process that ignores it, restarts a process that died
//! (with backoff; a crash loop marks the bank `error`), and on shutdown sends `shutdown`, waits,
//! then kills. A reader task per process parses stdout and reports outcomes straight to the
//! engine; a logger task forwards stderr to `tracing` with the worker id.
//!
//! Here: the executor and what its supervisors share; [`supervisor`]: one worker slot's
//! processes, one after another (start, restart with backoff, crash loops); [`session`]: one
//! process's life (handshake, pipelined writes, cancels, heartbeats, replies, stderr). Lines
//! are framed by [`crate::lines`], as the worker side's are.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use atmo_core::manifest::CommandSpec;
use atmo_core::protocol::{self, EngineMessage, PROTOCOL_VERSION, TaskOutcome, WorkerMessage};
use atmo_core::{CancellationToken, Clock, Manifest, ProgressSink, RequestId, TaskError, Timestamp};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Notify, mpsc, oneshot};

use self::supervisor::supervise;
use super::banks::BankContext;
use super::executor::{Executor, Job, Outcome, Reporter, StartedJob};
use super::supervision::{CrashTracker, Supervision, SupervisionStats, check_ready};
use crate::lines::{Line, read_line};

mod session;
mod supervisor;

/// How a bank's worker processes are run and supervised: the [`Supervision`] every protocol
/// executor shares.
pub type ProcessConfig = Supervision;

/// What every supervisor of the bank shares.
#[derive(Debug)]
struct Shared {
    bank_id: Arc<str>,
    manifest: Arc<Manifest>,
    command: CommandSpec,
    config: ProcessConfig,
    reporter: Reporter,
    stats: Arc<SupervisionStats>,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
    /// Set while a crash loop keeps the bank in `error`.
    failed: AtomicBool,
}

impl Shared {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Milliseconds on the engine's clock, for atomics.
    fn millis_now(&self) -> u64 {
        millis(self.now().saturating_since(Timestamp::EPOCH))
    }

    fn protocol_error(&self, worker_id: &str, problem: &str) {
        self.stats.protocol_error();
        tracing::warn!(worker_id, bank_id = &*self.bank_id, "worker protocol error: {problem}");
    }
}

/// An attempt written to a process and not answered yet.
#[derive(Debug)]
struct InFlight {
    job: Job,
    sent: Timestamp,
    start_reported: bool,
    cancel_sent: Option<Timestamp>,
}

/// One worker: its queue and what its current process holds.
#[derive(Debug)]
struct Slot {
    worker_id: Arc<str>,
    tx: mpsc::UnboundedSender<Job>,
    inflight: Mutex<FxHashMap<RequestId, InFlight>>,
    pid: AtomicU32,
}

/// A bank of worker processes.
#[derive(Debug)]
pub(crate) struct ProcessExecutor {
    shared: Arc<Shared>,
    slots: Vec<Arc<Slot>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl ProcessExecutor {
    /// Starts one process per worker and waits until every one is ready.
    ///
    /// # Errors
    /// The first worker's problem (it could not start, did not say `worker-ready` in time, or
    /// announced another protocol version, manifest or set of actions). Every process started
    /// is stopped again.
    pub(crate) async fn start(ctx: &BankContext, command: CommandSpec) -> Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            "worker processes are supervised on tokio: start the bank within a tokio runtime".to_owned()
        })?;
        let worker_ids = ctx.worker_ids.clone();
        let shared = Arc::new(Shared {
            bank_id: ctx.bank_id.clone(),
            manifest: ctx.manifest.clone(),
            command,
            config: ctx.supervision.clone(),
            reporter: ctx.reporter.clone(),
            stats: ctx.stats.clone(),
            clock: ctx.clock.clone(),
            stop: CancellationToken::new(),
            failed: AtomicBool::new(false),
        });
        let mut slots = Vec::new();
        let mut tasks = Vec::new();
        let mut readies = Vec::new();
        for (index, worker_id) in worker_ids.into_iter().enumerate() {
            let (tx, rx) = mpsc::unbounded_channel();
            let slot =
                Arc::new(Slot { worker_id, tx, inflight: Mutex::new(FxHashMap::default()), pid: AtomicU32::new(0) });
            let (ready_tx, ready_rx) = oneshot::channel();
            tasks.push(runtime.spawn(supervise(shared.clone(), slot.clone(), index, rx, ready_tx)));
            readies.push(ready_rx);
            slots.push(slot);
        }
        let executor = ProcessExecutor { shared, slots, tasks: Mutex::new(tasks) };
        for ready in readies {
            let outcome = ready.await.unwrap_or_else(|_| Err("the worker's supervisor stopped".into()));
            if let Err(problem) = outcome {
                executor.shutdown().await;
                return Err(problem);
            }
        }
        Ok(executor)
    }
}

impl Executor for ProcessExecutor {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn dispatch(&self, job: Job) {
        match self.slots.get(job.worker).or_else(|| self.slots.first()) {
            Some(slot) => {
                if let Err(e) = slot.tx.send(job) {
                    let job = e.0;
                    self.shared.reporter.finished(
                        &job,
                        Outcome::WorkerLost("the worker process is stopped".into()),
                        Duration::ZERO,
                    );
                }
            }
            None => self.shared.reporter.finished(
                &job,
                Outcome::WorkerLost("the bank has no workers".into()),
                Duration::ZERO,
            ),
        }
    }

    fn harvest_starts(&self, older_than: Duration) -> Vec<StartedJob> {
        let mut out = Vec::new();
        let now = self.shared.now();
        for (worker, slot) in self.slots.iter().enumerate() {
            let mut inflight = slot.inflight.lock();
            for f in inflight.values_mut() {
                if !f.start_reported {
                    let running_for = now.saturating_since(f.sent);
                    if running_for >= older_than {
                        f.start_reported = true;
                        out.push(StartedJob {
                            request_id: f.job.request_id,
                            attempt: f.job.attempt,
                            worker,
                            running_for,
                        });
                    }
                }
            }
        }
        out
    }

    fn shutdown(&self) -> futures::future::BoxFuture<'static, ()> {
        self.shared.stop.cancel();
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        Box::pin(async move {
            for t in tasks {
                let _ = t.await;
            }
        })
    }
}

fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
    if line.len() > 120 { format!("{text}…") } else { text }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
