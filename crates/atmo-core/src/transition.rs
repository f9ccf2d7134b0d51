//! State changes as values: a [`Transition`] names the request, the state it is expected to be
//! in (compare-and-set), and the [`Change`]. Constructors exist only for legal transitions, and
//! [`apply_transition`] is the one place where a change is checked and written to a request, so
//! every store behaves the same.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use crate::failure::RequestError;
use crate::id::RequestId;
use crate::request::{HistoryEntry, Progress, Request};
use crate::status::RequestStatus;
use crate::time::Timestamp;

/// The state a transition expects to find (compare-and-set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this status and attempt: a late report from an earlier attempt cannot match.
    Exactly {
        /// Expected status.
        status: RequestStatus,
        /// Expected attempt number.
        attempt: u32,
    },
    /// Any of these statuses, at this attempt.
    OneOf {
        /// Acceptable statuses.
        statuses: &'static [RequestStatus],
        /// Expected attempt number.
        attempt: u32,
    },
    /// Any non-terminal status (cancel).
    Active,
}

impl Expect {
    /// Whether `req` is in the expected state.
    pub fn matches(&self, req: &Request) -> bool {
        match *self {
            Expect::Exactly { status, attempt } => req.status == status && req.attempts == attempt,
            Expect::OneOf { statuses, attempt } => statuses.contains(&req.status) && req.attempts == attempt,
            Expect::Active => !req.status.is_terminal(),
        }
    }
}

/// What a transition does.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Change {
    /// assigned → processing.
    Start {
        /// The worker that started it.
        worker_id: Arc<str>,
    },
    /// processing → completed.
    Complete {
        /// The result.
        result: Arc<Value>,
    },
    /// processing → failed.
    Fail {
        /// The error.
        error: RequestError,
    },
    /// processing → scheduled (retry after backoff).
    Retry {
        /// The attempt's error.
        error: RequestError,
        /// When to retry.
        run_at: Timestamp,
    },
    /// processing → timed_out.
    TimeOut {
        /// The timeout error.
        error: RequestError,
    },
    /// assigned/processing → pending: the worker was lost.
    Rescue {
        /// Why (`"worker crashed"`, `"lease expired"`, `"engine restarted"`).
        reason: Cow<'static, str>,
    },
    /// scheduled → pending: its time came.
    Promote,
    /// any non-terminal → cancelled.
    Cancel {
        /// Why.
        reason: Cow<'static, str>,
    },
    /// No status change: the running attempt reported progress.
    Progress(Progress),
}

impl Change {
    /// The status the change leads to (`None` for progress).
    pub fn target(&self) -> Option<RequestStatus> {
        Some(match self {
            Change::Start { .. } => RequestStatus::Processing,
            Change::Complete { .. } => RequestStatus::Completed,
            Change::Fail { .. } => RequestStatus::Failed,
            Change::Retry { .. } => RequestStatus::Scheduled,
            Change::TimeOut { .. } => RequestStatus::TimedOut,
            Change::Rescue { .. } | Change::Promote => RequestStatus::Pending,
            Change::Cancel { .. } => RequestStatus::Cancelled,
            Change::Progress(_) => return None,
        })
    }
}

/// A state change of one request, guarded by the state it expects.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    id: RequestId,
    expect: Expect,
    change: Change,
    at: Timestamp,
}

const RUNNING: &[RequestStatus] = &[RequestStatus::Assigned, RequestStatus::Processing];

impl Transition {
    /// The worker started attempt `attempt`.
    pub fn start(id: RequestId, attempt: u32, worker_id: Arc<str>, at: Timestamp) -> Self {
        Self::exactly(id, RequestStatus::Assigned, attempt, Change::Start { worker_id }, at)
    }

    /// Attempt `attempt` completed with `result`.
    pub fn complete(id: RequestId, attempt: u32, result: Arc<Value>, at: Timestamp) -> Self {
        Self::exactly(id, RequestStatus::Processing, attempt, Change::Complete { result }, at)
    }

    /// Attempt `attempt` failed for good.
    pub fn fail(id: RequestId, attempt: u32, error: RequestError, at: Timestamp) -> Self {
        Self::exactly(id, RequestStatus::Processing, attempt, Change::Fail { error }, at)
    }

    /// Attempt `attempt` failed and will be retried at `run_at`.
    pub fn retry(id: RequestId, attempt: u32, error: RequestError, run_at: Timestamp, at: Timestamp) -> Self {
        Self::exactly(id, RequestStatus::Processing, attempt, Change::Retry { error, run_at }, at)
    }

    /// Attempt `attempt` ran out of time and will not be retried.
    pub fn time_out(id: RequestId, attempt: u32, error: RequestError, at: Timestamp) -> Self {
        Self::exactly(id, RequestStatus::Processing, attempt, Change::TimeOut { error }, at)
    }

    /// The worker holding attempt `attempt` (assigned or processing) was lost.
    pub fn rescue(id: RequestId, attempt: u32, reason: impl Into<Cow<'static, str>>, at: Timestamp) -> Self {
        Transition {
            id,
            expect: Expect::OneOf { statuses: RUNNING, attempt },
            change: Change::Rescue { reason: reason.into() },
            at,
        }
    }

    /// A scheduled request's time came.
    pub fn promote(id: RequestId, attempt: u32, at: Timestamp) -> Self {
        Self::exactly(id, RequestStatus::Scheduled, attempt, Change::Promote, at)
    }

    /// Cancel, whatever non-terminal state the request is in.
    pub fn cancel(id: RequestId, reason: impl Into<Cow<'static, str>>, at: Timestamp) -> Self {
        Transition { id, expect: Expect::Active, change: Change::Cancel { reason: reason.into() }, at }
    }

    /// Progress of attempt `attempt` (no status change).
    pub fn progress(id: RequestId, attempt: u32, progress: Progress) -> Self {
        let at = progress.at;
        Transition { id, expect: Expect::OneOf { statuses: RUNNING, attempt }, change: Change::Progress(progress), at }
    }

    fn exactly(id: RequestId, status: RequestStatus, attempt: u32, change: Change, at: Timestamp) -> Self {
        Transition { id, expect: Expect::Exactly { status, attempt }, change, at }
    }

    /// The request.
    pub fn id(&self) -> RequestId {
        self.id
    }
    /// The expected state.
    pub fn expect(&self) -> Expect {
        self.expect
    }
    /// The change.
    pub fn change(&self) -> &Change {
        &self.change
    }
    /// The change, taken out of the transition.
    pub fn into_change(self) -> Change {
        self.change
    }
    /// When it happens.
    pub fn at(&self) -> Timestamp {
        self.at
    }
}

/// Why a transition was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionRejected {
    /// No such request.
    #[error("request not found")]
    NotFound,
    /// The request is not in the expected state (it moved on: cancelled, timed out, rescued).
    #[error("request is {current} (attempt {attempt}), not in the expected state")]
    StateMismatch {
        /// Its status.
        current: RequestStatus,
        /// Its attempt.
        attempt: u32,
    },
    /// The lifecycle forbids the change from the current state.
    #[error("illegal transition {from} -> {to}")]
    Illegal {
        /// From.
        from: RequestStatus,
        /// To.
        to: RequestStatus,
    },
}

/// Applies `t` to `req`: checks the expected state and the lifecycle, updates the fields and
/// appends the history entry. Returns the status the request left.
///
/// # Errors
/// [`TransitionRejected`] when the state does not match or the change is illegal; `req` is then
/// untouched.
pub fn apply_transition(req: &mut Request, t: &Transition) -> Result<RequestStatus, TransitionRejected> {
    if !t.expect.matches(req) {
        return Err(TransitionRejected::StateMismatch { current: req.status, attempt: req.attempts });
    }
    let from = req.status;
    let Some(to) = t.change.target() else {
        if let Change::Progress(p) = &t.change {
            req.progress = Some(Box::new(p.clone()));
        }
        return Ok(from);
    };
    if !from.can_transition_to(to) {
        return Err(TransitionRejected::Illegal { from, to });
    }
    let at = t.at;
    let mut worker = req.worker_id.clone();
    let reason: Cow<'static, str> = match &t.change {
        Change::Start { worker_id } => {
            req.worker_id = Some(worker_id.clone());
            worker = Some(worker_id.clone());
            req.started_at = Some(at);
            // Progress may be reported before the start is recorded (a worker's first words
            // can overtake the engine's harvest of its start): it stays.
            Cow::Borrowed("worker started")
        }
        Change::Complete { result } => {
            req.result = Some(result.clone());
            req.completed_at = Some(at);
            Cow::Borrowed("completed")
        }
        Change::Fail { error } => {
            req.errors.push(error.clone());
            req.completed_at = Some(at);
            Cow::Owned(format!("failed: {}", error.code))
        }
        Change::Retry { error, run_at } => {
            req.errors.push(error.clone());
            req.run_at = Some(*run_at);
            // The next attempt starts from nothing.
            req.progress = None;
            Cow::Owned(format!("retry scheduled after {}", error.code))
        }
        Change::TimeOut { error } => {
            req.errors.push(error.clone());
            req.completed_at = Some(at);
            Cow::Borrowed("timed out")
        }
        Change::Rescue { reason } => {
            req.progress = None;
            reason.clone()
        }
        Change::Promote => {
            req.run_at = None;
            Cow::Borrowed("run time reached")
        }
        Change::Cancel { reason } => {
            req.completed_at = Some(at);
            reason.clone()
        }
        Change::Progress(_) => Cow::Borrowed(""),
    };
    req.status = to;
    req.updated_at = at;
    req.history.push(HistoryEntry {
        from: Some(from),
        to,
        at,
        reason,
        bank_id: req.bank_id.clone(),
        worker_id: worker,
        attempt: req.attempts,
    });
    Ok(from)
}

/// Applies a claim to a pending request: pending → assigned, attempt counted, bank recorded.
///
/// # Errors
/// [`TransitionRejected`] when the request is not pending.
pub fn apply_claim(req: &mut Request, bank_id: &Arc<str>, at: Timestamp) -> Result<(), TransitionRejected> {
    if req.status != RequestStatus::Pending {
        return Err(TransitionRejected::Illegal { from: req.status, to: RequestStatus::Assigned });
    }
    req.status = RequestStatus::Assigned;
    req.attempts += 1;
    req.bank_id = Some(bank_id.clone());
    req.worker_id = None;
    req.assigned_at = Some(at);
    req.started_at = None;
    req.updated_at = at;
    req.history.push(HistoryEntry {
        from: Some(RequestStatus::Pending),
        to: RequestStatus::Assigned,
        at,
        reason: Cow::Borrowed("claimed by bank"),
        bank_id: Some(bank_id.clone()),
        worker_id: None,
        attempt: req.attempts,
    });
    Ok(())
}
