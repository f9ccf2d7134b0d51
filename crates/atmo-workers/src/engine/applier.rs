//! The applier: turns what workers report into transitions, in batches, and enforces timeouts.
//!
//! One task owns the timeout set, so deadlines need no lock. Each batch of worker messages
//! becomes one `Store::apply` call.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use atmo_core::{
    BankStatus, ErrorCategory, EventKind, Progress, RequestError, RequestId, RequestStatus, TaskError, Timestamp,
    Transition,
};
use tokio::sync::mpsc;

use super::executor::{Outcome, WorkerMsg};
use super::running::RunningEntry;
use super::{CommitScratch, Engine, trim_scratch};

type Deadlines = BTreeSet<(Timestamp, u128, u32)>;

enum Meta {
    Start { at: Timestamp },
    Finish { bank: u32, at: Timestamp },
    Other,
}

/// What one batch changes in a bank's figures.
#[derive(Clone, Default)]
struct Tally {
    completed: u64,
    failed: u64,
    micros: u64,
    released: usize,
}

/// Jobs running longer than this without having reported their start are harvested from the
/// executors, so their status shows `processing` and their timeout runs from the real start.
const HARVEST_AFTER: Duration = Duration::from_millis(1);

pub(crate) async fn run(inner: Arc<Engine>, mut rx: mpsc::UnboundedReceiver<WorkerMsg>) {
    let mut buf = Vec::with_capacity(4096);
    let mut deadlines = Deadlines::new();
    let mut scratch = Scratch::default();
    loop {
        let next = deadlines.first().map(|d| d.0);
        let sleep = async {
            match next {
                Some(t) => inner.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let busy = inner.registry.any_busy();
        let harvest = async {
            if !busy {
                // Dispatching makes the engine busy; until then there is nothing to harvest.
                inner.wake.dispatched().await;
            }
            inner.sleep(HARVEST_AFTER).await;
        };
        tokio::select! {
            biased;
            n = rx.recv_many(&mut buf, 4096) => {
                if n == 0 {
                    break;
                }
                // The buffer is drained, not replaced: a fresh one per batch would be a large
                // allocation every time.
                process(&inner, buf.drain(..), &mut deadlines, &mut scratch).await;
            }
            () = sleep => fire_timeouts(&inner, &mut deadlines).await,
            () = harvest => harvest_starts(&inner, &mut deadlines).await,
            () = inner.shutdown.cancelled() => {
                // Apply what is already reported before stopping.
                while let Ok(msg) = rx.try_recv() {
                    buf.push(msg);
                }
                process(&inner, buf.drain(..), &mut deadlines, &mut scratch).await;
                break;
            }
        }
    }
}

/// Decides retry or failure for a failed attempt.
fn decide(
    id: RequestId,
    attempt: u32,
    error: TaskError,
    policy: &atmo_core::RetryPolicy,
    action_retryable: bool,
    now: Timestamp,
    timed_out: bool,
) -> Transition {
    let retry = policy.should_retry(attempt, error.category, error.retryable, action_retryable);
    let delay = error.retry_after;
    let recorded = RequestError::from_task_error(error, retry, attempt, now);
    if retry {
        let backoff = delay.unwrap_or_else(|| policy.backoff(attempt, fastrand::f64()));
        Transition::retry(id, attempt, recorded, now + backoff, now)
    } else if timed_out {
        Transition::time_out(id, attempt, recorded, now)
    } else {
        Transition::fail(id, attempt, recorded, now)
    }
}

/// The buffers of [`process`], reused from one batch to the next (see [`Engine::commit_drain`]).
#[derive(Default)]
struct Scratch {
    transitions: Vec<Transition>,
    metas: Vec<Meta>,
    finishes: Vec<(RequestId, u32, RunningEntry)>,
    ids: Vec<RequestId>,
    commit: CommitScratch,
}

impl Scratch {
    fn trim(&mut self) {
        trim_scratch(&mut self.transitions);
        trim_scratch(&mut self.metas);
        trim_scratch(&mut self.finishes);
        trim_scratch(&mut self.ids);
    }
}

async fn process(
    inner: &Arc<Engine>,
    batch: std::vec::Drain<'_, WorkerMsg>,
    deadlines: &mut Deadlines,
    scratch: &mut Scratch,
) {
    if batch.len() == 0 {
        return;
    }
    let Scratch { transitions, metas, finishes, ids, commit } = scratch;
    let banks = inner.registry.running_banks();
    // One reading per batch: the batch is applied at once, so its changes share a timestamp.
    let now = inner.clock.now();
    for msg in batch {
        match msg {
            WorkerMsg::Started { id, attempt, bank, worker } => {
                let Some(b) = banks.get(bank as usize) else { continue };
                b.activity.record_start(worker as usize, id, now);
                let worker_id = b.worker_ids.get(worker as usize).cloned().unwrap_or_else(|| b.id.clone());
                transitions.push(Transition::start(id, attempt, worker_id, now));
                metas.push(Meta::Start { at: now });
            }
            WorkerMsg::Finished { id, attempt, bank, worker, outcome, elapsed, unreported_start } => {
                let success = matches!(outcome, Outcome::Completed(_));
                if let Some(b) = banks.get(bank as usize) {
                    if unreported_start {
                        let at = now.saturating_sub(elapsed);
                        b.activity.record_start(worker as usize, id, at);
                        let worker_id = b.worker_ids.get(worker as usize).cloned().unwrap_or_else(|| b.id.clone());
                        transitions.push(Transition::start(id, attempt, worker_id, at));
                        // It already finished: no deadline to watch.
                        metas.push(Meta::Other);
                    }
                    b.activity.record_finish(worker as usize, elapsed, success, now);
                }
                // Whatever the store makes of the outcome, the worker is done with the attempt:
                // take it off the books now (one lock), free its slot once the batch is applied.
                let Some(entry) = inner.running.remove_attempt(id, attempt) else {
                    // The attempt was cancelled, timed out or rescued meanwhile: its late
                    // result is discarded.
                    tracing::debug!(request_id = %id, attempt, "discarding the late result of a finished attempt");
                    continue;
                };
                let (policy, retryable) = (&entry.policy, entry.action_retryable);
                let t = match outcome {
                    Outcome::Completed(v) => Transition::complete(id, attempt, Arc::new(v), now),
                    Outcome::Failed(e) => decide(id, attempt, e, policy, retryable, now, false),
                    Outcome::Panicked(message) => {
                        if let Some(b) = banks.get(bank as usize) {
                            let worker_id = b.worker_ids.get(worker as usize).cloned().unwrap_or_else(|| b.id.clone());
                            inner.events.emit_with(|| EventKind::WorkerError {
                                worker_id,
                                message: format!("handler panicked: {message}"),
                            });
                        }
                        let e = TaskError::system("HANDLER_PANIC", format!("the handler panicked: {message}"));
                        decide(id, attempt, e, policy, retryable, now, false)
                    }
                    Outcome::WorkerLost(message) => {
                        let e = TaskError::system("WORKER_LOST", message).with_category(ErrorCategory::System);
                        decide(id, attempt, e, policy, retryable, now, false)
                    }
                };
                finishes.push((id, attempt, entry));
                transitions.push(t);
                metas.push(Meta::Finish { bank, at: now });
            }
            WorkerMsg::Skipped { bank, worker } => {
                if let Some(b) = banks.get(bank as usize) {
                    b.activity.record_dropped(worker as usize);
                }
            }
            WorkerMsg::Health { bank, worker, problem, bank_wide } => {
                let Some(b) = banks.get(bank as usize) else { continue };
                let worker_id = b.worker_ids.get(worker as usize).cloned().unwrap_or_else(|| b.id.clone());
                let failing = problem.is_some();
                if let Some(message) = problem {
                    inner.events.emit_with(|| EventKind::WorkerError { worker_id, message });
                }
                // A crash loop turns an active bank to `error`; recovery turns it back. A bank
                // paused, draining or terminated meanwhile keeps that status.
                let change = match (bank_wide, failing, b.status()) {
                    (true, true, BankStatus::Active) => Some(BankStatus::Error),
                    (true, false, BankStatus::Error) => Some(BankStatus::Active),
                    _ => None,
                };
                if let Some(status) = change {
                    b.set_status(status);
                    inner.events.emit_with(|| EventKind::BankStatusChanged { bank_id: b.id.clone(), status });
                    inner.wake.banks_changed();
                }
            }
            WorkerMsg::Progress { id, attempt, percent, message, at } => {
                transitions.push(Transition::progress(
                    id,
                    attempt,
                    Progress { percent, message, at: at.unwrap_or(now) },
                ));
                metas.push(Meta::Other);
            }
        }
    }
    ids.extend(transitions.iter().map(Transition::id));
    let outcomes = commit_drain_until_stored(inner, transitions, commit).await;
    // The banks' figures move once per batch, not once per request.
    let mut tallies = vec![Tally::default(); banks.len()];
    for ((outcome, meta), id) in outcomes.into_iter().zip(metas.drain(..)).zip(ids.drain(..)) {
        match (outcome, meta) {
            (Ok(applied), Meta::Start { at }) => {
                inner.running.with(id, |e| {
                    if let Some(e) = e.filter(|e| e.attempt == applied.attempt) {
                        let deadline = at + e.timeout;
                        e.deadline = Some(deadline);
                        deadlines.insert((deadline, id.as_u128(), applied.attempt));
                    }
                });
            }
            (Ok(applied), Meta::Finish { bank, at }) => {
                if let Some(t) = tallies.get_mut(bank as usize) {
                    if applied.to == RequestStatus::Completed {
                        // Measured on the engine's clock, like the request's own timestamps.
                        let micros = applied.started_at.map_or(0, |s| at.saturating_since(s).as_micros());
                        t.completed += 1;
                        t.micros = t.micros.saturating_add(u64::try_from(micros).unwrap_or(u64::MAX));
                    } else {
                        t.failed += 1;
                    }
                }
            }
            _ => {}
        }
    }
    // Whatever happened in the store, a finished attempt no longer holds its worker's slot.
    let freed = !finishes.is_empty();
    for (id, attempt, entry) in finishes.drain(..) {
        if let Some(d) = entry.deadline {
            deadlines.remove(&(d, id.as_u128(), attempt));
        }
        if let Some(t) = tallies.get_mut(entry.bank as usize) {
            t.released += 1;
        }
    }
    for (b, t) in banks.iter().zip(tallies) {
        b.record_results(t.completed, t.failed, t.micros);
        if t.released > 0 {
            b.release(t.released);
        }
    }
    if freed {
        inner.wake.capacity_freed();
    }
    scratch.trim();
}

/// Commits worker outcomes, retrying with backoff while the store fails (a full disk, an I/O
/// error): what workers reported is never dropped, and this node's leases, which the lease
/// keeper keeps extending, would otherwise hold the requests forever. Meanwhile new reports
/// wait in the channel.
async fn commit_drain_until_stored(
    inner: &Arc<Engine>,
    transitions: &mut Vec<Transition>,
    scratch: &mut CommitScratch,
) -> Vec<atmo_core::ApplyOutcome> {
    let mut delay = Duration::from_millis(50);
    loop {
        match inner.commit_drain(transitions, scratch).await {
            Ok(o) => return o,
            Err(e) => {
                tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "store failed while applying worker outcomes");
                inner.sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// [`commit_drain_until_stored`] for the rarer batches (harvested starts, timeouts).
async fn commit_until_stored(inner: &Arc<Engine>, transitions: Vec<Transition>) -> Vec<atmo_core::ApplyOutcome> {
    let mut delay = Duration::from_millis(50);
    let mut transitions = transitions;
    loop {
        match inner.commit_or_return(transitions).await {
            Ok(o) => return o,
            Err((e, back)) => {
                transitions = back;
                tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "store failed while applying worker outcomes");
                inner.sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn harvest_starts(inner: &Arc<Engine>, deadlines: &mut Deadlines) {
    let banks = inner.registry.running_banks();
    let now = inner.clock.now();
    let mut transitions = Vec::new();
    for b in &banks {
        for s in b.executor.harvest_starts(HARVEST_AFTER) {
            let at = now.saturating_sub(s.running_for);
            b.activity.record_start(s.worker, s.request_id, at);
            let worker_id = b.worker_ids.get(s.worker).cloned().unwrap_or_else(|| b.id.clone());
            transitions.push(Transition::start(s.request_id, s.attempt, worker_id, at));
        }
    }
    if transitions.is_empty() {
        return;
    }
    let starts: Vec<(RequestId, Timestamp)> = transitions.iter().map(|t| (t.id(), t.at())).collect();
    let outcomes = commit_until_stored(inner, transitions).await;
    for (outcome, (id, at)) in outcomes.into_iter().zip(starts) {
        if let Ok(applied) = outcome {
            inner.running.with(id, |e| {
                if let Some(e) = e.filter(|e| e.attempt == applied.attempt) {
                    let deadline = at + e.timeout;
                    e.deadline = Some(deadline);
                    deadlines.insert((deadline, id.as_u128(), applied.attempt));
                }
            });
        }
    }
}

async fn fire_timeouts(inner: &Arc<Engine>, deadlines: &mut Deadlines) {
    let now = inner.clock.now();
    let mut transitions = Vec::new();
    while let Some(&(deadline, raw, attempt)) = deadlines.first() {
        if deadline > now {
            break;
        }
        deadlines.pop_first();
        let id = RequestId::from_u128(raw);
        let info = inner.running.with(id, |e| {
            e.filter(|e| e.attempt == attempt && e.deadline == Some(deadline))
                .map(|e| (e.policy.clone(), e.action_retryable, e.timeout))
        });
        let Some((policy, retryable, timeout)) = info else { continue };
        let error =
            TaskError::new("TIMEOUT", format!("the attempt exceeded its timeout of {} ms", timeout.as_millis()))
                .with_category(ErrorCategory::Timeout);
        transitions.push((decide(id, attempt, error, &policy, retryable, now, true), attempt));
    }
    if transitions.is_empty() {
        return;
    }
    let ids: Vec<(RequestId, u32)> = transitions.iter().map(|(t, a)| (t.id(), *a)).collect();
    let outcomes = commit_until_stored(inner, transitions.into_iter().map(|(t, _)| t).collect()).await;
    for (outcome, (id, attempt)) in outcomes.into_iter().zip(ids) {
        if outcome.is_ok() {
            // Stop the handler; the worker's late result will be discarded.
            if let Some(entry) = inner.running.remove_attempt(id, attempt) {
                entry.token.cancel();
                if let Some(b) = inner.registry.bank_at(entry.bank) {
                    b.release(1);
                    b.record_result(false, 0);
                    b.executor.timed_out(id, attempt);
                }
                inner.wake.capacity_freed();
            }
        }
    }
}
