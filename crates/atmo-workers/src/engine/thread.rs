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
use super::supervision::SupervisionStats;
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

/// N OS threads, each with its own queue (the engine picks the least-loaded worker), plus
/// tasks of the runtime for async handlers.
#[derive(Debug)]
pub(crate) struct ThreadExecutor {
    env: Arc<WorkerEnv>,
    inner: Arc<Threads>,
}

/// One worker thread's queue. The receiver is kept too: when a stuck thread is written off,
/// what waited behind its job moves to the replacement.
#[derive(Debug)]
struct Queue {
    tx: Sender<Option<Batch>>,
    rx: Receiver<Option<Batch>>,
}

#[derive(Debug)]
struct Threads {
    env: Arc<WorkerEnv>,
    /// What each worker thread is running, for [`Executor::harvest_starts`].
    slots: Arc<Slots>,
    // `None` tells a worker thread to stop once it reaches it. Jobs travel in batches: one
    // queue operation (and at most one wake-up) per worker per dispatch round.
    queues: Vec<Mutex<Queue>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// How long a handler may overstay its timeout before its thread is written off.
    grace: std::time::Duration,
    /// Threads written off so far, and the most that may be (each still holds its stack and
    /// whatever its handler holds until the handler returns).
    abandoned: std::sync::atomic::AtomicUsize,
    max_abandoned: usize,
    stats: Arc<SupervisionStats>,
    /// Whether the threads run at the lowest CPU priority (see `priority.rs`).
    background: bool,
}

impl ThreadExecutor {
    /// Starts `worker_count` threads if any handler is synchronous. A handler still running
    /// `grace` after its timeout fired gets its thread written off and replaced, up to
    /// `worker_count` times over the bank's life. With `background`, every thread (replacements
    /// included) runs at the lowest CPU priority.
    pub(crate) fn start(
        env: WorkerEnv,
        worker_count: usize,
        grace: std::time::Duration,
        stats: Arc<SupervisionStats>,
        background: bool,
    ) -> std::io::Result<Self> {
        let env = Arc::new(env);
        let slots: Arc<Slots> = Arc::new((0..worker_count).map(|_| Mutex::new(None)).collect());
        let mut queues = Vec::new();
        let mut threads = Vec::new();
        if env.handlers.values().any(Handler::is_sync) {
            for idx in 0..worker_count {
                let (tx, rx) = crossbeam_channel::unbounded::<Option<Batch>>();
                threads.push(spawn_worker(&env, &slots, idx, rx.clone(), background)?);
                queues.push(Mutex::new(Queue { tx, rx }));
            }
        }
        let inner = Arc::new(Threads {
            env: env.clone(),
            slots,
            queues,
            threads: Mutex::new(threads),
            grace,
            abandoned: std::sync::atomic::AtomicUsize::new(0),
            max_abandoned: worker_count,
            stats,
            background,
        });
        Ok(ThreadExecutor { env, inner })
    }
}

fn spawn_worker(
    env: &Arc<WorkerEnv>,
    slots: &Arc<Slots>,
    idx: usize,
    rx: Receiver<Option<Batch>>,
    background: bool,
) -> std::io::Result<JoinHandle<()>> {
    let env = env.clone();
    let slots = slots.clone();
    let name = format!("atmo-{}-{idx}", env.bank_id);
    std::thread::Builder::new().name(name).spawn(move || {
        if background {
            super::priority::lower_current_thread(&env.bank_id);
        }
        worker_loop(&env, &slots, idx, &rx);
    })
}

impl Threads {
    /// Writes off worker `idx`'s thread if it still runs `(request_id, attempt)`, whose timeout
    /// fired `grace` ago: a new thread takes over its queue, the old one finishes its handler
    /// unobserved (its late result is discarded) and exits.
    fn write_off(&self, request_id: atmo_core::RequestId, attempt: u32) {
        let Some(idx) = self
            .slots
            .iter()
            .position(|s| s.lock().as_ref().is_some_and(|r| r.request_id == request_id && r.attempt == attempt))
        else {
            return;
        };
        let (Some(slot), Some(queue)) = (self.slots.get(idx), self.queues.get(idx)) else { return };
        let worker_id = self.env.worker_id(idx);
        let written_off = self.abandoned.load(std::sync::atomic::Ordering::Acquire);
        if written_off >= self.max_abandoned {
            tracing::error!(
                worker_id = &*worker_id,
                "the handler of request {request_id} overstays its timeout; {written_off} threads of this bank are \
                 written off already, the most allowed, so this one is kept"
            );
            return;
        }
        let mut queue = queue.lock();
        {
            let mut slot = slot.lock();
            if !slot.as_ref().is_some_and(|r| r.request_id == request_id && r.attempt == attempt) {
                return;
            }
            *slot = None;
        }
        let (tx, rx) = crossbeam_channel::unbounded::<Option<Batch>>();
        let handle = match spawn_worker(&self.env, &self.slots, idx, rx.clone(), self.background) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(worker_id = &*worker_id, "cannot start a replacement worker thread: {e}");
                return;
            }
        };
        let old = std::mem::replace(&mut *queue, Queue { tx, rx });
        // What waited behind the stuck job goes to the new thread; the old one exits once its
        // handler returns and finds its queue closed.
        for batch in old.rx.try_iter().flatten() {
            let _ = queue.tx.send(Some(batch));
        }
        drop(queue);
        drop(old);
        self.threads.lock().push(handle);
        self.abandoned.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.stats.abandoned();
        let message = format!(
            "the handler of request {request_id} overstayed its timeout by {} ms; its thread was written off and \
             replaced",
            self.grace.as_millis()
        );
        tracing::warn!(worker_id = &*worker_id, "{message}");
        self.env.reporter.worker_failed(idx, message, false);
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
    // The slot is this job's unless the thread was written off meanwhile (then it is empty or
    // the replacement's).
    let reported = slots
        .get(idx)
        .and_then(|s| {
            let mut s = s.lock();
            s.as_ref().is_some_and(|r| r.request_id == job.request_id && r.attempt == job.attempt).then(|| s.take())
        })
        .flatten()
        .is_some_and(|s| s.reported);
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
                let queue = self.inner.queues.get(job.worker).or_else(|| self.inner.queues.first());
                match queue {
                    Some(q) => {
                        if let Err(e) = q.lock().tx.send(Some(vec![job])) {
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
        let workers = self.inner.queues.len();
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
        for (queue, batch) in self.inner.queues.iter().zip(batches) {
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = queue.lock().tx.send(Some(batch)) {
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
        for (worker, slot) in self.inner.slots.iter().enumerate() {
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

    fn timed_out(&self, request_id: atmo_core::RequestId, attempt: u32) {
        if self.inner.slots.is_empty() {
            return;
        }
        let inner = self.inner.clone();
        let sleep = self.env.runtime.sleep(inner.grace);
        self.env.runtime.spawn(Box::pin(async move {
            sleep.await;
            inner.write_off(request_id, attempt);
        }));
    }

    fn shutdown(&self) -> futures::future::BoxFuture<'static, ()> {
        for q in &self.inner.queues {
            let _ = q.lock().tx.send(None);
        }
        let threads: Vec<JoinHandle<()>> = std::mem::take(&mut *self.inner.threads.lock());
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
