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
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Notify, mpsc, oneshot};

use super::banks::BankContext;
use super::executor::{Executor, Job, Outcome, Reporter, StartedJob};
use super::supervision::{CrashTracker, Supervision, SupervisionStats, check_ready};

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

/// How one process's life ended.
enum End {
    /// The bank is stopping and the process exited (or was killed) after `shutdown`.
    Stopped,
    /// It died, was killed, or never became ready.
    Failed(String),
}

async fn supervise(
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    index: usize,
    mut rx: mpsc::UnboundedReceiver<Job>,
    ready_tx: oneshot::Sender<Result<(), String>>,
) {
    let mut ready_tx = Some(ready_tx);
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut crashes = CrashTracker::default();
    loop {
        let born = shared.now();
        let end = run_process(&shared, &slot, index, &mut rx, &mut pending, &mut ready_tx).await;
        let reason = match end {
            End::Stopped => break,
            End::Failed(reason) => reason,
        };
        fail_inflight(&shared, &slot, &reason);
        if let Some(tx) = ready_tx.take() {
            // The first start failed: the bank is refused.
            let _ = tx.send(Err(reason));
            break;
        }
        if shared.stop.is_cancelled() {
            break;
        }
        shared.stats.restarted();
        tracing::warn!(worker_id = &*slot.worker_id, "worker process lost: {reason}; restarting");
        let plan = crashes.crashed(&shared.config, born, shared.now());
        if let Some(count) = plan.crash_loop {
            let message = format!(
                "worker process crashed {count} times within {} s (last: {reason}); bank `{}` is marked error",
                shared.config.crash_loop_window.as_secs(),
                shared.bank_id
            );
            if !shared.failed.swap(true, Ordering::AcqRel) {
                tracing::error!(worker_id = &*slot.worker_id, "{message}");
            }
            shared.reporter.worker_failed(index, message, true);
            // What waits here would wait for a process that may not come back: fail it so the
            // retry policy moves it on.
            while let Ok(job) = rx.try_recv() {
                pending.push_back(job);
            }
            for job in pending.drain(..) {
                shared.reporter.finished(&job, Outcome::WorkerLost(reason.clone()), Duration::ZERO);
            }
        } else {
            shared.reporter.worker_failed(index, reason.clone(), false);
        }
        let backoff = plan.backoff;
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shared.stop.cancelled() => break,
        }
    }
    // Jobs that never reached a process: the engine decides what becomes of them (on shutdown
    // they are rescued or cancelled with the rest).
    rx.close();
    while let Ok(job) = rx.try_recv() {
        pending.push_back(job);
    }
    for job in pending {
        shared.reporter.skipped(&job);
    }
    slot.pid.store(0, Ordering::Relaxed);
}

/// Fails every attempt the lost process held: a `system` failure the retry policy may retry.
fn fail_inflight(shared: &Shared, slot: &Slot, reason: &str) {
    let lost: Vec<InFlight> = slot.inflight.lock().drain().map(|(_, f)| f).collect();
    let now = shared.now();
    for f in lost {
        let outcome = Outcome::WorkerLost(format!("{reason} while running the request"));
        if f.start_reported {
            shared.reporter.finished(&f.job, outcome, now.saturating_since(f.sent));
        } else {
            shared.reporter.finished_without_start(&f.job, outcome, now.saturating_since(f.sent));
        }
    }
}

fn spawn(shared: &Shared, slot: &Slot) -> std::io::Result<Child> {
    let c = &shared.command;
    let mut cmd = Command::new(&c.program);
    cmd.args(&c.args)
        .envs(&c.env)
        .env("ATMO_WORKER_ID", &*slot.worker_id)
        .env("ATMO_BANK_ID", &*shared.bank_id)
        .env("ATMO_PROTOCOL_VERSION", PROTOCOL_VERSION.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = &c.working_dir {
        cmd.current_dir(dir);
    }
    cmd.spawn()
}

async fn run_process(
    shared: &Arc<Shared>,
    slot: &Arc<Slot>,
    index: usize,
    rx: &mut mpsc::UnboundedReceiver<Job>,
    pending: &mut VecDeque<Job>,
    ready_tx: &mut Option<oneshot::Sender<Result<(), String>>>,
) -> End {
    let worker_id = slot.worker_id.clone();
    let mut child = match spawn(shared, slot) {
        Ok(c) => c,
        Err(e) => return End::Failed(format!("cannot start `{}`: {e}", shared.command.program)),
    };
    slot.pid.store(child.id().unwrap_or(0), Ordering::Relaxed);
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        kill(&mut child).await;
        return End::Failed("the worker process has no stdio pipes".into());
    };
    let stderr_task = tokio::spawn(log_stderr(worker_id.clone(), stderr));
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();

    // Handshake.
    let window = match handshake(shared, &worker_id, &mut reader, &mut line).await {
        Ok(w) => w,
        Err(problem) => {
            kill(&mut child).await;
            stderr_task.abort();
            return End::Failed(problem);
        }
    };
    tracing::debug!(worker_id = &*worker_id, pid = slot.pid.load(Ordering::Relaxed), "worker process ready");
    if let Some(tx) = ready_tx.take() {
        let _ = tx.send(Ok(()));
    }
    if shared.failed.swap(false, Ordering::AcqRel) {
        tracing::info!(worker_id = &*worker_id, "worker process ready again; bank `{}` is active", shared.bank_id);
        shared.reporter.worker_recovered(index);
    }

    let wake = Arc::new(Notify::new());
    let last_seen = Arc::new(AtomicU64::new(shared.millis_now()));
    let reader_task =
        tokio::spawn(read_replies(shared.clone(), slot.clone(), reader, line, wake.clone(), last_seen.clone()));
    let mut writer = BufWriter::with_capacity(64 * 1024, stdin);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut batch = Vec::with_capacity(1024);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heartbeat = shared.now();
    let mut stopping = false;

    let end = loop {
        if let Err(e) = pump(shared, slot, window, pending, &mut out, &mut writer).await {
            break End::Failed(format!("cannot write to the worker process: {e}"));
        }
        tokio::select! {
            biased;
            status = child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                // Replies written just before the exit are still in the pipe: read them first.
                let _ = tokio::time::timeout(Duration::from_secs(1), reader_task).await;
                stderr_task.abort();
                slot.pid.store(0, Ordering::Relaxed);
                return End::Failed(format!("worker process exited ({status})"));
            }
            () = shared.stop.cancelled(), if !stopping => stopping = true,
            n = rx.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    stopping = true;
                }
                pending.extend(batch.drain(..));
            }
            () = wake.notified() => {}
            _ = tick.tick() => {
                match watch(shared, slot, &mut out, &mut last_heartbeat, &last_seen) {
                    Ok(()) => {}
                    Err(problem) => break End::Failed(problem),
                }
                if !out.is_empty() {
                    let written = writer.write_all(&out).await;
                    out.clear();
                    if let Err(e) = written.and(writer.flush().await) {
                        break End::Failed(format!("cannot write to the worker process: {e}"));
                    }
                }
                if stopping && pending.is_empty() && slot.inflight.lock().is_empty() {
                    break End::Stopped;
                }
            }
        }
    };
    match end {
        End::Stopped => {
            let grace = shared.config.shutdown_grace;
            let msg = EngineMessage::Shutdown(protocol::Shutdown { grace_ms: millis(grace) });
            let mut bytes = serde_json::to_vec(&msg).unwrap_or_default();
            bytes.push(b'\n');
            let _ = writer.write_all(&bytes).await;
            let _ = writer.flush().await;
            drop(writer); // closes stdin: a worker that reads to the end stops too
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                tracing::warn!(
                    worker_id = &*worker_id,
                    "worker did not exit within {} ms of shutdown; killing it",
                    grace.as_millis()
                );
                kill(&mut child).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), reader_task).await;
            stderr_task.abort();
            slot.pid.store(0, Ordering::Relaxed);
            End::Stopped
        }
        End::Failed(problem) => {
            kill(&mut child).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), reader_task).await;
            stderr_task.abort();
            slot.pid.store(0, Ordering::Relaxed);
            End::Failed(problem)
        }
    }
}

async fn kill(child: &mut Child) {
    let _ = child.start_kill();
    // Reaps it: no zombie is left behind.
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

/// Reads and checks `worker-ready`; returns how many tasks the worker takes at once.
async fn handshake<R: AsyncBufRead + Unpin>(
    shared: &Shared,
    worker_id: &str,
    reader: &mut R,
    line: &mut Vec<u8>,
) -> Result<usize, String> {
    let timeout = shared.config.ready_timeout;
    let read = tokio::time::timeout(timeout, read_line(reader, line, shared.config.max_line_bytes)).await;
    let ready = match read {
        Err(_) => {
            return Err(format!("worker `{worker_id}` did not send `worker-ready` within {} ms", timeout.as_millis()));
        }
        Ok(Err(e)) => return Err(format!("cannot read from worker `{worker_id}`: {e}")),
        Ok(Ok(Line::Eof)) => return Err(format!("worker `{worker_id}` exited before sending `worker-ready`")),
        Ok(Ok(Line::TooLong(n))) => {
            return Err(format!("worker `{worker_id}` sent a first line of {n} bytes instead of `worker-ready`"));
        }
        Ok(Ok(Line::Complete)) => match serde_json::from_slice::<WorkerMessage>(line) {
            Ok(WorkerMessage::WorkerReady(r)) => r,
            Ok(other) => {
                return Err(format!("worker `{worker_id}` sent {} before `worker-ready`", message_name(&other)));
            }
            Err(e) => {
                return Err(format!("worker `{worker_id}` sent a malformed first line ({e}): {}", excerpt(line)));
            }
        },
    };
    check_ready(&ready, &shared.manifest).map_err(|p| format!("worker `{worker_id}` was refused: {p}"))
}

fn message_name(m: &WorkerMessage) -> &'static str {
    match m {
        WorkerMessage::WorkerReady(_) => "`worker-ready`",
        WorkerMessage::TaskComplete(_) => "`task-complete`",
        WorkerMessage::TaskProgress(_) => "`task-progress`",
        WorkerMessage::Heartbeat(_) => "`heartbeat`",
    }
}

/// `execute-task`, serialized from borrowed parts (the parameters are not copied).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecuteTaskRef<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: RequestId,
    task_id: &'a str,
    parameters: &'a Value,
    attempt: u32,
    timestamp: i64,
    timeout_ms: u64,
    deadline: i64,
}

fn execute_line(out: &mut Vec<u8>, job: &Job, now_ms: i64) {
    let timeout_ms = millis(job.timeout);
    let msg = ExecuteTaskRef {
        kind: "execute-task",
        request_id: job.request_id,
        task_id: &job.task_id,
        parameters: &job.parameters,
        attempt: job.attempt,
        timestamp: now_ms,
        timeout_ms,
        deadline: now_ms.saturating_add(i64::try_from(timeout_ms).unwrap_or(i64::MAX)),
    };
    // Serializing plain JSON values into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &msg);
    out.push(b'\n');
}

/// Writes queued jobs while the process has room, then flushes once.
async fn pump(
    shared: &Shared,
    slot: &Slot,
    window: usize,
    pending: &mut VecDeque<Job>,
    out: &mut Vec<u8>,
    writer: &mut BufWriter<ChildStdin>,
) -> std::io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let now = shared.now();
    let now_ms = now.as_millis();
    {
        let mut inflight = slot.inflight.lock();
        let mut deferred = Vec::new();
        while inflight.len() < window {
            let Some(job) = pending.pop_front() else { break };
            if job.cancel.is_cancelled() {
                shared.reporter.skipped(&job);
                continue;
            }
            if inflight.contains_key(&job.request_id) {
                // The previous attempt of this request is still being cancelled in this
                // process: replies carry only the request id, so this one waits its turn.
                deferred.push(job);
                continue;
            }
            execute_line(out, &job, now_ms);
            inflight.insert(job.request_id, InFlight { job, sent: now, start_reported: false, cancel_sent: None });
        }
        for job in deferred.into_iter().rev() {
            pending.push_front(job);
        }
    }
    if out.is_empty() {
        return Ok(());
    }
    let written = writer.write_all(out).await;
    out.clear();
    written?;
    writer.flush().await
}

/// The periodic checks: cancellations to pass on, processes that ignore them, heartbeats.
fn watch(
    shared: &Shared,
    slot: &Slot,
    out: &mut Vec<u8>,
    last_heartbeat: &mut Timestamp,
    last_seen: &AtomicU64,
) -> Result<(), String> {
    let now = shared.now();
    {
        let mut inflight = slot.inflight.lock();
        for f in inflight.values_mut() {
            match f.cancel_sent {
                None if f.job.cancel.is_cancelled() => {
                    let reason = if now.saturating_since(f.sent) >= f.job.timeout { "timeout" } else { "cancelled" };
                    let msg = EngineMessage::CancelTask(protocol::CancelTask {
                        request_id: f.job.request_id,
                        reason: reason.into(),
                    });
                    let _ = serde_json::to_writer(&mut *out, &msg);
                    out.push(b'\n');
                    f.cancel_sent = Some(now);
                }
                Some(at) if now.saturating_since(at) >= shared.config.cancel_grace => {
                    return Err(format!(
                        "the worker did not stop request {} within {} ms of `cancel-task`; killed",
                        f.job.request_id,
                        shared.config.cancel_grace.as_millis()
                    ));
                }
                _ => {}
            }
        }
    }
    if now.saturating_since(*last_heartbeat) >= shared.config.heartbeat_interval {
        *last_heartbeat = now;
        let msg = EngineMessage::Heartbeat(protocol::Heartbeat { timestamp: Some(now.as_millis()) });
        let _ = serde_json::to_writer(&mut *out, &msg);
        out.push(b'\n');
    }
    if let Some(limit) = shared.config.heartbeat_timeout {
        let silent = millis(now.saturating_since(Timestamp::EPOCH)).saturating_sub(last_seen.load(Ordering::Relaxed));
        if silent >= millis(limit) {
            return Err(format!("the worker wrote nothing for {silent} ms; killed"));
        }
    }
    Ok(())
}

/// Reads the process's stdout until it closes, reporting outcomes as they come.
async fn read_replies<R: AsyncBufRead + Unpin>(
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    mut reader: R,
    mut line: Vec<u8>,
    wake: Arc<Notify>,
    last_seen: Arc<AtomicU64>,
) {
    let max = shared.config.max_line_bytes;
    loop {
        let read = read_line(&mut reader, &mut line, max).await;
        last_seen.store(shared.millis_now(), Ordering::Relaxed);
        match read {
            Err(e) => {
                tracing::debug!(worker_id = &*slot.worker_id, "worker stdout closed: {e}");
                return;
            }
            Ok(Line::Eof) => return,
            Ok(Line::TooLong(n)) => {
                shared
                    .protocol_error(&slot.worker_id, &format!("a line of {n} bytes exceeds the limit of {max} bytes"));
            }
            Ok(Line::Complete) => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<WorkerMessage>(&line) {
                    Ok(msg) => {
                        if handle_message(&shared, &slot, msg) {
                            wake.notify_one();
                        }
                    }
                    Err(e) => shared.protocol_error(
                        &slot.worker_id,
                        &format!("malformed or unknown message ({e}): {}", excerpt(&line)),
                    ),
                }
            }
        }
    }
}

/// Applies one message; returns whether it freed a slot.
fn handle_message(shared: &Shared, slot: &Slot, msg: WorkerMessage) -> bool {
    match msg {
        WorkerMessage::TaskComplete(done) => {
            let id = done.request_id;
            let Some(f) = slot.inflight.lock().remove(&id) else {
                shared.protocol_error(
                    &slot.worker_id,
                    &format!("`task-complete` for request {id}, which this worker is not running"),
                );
                return false;
            };
            let outcome = match done.outcome() {
                Ok(TaskOutcome::Success(v)) => Outcome::Completed(v),
                Ok(TaskOutcome::Failure(e)) => Outcome::Failed(e),
                Err(problem) => {
                    shared.protocol_error(&slot.worker_id, &format!("`task-complete` for request {id}: {problem}"));
                    Outcome::Failed(TaskError::system(
                        "PROTOCOL_ERROR",
                        format!("the worker's reply was invalid: {problem}"),
                    ))
                }
            };
            let elapsed = shared.now().saturating_since(f.sent);
            if f.start_reported {
                shared.reporter.finished(&f.job, outcome, elapsed);
            } else {
                shared.reporter.finished_without_start(&f.job, outcome, elapsed);
            }
            true
        }
        WorkerMessage::TaskProgress(p) => {
            let attempt = slot.inflight.lock().get(&p.request_id).map(|f| f.job.attempt);
            match attempt {
                Some(attempt) => {
                    let percent = if p.progress.is_finite() { p.progress.clamp(0.0, 100.0) } else { 0.0 };
                    shared.reporter.report(p.request_id, attempt, percent, p.message);
                }
                None => shared.protocol_error(
                    &slot.worker_id,
                    &format!("`task-progress` for request {}, which this worker is not running", p.request_id),
                ),
            }
            false
        }
        WorkerMessage::Heartbeat(_) => false,
        WorkerMessage::WorkerReady(_) => {
            shared.protocol_error(&slot.worker_id, "a second `worker-ready`");
            false
        }
    }
}

async fn log_stderr<R: AsyncRead + Unpin>(worker_id: Arc<str>, stderr: R) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        match read_line(&mut reader, &mut line, 64 * 1024).await {
            Ok(Line::Complete) => {
                tracing::info!(target: "atmo::worker", worker_id = &*worker_id, "{}", String::from_utf8_lossy(&line).trim_end());
            }
            Ok(Line::TooLong(n)) => {
                tracing::info!(target: "atmo::worker", worker_id = &*worker_id, "({n} bytes of output)")
            }
            Ok(Line::Eof) | Err(_) => return,
        }
    }
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// A line (without its newline) is in the buffer.
    Complete,
    /// A line of this many bytes was longer than the limit and was skipped.
    TooLong(usize),
    /// The stream ended.
    Eof,
}

/// Reads one `\n`-terminated line into `buf` (cleared first), never holding more than `max`
/// bytes: a longer line is consumed and reported as [`Line::TooLong`].
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut skipped = 0usize;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if skipped > 0 {
                Line::TooLong(skipped)
            } else if buf.is_empty() {
                Line::Eof
            } else {
                Line::Complete
            });
        }
        let (chunk, found) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if skipped > 0 || buf.len() + chunk.len() > max {
            skipped += buf.len() + chunk.len();
            buf.clear();
        } else {
            buf.extend_from_slice(chunk);
        }
        let used = found.unwrap_or(available.len());
        reader.consume(used);
        if found.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(if skipped > 0 { Line::TooLong(skipped) } else { Line::Complete });
        }
    }
}

fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
    if line.len() > 120 { format!("{text}…") } else { text }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use atmo_core::ActionDefinition;
    use atmo_core::protocol::{ManifestId, WorkerReady};

    fn manifest() -> Manifest {
        Manifest::builder("math")
            .version("1.2.0")
            .action(ActionDefinition::new("ADD").lenient())
            .action(ActionDefinition::new("MUL").lenient())
            .max_concurrent_tasks(3)
            .build()
            .unwrap()
    }

    fn ready(name: &str, version: &str, actions: &[&str]) -> WorkerReady {
        WorkerReady {
            protocol_version: PROTOCOL_VERSION,
            manifest: ManifestId { name: name.into(), version: version.into() },
            actions: actions.iter().map(|s| (*s).to_owned()).collect(),
            max_concurrent_tasks: None,
            pid: None,
        }
    }

    #[test]
    fn a_matching_worker_is_accepted_with_the_manifest_concurrency() {
        assert_eq!(check_ready(&ready("math", "1.2.0", &["MUL", "ADD"]), &manifest()), Ok(3));
        assert_eq!(check_ready(&ready("math", "", &["ADD", "MUL"]), &manifest()), Ok(3));
        let mut r = ready("math", "1.2.0", &["ADD", "MUL"]);
        r.max_concurrent_tasks = Some(8);
        assert_eq!(check_ready(&r, &manifest()), Ok(8));
    }

    #[test]
    fn every_difference_is_named() {
        let mut r = ready("maths", "1.2.0", &["ADD", "DIV"]);
        r.protocol_version = 2;
        let e = check_ready(&r, &manifest()).unwrap_err();
        assert!(e.contains("protocol version 2"), "{e}");
        assert!(e.contains("manifest `maths`, the bank runs `math`"), "{e}");
        assert!(e.contains("lacks the actions MUL"), "{e}");
        assert!(e.contains("does not declare: DIV"), "{e}");
        let e = check_ready(&ready("math", "0.9.0", &["ADD", "MUL"]), &manifest()).unwrap_err();
        assert!(e.contains("version 0.9.0, the bank runs version 1.2.0"), "{e}");
    }

    #[test]
    fn the_borrowed_execute_line_matches_the_protocol_type() {
        let job = Job {
            request_id: RequestId::from_u128(42),
            attempt: 2,
            task_id: Arc::from("ADD"),
            parameters: Arc::new(serde_json::json!({"a": 1, "b": [2, 3]})),
            cancel: CancellationToken::new(),
            timeout: Duration::from_millis(1500),
            worker: 0,
            bank: 0,
        };
        let mut out = Vec::new();
        execute_line(&mut out, &job, 1_000);
        assert_eq!(out.last(), Some(&b'\n'));
        let parsed: EngineMessage = serde_json::from_slice(&out[..out.len() - 1]).unwrap();
        assert_eq!(
            parsed,
            EngineMessage::ExecuteTask(protocol::ExecuteTask {
                request_id: job.request_id,
                task_id: "ADD".into(),
                parameters: serde_json::json!({"a": 1, "b": [2, 3]}),
                attempt: 2,
                timestamp: 1_000,
                timeout_ms: 1500,
                deadline: 2_500,
            })
        );
    }

    #[tokio::test]
    async fn lines_are_bounded_and_the_reader_recovers_after_an_oversize_one() {
        let data = b"{\"a\":1}\r\n0123456789ABCDEF\nok\nlast-without-newline".to_vec();
        // A tiny buffer makes lines span several reads.
        let mut reader = BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf, 10).await.unwrap(), Line::Complete);
        assert_eq!(buf, b"{\"a\":1}");
        assert_eq!(read_line(&mut reader, &mut buf, 10).await.unwrap(), Line::TooLong(16));
        assert_eq!(read_line(&mut reader, &mut buf, 10).await.unwrap(), Line::Complete);
        assert_eq!(buf, b"ok");
        assert_eq!(read_line(&mut reader, &mut buf, 100).await.unwrap(), Line::Complete);
        assert_eq!(buf, b"last-without-newline");
        assert_eq!(read_line(&mut reader, &mut buf, 100).await.unwrap(), Line::Eof);
    }
}
