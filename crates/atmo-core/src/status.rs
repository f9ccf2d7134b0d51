//! The request lifecycle: [`RequestStatus`] and the table of legal transitions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a request is in its lifecycle.
///
/// ```text
///  submit ─▶ pending ─▶ assigned ─▶ processing ─▶ completed
///     │         ▲ ▲                     │  │
///     │         │ └──── rescued ◀───────┘  ├─▶ failed
///     └─▶ scheduled ◀──── retry ───────────┤
///                                          └─▶ timed_out
///  any non-terminal ─▶ cancelled
/// ```
///
/// Every change of status goes through [`RequestStatus::can_transition_to`], and is appended to
/// the request's history. Terminal states never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum RequestStatus {
    /// Ready to run, waiting for a bank with spare capacity.
    ///
    /// In: `submit` without a delay; the scheduler when a `scheduled` request's `run_at` arrives;
    /// the rescuer when the worker holding an `assigned` or `processing` request was lost.
    /// Out: a bank claims it (`assigned`); cancel (`cancelled`).
    Pending = 0,
    /// Waiting for a time (`run_at`): a delayed submission or a retry's backoff.
    ///
    /// In: `submit` with `run_at`/`delay`; a failed or timed-out attempt that will be retried.
    /// Out: the scheduler moves it to `pending` at `run_at`; cancel (`cancelled`).
    Scheduled = 1,
    /// Claimed by a bank and handed to one of its workers, not started yet.
    ///
    /// In: a bank's claim of a `pending` request (the attempt count goes up by one).
    /// Out: the worker starts it (`processing`); the worker is lost (`pending`, rescued); cancel.
    Assigned = 2,
    /// A worker is running the handler.
    ///
    /// In: the worker reports that it started. Out: the handler's outcome (`completed`, `failed`,
    /// or `scheduled` for a retry), the timeout (`timed_out`, or `scheduled` for a retry), a lost
    /// worker (`pending`, rescued), cancel (`cancelled`).
    Processing = 3,
    /// Terminal: the handler returned a result.
    Completed = 4,
    /// Terminal: the last attempt failed with an error that is not retryable, or no retries are left.
    Failed = 5,
    /// Terminal: the last attempt ran out of time and no retries are left.
    TimedOut = 6,
    /// Terminal: cancelled by a client (or by shutdown) before it finished.
    Cancelled = 7,
}

impl RequestStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [RequestStatus; 8] = [
        RequestStatus::Pending,
        RequestStatus::Scheduled,
        RequestStatus::Assigned,
        RequestStatus::Processing,
        RequestStatus::Completed,
        RequestStatus::Failed,
        RequestStatus::TimedOut,
        RequestStatus::Cancelled,
    ];

    /// The lowercase name used in JSON and in the API (`"timed_out"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Scheduled => "scheduled",
            RequestStatus::Assigned => "assigned",
            RequestStatus::Processing => "processing",
            RequestStatus::Completed => "completed",
            RequestStatus::Failed => "failed",
            RequestStatus::TimedOut => "timed_out",
            RequestStatus::Cancelled => "cancelled",
        }
    }

    /// The status from its index in [`RequestStatus::ALL`].
    pub const fn from_index(i: u8) -> Option<RequestStatus> {
        match i {
            0 => Some(RequestStatus::Pending),
            1 => Some(RequestStatus::Scheduled),
            2 => Some(RequestStatus::Assigned),
            3 => Some(RequestStatus::Processing),
            4 => Some(RequestStatus::Completed),
            5 => Some(RequestStatus::Failed),
            6 => Some(RequestStatus::TimedOut),
            7 => Some(RequestStatus::Cancelled),
            _ => None,
        }
    }

    /// Completed, failed, timed out or cancelled: the request will never change again.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            RequestStatus::Completed | RequestStatus::Failed | RequestStatus::TimedOut | RequestStatus::Cancelled
        )
    }

    /// Held by a worker: assigned or processing.
    pub const fn is_running(self) -> bool {
        matches!(self, RequestStatus::Assigned | RequestStatus::Processing)
    }

    /// Whether the lifecycle allows moving from `self` to `to`.
    ///
    /// ```
    /// use atmo_core::RequestStatus::*;
    /// assert!(Pending.can_transition_to(Assigned));
    /// assert!(Processing.can_transition_to(Scheduled)); // a retry
    /// assert!(!Completed.can_transition_to(Pending));   // terminal states never change
    /// assert!(!Pending.can_transition_to(Processing));  // a worker must claim it first
    /// ```
    pub const fn can_transition_to(self, to: RequestStatus) -> bool {
        use RequestStatus::*;
        matches!(
            (self, to),
            (Pending, Assigned | Cancelled)
                | (Scheduled, Pending | Cancelled)
                | (Assigned, Processing | Pending | Cancelled)
                | (Processing, Completed | Failed | TimedOut | Scheduled | Pending | Cancelled)
        )
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that names no status.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown request status `{0}`; expected one of pending, scheduled, assigned, processing, completed, failed, timed_out, cancelled"
)]
pub struct UnknownStatus(pub String);

impl FromStr for RequestStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RequestStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s || (s == "timeout" && *st == RequestStatus::TimedOut))
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::RequestStatus::{self, *};

    #[test]
    fn terminal_states_have_no_way_out() {
        for from in RequestStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in RequestStatus::ALL {
                assert!(!from.can_transition_to(to), "{from} -> {to} must be illegal");
            }
        }
    }

    #[test]
    fn every_non_terminal_state_can_be_cancelled() {
        for from in RequestStatus::ALL.into_iter().filter(|s| !s.is_terminal()) {
            assert!(from.can_transition_to(Cancelled), "{from} must be cancellable");
        }
    }

    #[test]
    fn the_full_legal_table() {
        let legal = [
            (Pending, Assigned),
            (Pending, Cancelled),
            (Scheduled, Pending),
            (Scheduled, Cancelled),
            (Assigned, Processing),
            (Assigned, Pending),
            (Assigned, Cancelled),
            (Processing, Completed),
            (Processing, Failed),
            (Processing, TimedOut),
            (Processing, Scheduled),
            (Processing, Pending),
            (Processing, Cancelled),
        ];
        for from in RequestStatus::ALL {
            for to in RequestStatus::ALL {
                assert_eq!(from.can_transition_to(to), legal.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in RequestStatus::ALL {
            assert_eq!(s.as_str().parse::<RequestStatus>().ok(), Some(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::json!(s.as_str())));
            assert_eq!(RequestStatus::from_index(s as u8), Some(s));
        }
        assert!("done".parse::<RequestStatus>().is_err());
    }
}
