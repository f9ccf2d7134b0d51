//! The thread executor: synchronous handlers on the bank's own OS threads, asynchronous
//! handlers as tasks of the engine's runtime.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use atmo_core::{EventKind, Handler, TaskContext};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::executor::{Executor, Job, Outcome};
use super::panic_message;
use super::tasks::{WorkerEnv, no_handler};

/// The job a worker thread is running.
#[derive(Debug)]
struct RunningSlot {
    request_id: atmo_core::RequestId,
    attempt: u32,
    since: Instant,
    reported: bool,
}

type Slots = Vec<Mutex<Option<RunningSlot>>>;

/// N OS threads, each with its own queue (the engine picks the least-loaded worker), plus tokio
/// tasks for async handlers.
#[derive(Debug)]
pub(crate) struct ThreadExecutor {
    env: Arc<WorkerEnv>,
    /// What each worker thread is running, for [`Executor::harvest_starts`].
    slots: Arc<Slots>,
    // `None` tells a worker thread to stop once it reaches it. Jobs travel in batches: one
    // queue operation (and at most one wake-up) per worker per dispatch round.
    queues: Vec<Sender<Option<Batch>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl ThreadExecutor {
    /// Starts `worker_count` threads if any handler is synchronous.
    pub(crate) fn start(env: WorkerEnv, worker_count: usize) -> std::io::Result<Self> {
        let env = Arc::new(env);
        let slots: Arc<Slots> = Arc::new((0..worker_count).map(|_| Mutex::new(None)).collect());
        let mut queues = Vec::new();
        let mut threads = Vec::new();
        if env.handlers.values().any(Handler::is_sync) {
            for idx in 0..worker_count {
                let (tx, rx) = crossbeam_channel::unbounded::<Option<Batch>>();
                let env2 = env.clone();
                let slots2 = slots.clone();
                let name = format!("atmo-{}-{idx}", env.bank_id);
                let handle =
                    std::thread::Builder::new().name(name).spawn(move || worker_loop(&env2, &slots2, idx, &rx))?;
                queues.push(tx);
                threads.push(handle);
            }
        }
        Ok(ThreadExecutor { env, slots, queues, threads: Mutex::new(threads) })
    }
}

/// How long an idle worker thread polls its queue before it parks: a job that arrives within
/// this window starts without the cost of waking a parked thread (several microseconds).
const SPIN_BEFORE_PARK: std::time::Duration = std::time::Duration::from_micros(50);

/// Jobs for one worker, run in order.
type Batch = Vec<Job>;

fn next_batch(rx: &Receiver<Option<Batch>>) -> Option<Batch> {
    match rx.try_recv() {
        Ok(batch) => return batch,
        Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
        Err(crossbeam_channel::TryRecvError::Empty) => {}
    }
    let start = Instant::now();
    while start.elapsed() < SPIN_BEFORE_PARK {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
        match rx.try_recv() {
            Ok(batch) => return batch,
            Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
            Err(crossbeam_channel::TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    rx.recv().ok().flatten()
}

fn worker_loop(env: &WorkerEnv, slots: &Slots, idx: usize, rx: &Receiver<Option<Batch>>) {
    // One context serves every job of this worker: per job only the attempt's own fields
    // change, so the bank's, the worker's and the resources' reference counts, which all
    // workers share, are not touched per job.
    let mut ctx: Option<TaskContext> = None;
    while let Some(batch) = next_batch(rx) {
        let mut jobs = batch.into_iter();
        while let Some(job) = jobs.next() {
            run_job(env, slots, idx, job, &mut ctx);
            if jobs.len() == 0 && rx.is_empty() {
                env.events.emit_with(|| EventKind::WorkerIdle { worker_id: env.worker_id(idx) });
            }
        }
    }
    env.events.emit_with(|| EventKind::WorkerTerminated { worker_id: env.worker_id(idx) });
}

fn run_job(env: &WorkerEnv, slots: &Slots, idx: usize, mut job: Job, ctx: &mut Option<TaskContext>) {
    if job.cancel.is_cancelled() {
        env.reporter.skipped(&job);
        return;
    }
    let Some(Handler::Sync(handler)) = env.handlers.get(&*job.task_id) else {
        // The dispatcher only queues synchronous handlers here.
        env.reporter.finished(&job, Outcome::Failed(no_handler(&job)), Default::default());
        return;
    };
    let started = Instant::now();
    if let Some(slot) = slots.get(idx) {
        *slot.lock() =
            Some(RunningSlot { request_id: job.request_id, attempt: job.attempt, since: started, reported: false });
    }
    env.events.emit_with(|| EventKind::WorkerBusy { worker_id: env.worker_id(idx), request_id: job.request_id });
    let ctx = match ctx {
        Some(ctx) => {
            ctx.request_id = job.request_id;
            ctx.attempt = job.attempt;
            // Swapped rather than cloned: the job is done with them.
            std::mem::swap(&mut ctx.task_id, &mut job.task_id);
            std::mem::swap(&mut ctx.cancel, &mut job.cancel);
            ctx.renew_span();
            ctx
        }
        None => ctx.insert(env.context(&job)),
    };
    let result = {
        let _span = ctx.span.enter();
        catch_unwind(AssertUnwindSafe(|| handler.call(ctx, &job.parameters)))
    };
    // The attempt's span closes when the attempt ends, not when the next one begins.
    ctx.span = tracing::Span::none();
    let outcome = match result {
        Ok(Ok(v)) => Outcome::Completed(v),
        Ok(Err(e)) => Outcome::Failed(e),
        Err(panic) => Outcome::Panicked(panic_message(&*panic)),
    };
    let reported = slots.get(idx).and_then(|s| s.lock().take()).is_some_and(|s| s.reported);
    if reported {
        env.reporter.finished(&job, outcome, started.elapsed());
    } else {
        env.reporter.finished_without_start(&job, outcome, started.elapsed());
    }
}

impl Executor for ThreadExecutor {
    fn kind(&self) -> &'static str {
        "thread"
    }

    fn dispatch(&self, job: Job) {
        match self.env.handlers.get(&*job.task_id) {
            Some(Handler::Sync(_)) => {
                let queue = self.queues.get(job.worker).or_else(|| self.queues.first());
                match queue {
                    Some(q) => {
                        if let Err(e) = q.send(Some(vec![job])) {
                            // The worker's thread is gone (shutdown): the job never ran.
                            let Some(job) = e.into_inner().and_then(|mut b| b.pop()) else { return };
                            self.env.reporter.finished(
                                &job,
                                Outcome::WorkerLost("worker thread stopped".into()),
                                Default::default(),
                            );
                        }
                    }
                    None => self.env.reporter.finished(&job, Outcome::Failed(no_handler(&job)), Default::default()),
                }
            }
            Some(Handler::Async(_)) => self.env.spawn_job(job),
            None => self.env.reporter.finished(&job, Outcome::Failed(no_handler(&job)), Default::default()),
        }
    }

    fn dispatch_many(&self, jobs: &mut Vec<Job>) {
        // One batch per worker thread; anything else (async handlers, unknown tasks, no
        // threads) takes the one-by-one path.
        let workers = self.queues.len();
        // Jobs of a round are usually of one task: its handler is looked up once.
        let mut last: Option<(Arc<str>, bool)> = None;
        let mut threaded = |job: &Job| -> bool {
            match &last {
                Some((task, sync)) if Arc::ptr_eq(task, &job.task_id) => *sync,
                _ => {
                    let sync = workers > 0 && matches!(self.env.handlers.get(&*job.task_id), Some(Handler::Sync(_)));
                    last = Some((job.task_id.clone(), sync));
                    sync
                }
            }
        };
        let worker_of = |job: &Job| if job.worker < workers { job.worker } else { 0 };
        // Each batch gets its exact size first: grown push by push, it would be copied at
        // every doubling.
        let mut sizes = vec![0usize; workers];
        for job in jobs.iter() {
            if threaded(job)
                && let Some(n) = sizes.get_mut(worker_of(job))
            {
                *n += 1;
            }
        }
        let mut batches: Vec<Batch> = sizes.into_iter().map(Vec::with_capacity).collect();
        for job in jobs.drain(..) {
            let batch = if threaded(&job) { batches.get_mut(worker_of(&job)) } else { None };
            match batch {
                Some(batch) => batch.push(job),
                None => self.dispatch(job),
            }
        }
        for (queue, batch) in self.queues.iter().zip(batches) {
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = queue.send(Some(batch)) {
                // The worker's thread is gone (shutdown): its jobs never ran.
                for job in e.into_inner().into_iter().flatten() {
                    self.env.reporter.finished(
                        &job,
                        Outcome::WorkerLost("worker thread stopped".into()),
                        Default::default(),
                    );
                }
            }
        }
    }

    fn harvest_starts(&self, older_than: std::time::Duration) -> Vec<super::executor::StartedJob> {
        let mut out = Vec::new();
        for (worker, slot) in self.slots.iter().enumerate() {
            let mut slot = slot.lock();
            if let Some(s) = slot.as_mut()
                && !s.reported
            {
                let running_for = s.since.elapsed();
                if running_for >= older_than {
                    s.reported = true;
                    out.push(super::executor::StartedJob {
                        request_id: s.request_id,
                        attempt: s.attempt,
                        worker,
                        running_for,
                    });
                }
            }
        }
        out
    }

    fn shutdown(&self) -> futures::future::BoxFuture<'static, ()> {
        for q in &self.queues {
            let _ = q.send(None);
        }
        let threads: Vec<JoinHandle<()>> = std::mem::take(&mut *self.threads.lock());
        // Joining blocks, so it happens on a thread of its own, whatever the runtime.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let joiner = std::thread::Builder::new().name("atmo-join".into()).spawn(move || {
            for t in threads {
                let _ = t.join();
            }
            let _ = tx.send(());
        });
        Box::pin(async move {
            if joiner.is_ok() {
                let _ = rx.await;
            }
        })
    }
}
