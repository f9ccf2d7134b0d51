//! The executor boundary: how a claimed request reaches a worker, and how its outcome comes back.
//!
//! Every executor (threads, async tasks, processes, web workers, mocks) receives [`Job`]s and
//! reports through a [`Reporter`] with the same vocabulary: started, finished with an
//! [`Outcome`], progress, skipped. The lifecycle logic (timeouts, retries, events) lives once,
//! in the engine, on the other side of the reporter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use atmo_core::{CancellationToken, ProgressSink, RequestId, TaskError, Timestamp};
use serde_json::Value;
use tokio::sync::mpsc;

/// One attempt of one request, handed to a worker.
#[derive(Clone, Debug)]
pub struct Job {
    /// The request.
    pub request_id: RequestId,
    /// The attempt (1-based).
    pub attempt: u32,
    /// The task.
    pub task_id: Arc<str>,
    /// Validated parameters.
    pub parameters: Arc<Value>,
    /// Cancelled on timeout, cancel or shutdown.
    pub cancel: CancellationToken,
    /// The attempt's timeout (the engine enforces it; executors may pass it on as a deadline).
    pub timeout: Duration,
    /// Index of the worker in its bank that should run it.
    pub worker: usize,
    /// Index of the bank in the engine (used by the reporter).
    pub(crate) bank: u32,
}

/// How an attempt ended, as the worker saw it.
#[derive(Debug)]
pub enum Outcome {
    /// The handler returned a result.
    Completed(Value),
    /// The handler returned an error.
    Failed(TaskError),
    /// The handler panicked (a `system` failure; the worker lives on).
    Panicked(String),
    /// The worker died holding the request (a crashed process).
    WorkerLost(String),
}

#[derive(Debug)]
pub(crate) enum WorkerMsg {
    Started {
        id: RequestId,
        attempt: u32,
        bank: u32,
        worker: u32,
    },
    Finished {
        id: RequestId,
        attempt: u32,
        bank: u32,
        worker: u32,
        outcome: Outcome,
        elapsed: Duration,
        /// The start was never reported (a fast job): the engine records both now.
        unreported_start: bool,
    },
    Skipped {
        bank: u32,
        worker: u32,
    },
    Progress {
        id: RequestId,
        attempt: u32,
        percent: f32,
        message: Option<String>,
        at: Option<Timestamp>,
    },
    /// A worker's health changed: `problem` is what went wrong (`None`: it recovered);
    /// `bank` says whether the bank's status follows (`error`, or `active` again).
    Health {
        bank: u32,
        worker: u32,
        problem: Option<String>,
        bank_wide: bool,
    },
}

/// Where an executor reports what its workers do: one per bank, cheap to clone, usable from
/// any thread. Every report goes to the engine's applier, which decides what it means for the
/// request (a late report of an attempt that was cancelled, timed out or rescued is
/// discarded).
#[derive(Clone, Debug)]
pub struct Reporter {
    tx: mpsc::UnboundedSender<WorkerMsg>,
    /// The bank's index, known once the bank is installed.
    bank: Arc<AtomicU32>,
}

impl Reporter {
    pub(crate) fn new(tx: mpsc::UnboundedSender<WorkerMsg>) -> Self {
        Reporter { tx, bank: Arc::new(AtomicU32::new(u32::MAX)) }
    }

    /// The bank this reporter speaks for is installed at `index`.
    pub(crate) fn installed(&self, index: u32) {
        self.bank.store(index, Ordering::Release);
    }

    /// The worker started the job.
    pub fn started(&self, job: &Job) {
        self.send(WorkerMsg::Started {
            id: job.request_id,
            attempt: job.attempt,
            bank: job.bank,
            worker: worker_u32(job.worker),
        });
    }

    /// The job ended (after [`Reporter::started`], or after the engine harvested its start).
    pub fn finished(&self, job: &Job, outcome: Outcome, elapsed: Duration) {
        self.finish(job, outcome, elapsed, false);
    }

    /// The job ran and ended without a `started` report: the engine records the start
    /// (`elapsed` ago) and the end together. Fast jobs report this way, one message instead of
    /// two; slow ones are seen starting through [`Executor::harvest_starts`].
    pub fn finished_without_start(&self, job: &Job, outcome: Outcome, elapsed: Duration) {
        self.finish(job, outcome, elapsed, true);
    }

    fn finish(&self, job: &Job, outcome: Outcome, elapsed: Duration, unreported_start: bool) {
        self.send(WorkerMsg::Finished {
            id: job.request_id,
            attempt: job.attempt,
            bank: job.bank,
            worker: worker_u32(job.worker),
            outcome,
            elapsed,
            unreported_start,
        });
    }

    /// The job was dropped before it started (it was cancelled while queued at the worker).
    pub fn skipped(&self, job: &Job) {
        self.send(WorkerMsg::Skipped { bank: job.bank, worker: worker_u32(job.worker) });
    }

    /// Worker `worker` failed (it crashed, hung, or broke the protocol): a `worker-error` event.
    /// With `crash_loop`, the bank's status turns to `error` until
    /// [`Reporter::worker_recovered`].
    pub fn worker_failed(&self, worker: usize, problem: impl Into<String>, crash_loop: bool) {
        self.health(worker, Some(problem.into()), crash_loop);
    }

    /// Worker `worker` is ready again after a crash loop: the bank is `active` again.
    pub fn worker_recovered(&self, worker: usize) {
        self.health(worker, None, true);
    }

    fn health(&self, worker: usize, problem: Option<String>, bank_wide: bool) {
        let bank = self.bank.load(Ordering::Acquire);
        self.send(WorkerMsg::Health { bank, worker: worker_u32(worker), problem, bank_wide });
    }

    fn send(&self, msg: WorkerMsg) {
        // Fails only when the engine is gone, and then nobody is left to tell.
        let _ = self.tx.send(msg);
    }
}

impl ProgressSink for Reporter {
    fn report(&self, request: RequestId, attempt: u32, percent: f32, message: Option<String>) {
        self.send(WorkerMsg::Progress { id: request, attempt, percent, message, at: None });
    }
}

fn worker_u32(w: usize) -> u32 {
    u32::try_from(w).unwrap_or(u32::MAX)
}

/// Runs jobs on workers. The engine's own are the thread/async executor, the process executor
/// and test mode's reducer; [`WorkerManager::initialize_bank_with`](crate::WorkerManager::initialize_bank_with)
/// starts a bank on one of your own (a Web Worker pool, a remote service, a GPU queue).
///
/// An executor gets [`Job`]s through [`Executor::dispatch`] and reports each one exactly once
/// through its bank's [`Reporter`] (finished, or skipped if it never started): the lifecycle
/// (timeouts, retries, events, history) is the engine's.
pub trait Executor: Send + Sync + std::fmt::Debug + 'static {
    /// A short name (`"thread"`, `"process"`).
    fn kind(&self) -> &'static str;

    /// Hands a job to worker `job.worker`. Must not block.
    fn dispatch(&self, job: Job);

    /// Hands over the jobs of one dispatch round, in order, draining `jobs` (whose buffer the
    /// caller reuses). Executors that can pass many jobs to a worker at once (one queue
    /// operation, one wake-up) override this.
    fn dispatch_many(&self, jobs: &mut Vec<Job>) {
        for job in jobs.drain(..) {
            self.dispatch(job);
        }
    }

    /// The engine timed out attempt `attempt` of `request_id`, which this executor runs: its
    /// cancellation token has fired. An executor that can reclaim a worker whose handler
    /// ignores it (kill a process, write off a thread) does so here, after a grace period.
    fn timed_out(&self, request_id: RequestId, attempt: u32) {
        let _ = (request_id, attempt);
    }

    /// Stops the workers once they have finished what they hold; returns when they have.
    fn shutdown(&self) -> futures::future::BoxFuture<'static, ()>;

    /// Jobs running for at least `older_than` whose start was not reported yet; each is
    /// returned once. Executors that report every start at once keep the default.
    fn harvest_starts(&self, older_than: Duration) -> Vec<StartedJob> {
        let _ = older_than;
        Vec::new()
    }
}

/// A job seen running by [`Executor::harvest_starts`].
#[derive(Clone, Debug)]
pub struct StartedJob {
    /// The request.
    pub request_id: RequestId,
    /// The attempt.
    pub attempt: u32,
    /// The worker running it.
    pub worker: usize,
    /// How long it has been running.
    pub running_for: Duration,
}
