//! One process's life: the `worker-ready` handshake, pipelined `execute-task` writes,
//! `cancel-task` and its grace, heartbeats, replies read as they come, stderr to the log.

use super::supervisor::{End, kill, spawn};
use super::*;

pub(super) async fn run_process(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

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
}
