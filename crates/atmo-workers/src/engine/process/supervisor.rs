//! One worker slot's supervisor: runs its processes one after another, restarting a lost one
//! with backoff and reporting crash loops.

use super::session::run_process;
use super::*;

/// How one process's life ended.
pub(super) enum End {
    /// The bank is stopping and the process exited (or was killed) after `shutdown`.
    Stopped,
    /// It died, was killed, or never became ready.
    Failed(String),
}

pub(super) async fn supervise(
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

pub(super) fn spawn(shared: &Shared, slot: &Slot) -> std::io::Result<Child> {
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

pub(super) async fn kill(child: &mut Child) {
    let _ = child.start_kill();
    // Reaps it: no zombie is left behind.
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}
