//! Every state change of the engine goes through [`Engine::commit`]: the store applies the
//! transitions (compare-and-set), then what took effect is published: events, waiters, the
//! intake count, wake-ups.

use std::sync::Arc;

use atmo_core::{ApplyOutcome, Change, ErrorCategory, EventKind, RequestId, RequestResult, RequestStatus, Transition};
use serde_json::Value;

use super::state::Engine;
use super::waiters;

/// Buffers that [`Engine::commit_drain`] reuses from one batch to the next.
#[derive(Debug, Default)]
pub(crate) struct CommitScratch {
    finished: Vec<(RequestId, RequestResult)>,
    waiters: waiters::Scratch,
}

/// Reused buffers keep at most this many elements' room, so one huge batch does not hold its
/// memory for the engine's lifetime.
pub(crate) const SCRATCH_KEEP: usize = 16 * 1024;

/// Empties `v`, giving its memory back if it grew beyond [`SCRATCH_KEEP`] elements.
pub(crate) fn trim_scratch<T>(v: &mut Vec<T>) {
    v.clear();
    if v.capacity() > SCRATCH_KEEP {
        *v = Vec::new();
    }
}

impl CommitScratch {
    fn trim(&mut self) {
        trim_scratch(&mut self.finished);
        self.waiters.trim();
    }
}

impl Engine {
    /// Applies transitions through the store, then publishes what took effect: events, waiters,
    /// the intake count, wake-ups. Every state change of the engine goes through here.
    pub(crate) async fn commit(
        &self,
        transitions: Vec<Transition>,
    ) -> Result<Vec<ApplyOutcome>, atmo_core::StoreError> {
        self.commit_or_return(transitions).await.map_err(|(e, _)| e)
    }

    /// [`Engine::commit`], which on a store error hands the transitions back, so that a caller
    /// that retries them need not keep a copy of its own.
    pub(crate) async fn commit_or_return(
        &self,
        mut transitions: Vec<Transition>,
    ) -> Result<Vec<ApplyOutcome>, (atmo_core::StoreError, Vec<Transition>)> {
        match self.commit_drain(&mut transitions, &mut CommitScratch::default()).await {
            Ok(o) => Ok(o),
            Err(e) => Err((e, transitions)),
        }
    }

    /// [`Engine::commit`] for a caller that commits batch after batch: the transitions are
    /// drained from `transitions` (left as they were on a store error) and the buffers are
    /// reused, so a batch allocates no large vectors of its own. Large short-lived vectors are
    /// what the system allocator handles worst (fresh pages, and a consolidation of its free
    /// lists on every release).
    pub(crate) async fn commit_drain(
        &self,
        transitions: &mut Vec<Transition>,
        scratch: &mut CommitScratch,
    ) -> Result<Vec<ApplyOutcome>, atmo_core::StoreError> {
        if transitions.is_empty() {
            return Ok(Vec::new());
        }
        // The store only reads the transitions: what took effect is published from them after.
        let outcomes = self.store.apply_borrowed(transitions).await?;
        let finished = &mut scratch.finished;
        finished.clear();
        let mut wake_dispatch = false;
        let mut wake_schedule = false;
        let mut terminal = 0usize;
        let events_on = self.events.active();
        // Results are built only when someone waits for them.
        let waited = self.waiters.any();
        for (t, outcome) in transitions.drain(..).zip(&outcomes) {
            let Ok(applied) = outcome else { continue };
            let at = t.at();
            let change = t.into_change();
            let id = applied.id;
            if events_on && applied.from != applied.to {
                self.events.emit_at(
                    at,
                    EventKind::RequestStatusChanged {
                        request_id: id,
                        from: Some(applied.from),
                        to: applied.to,
                        attempt: applied.attempt,
                    },
                );
            }
            let processing_ms = applied.started_at.map(|s| at.saturating_since(s).as_secs_f64() * 1000.0);
            let result =
                |status: RequestStatus, payload: Option<Arc<Value>>, error: Option<atmo_core::RequestError>| {
                    RequestResult {
                        request_id: id,
                        status,
                        success: status == RequestStatus::Completed,
                        payload,
                        error,
                        processing_time_ms: processing_ms,
                        attempts: applied.attempt,
                        completed_at: Some(at),
                    }
                };
            match change {
                Change::Start { worker_id } if events_on => {
                    self.events.emit_at(
                        at,
                        EventKind::RequestProcessing {
                            request_id: id,
                            bank_id: applied.bank_id.clone(),
                            worker_id: Some(worker_id),
                            attempt: applied.attempt,
                        },
                    );
                }
                Change::Complete { result: value } => {
                    terminal += 1;
                    self.events.emit_with_at(at, || EventKind::RequestCompleted {
                        request_id: id,
                        task_id: applied.task_id.clone(),
                        bank_id: applied.bank_id.clone(),
                        processing_time_ms: processing_ms,
                    });
                    if waited {
                        finished.push((id, result(RequestStatus::Completed, Some(value), None)));
                    }
                }
                Change::Fail { error } => {
                    terminal += 1;
                    self.events.emit_with_at(at, || EventKind::RequestFailed {
                        request_id: id,
                        task_id: applied.task_id.clone(),
                        error: error.clone(),
                    });
                    if waited {
                        finished.push((id, result(RequestStatus::Failed, None, Some(error))));
                    }
                }
                Change::TimeOut { error } => {
                    terminal += 1;
                    self.events.emit_with_at(at, || EventKind::RequestTimeout {
                        request_id: id,
                        attempt: applied.attempt,
                        r#final: true,
                    });
                    if waited {
                        finished.push((id, result(RequestStatus::TimedOut, None, Some(error))));
                    }
                }
                Change::Retry { error, run_at } => {
                    wake_schedule = true;
                    if events_on {
                        if error.category == ErrorCategory::Timeout {
                            self.events.emit_at(
                                at,
                                EventKind::RequestTimeout { request_id: id, attempt: applied.attempt, r#final: false },
                            );
                        }
                        self.events.emit_at(
                            at,
                            EventKind::RequestRetrying { request_id: id, attempt: applied.attempt, run_at, error },
                        );
                    }
                }
                Change::Rescue { reason } => {
                    wake_dispatch = true;
                    self.events.emit_with_at(at, || EventKind::RequestRescued {
                        request_id: id,
                        attempt: applied.attempt,
                        reason: reason.into_owned(),
                    });
                }
                Change::Promote => wake_dispatch = true,
                Change::Cancel { reason } => {
                    terminal += 1;
                    self.events.emit_with_at(at, || EventKind::RequestCancelled {
                        request_id: id,
                        reason: reason.to_string(),
                    });
                    if waited {
                        finished.push((id, result(RequestStatus::Cancelled, None, None)));
                    }
                }
                Change::Progress(p) => {
                    self.events.emit_with_at(at, || EventKind::RequestProgress {
                        request_id: id,
                        attempt: applied.attempt,
                        percent: p.percent,
                        message: p.message.clone(),
                    });
                }
                _ => {}
            }
        }
        self.intake.finished(terminal);
        self.waiters.complete_many(finished, &mut scratch.waiters);
        scratch.trim();
        if wake_dispatch {
            self.wake.requests_ready();
        }
        if wake_schedule {
            self.wake.scheduled();
        }
        Ok(outcomes)
    }

    /// Takes a running attempt off this engine's books: its worker slot and bank capacity are
    /// free again. Returns whether it was still held.
    pub(crate) fn release_running(&self, id: RequestId, attempt: u32, cancel: bool) -> bool {
        let Some(entry) = self.running.remove_attempt(id, attempt) else { return false };
        if cancel {
            entry.token.cancel();
        }
        if let Some(bank) = self.registry.bank_at(entry.bank) {
            bank.release(1);
        }
        self.wake.capacity_freed();
        true
    }
}
