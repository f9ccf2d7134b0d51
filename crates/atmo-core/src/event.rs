//! Events: what happened, as it happens.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::failure::RequestError;
use crate::id::RequestId;
use crate::status::RequestStatus;
use crate::time::Timestamp;

/// One event. `seq` increases by one per event of an engine, so a subscriber can resume or
/// notice a gap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Sequence number.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}

macro_rules! event_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal { $( $(#[$fdoc:meta])* $field:ident : $ty:ty ),* $(,)? } ),* $(,)?) => {
        /// What happened, with its details. Serialized with a `"type"` tag such as
        /// `"request-completed"`.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all_fields = "camelCase")]
        #[non_exhaustive]
        // Fields are named for what they carry (`request_id`, `bank_id`, ...); the variant's doc
        // says what happened.
        #[allow(missing_docs)]
        pub enum EventKind {
            $( $(#[$doc])* #[serde(rename = $name)] $variant { $( $(#[$fdoc])* $field: $ty ),* }, )*
        }

        /// The kind of an event without its details, for filtering and `on(kind, ...)`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum EventType {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )*
        }

        impl EventType {
            /// Every event type.
            pub const ALL: &'static [EventType] = &[ $( EventType::$variant ),* ];

            /// The name (`"request-completed"`).
            pub const fn as_str(self) -> &'static str {
                match self { $( EventType::$variant => $name, )* }
            }
        }

        impl EventKind {
            /// The type of this event.
            pub const fn event_type(&self) -> EventType {
                match self { $( EventKind::$variant { .. } => EventType::$variant, )* }
            }
        }
    };
}

event_kinds! {
    /// A request was accepted.
    RequestSubmitted = "request-submitted" { request_id: RequestId, task_id: Arc<str>, priority: u8, client_id: Option<Arc<str>>, status: RequestStatus },
    /// A bank claimed a request.
    RequestAssigned = "request-assigned" { request_id: RequestId, bank_id: Arc<str>, attempt: u32 },
    /// A worker started a request.
    RequestProcessing = "request-processing" { request_id: RequestId, bank_id: Option<Arc<str>>, worker_id: Option<Arc<str>>, attempt: u32 },
    /// Any status change (emitted alongside the specific event).
    RequestStatusChanged = "request-status-changed" { request_id: RequestId, from: Option<RequestStatus>, to: RequestStatus, attempt: u32 },
    /// A running request reported progress.
    RequestProgress = "request-progress" { request_id: RequestId, attempt: u32, percent: f32, message: Option<String> },
    /// A failed or timed-out attempt will be retried.
    RequestRetrying = "request-retrying" { request_id: RequestId, attempt: u32, run_at: Timestamp, error: RequestError },
    /// A request completed.
    RequestCompleted = "request-completed" { request_id: RequestId, task_id: Arc<str>, bank_id: Option<Arc<str>>, processing_time_ms: Option<f64> },
    /// A request failed for good.
    RequestFailed = "request-failed" { request_id: RequestId, task_id: Arc<str>, error: RequestError },
    /// A request was cancelled.
    RequestCancelled = "request-cancelled" { request_id: RequestId, reason: String },
    /// An attempt ran out of time (`final` when no retry follows).
    RequestTimeout = "request-timeout" { request_id: RequestId, attempt: u32, r#final: bool },
    /// A request whose worker was lost went back to pending.
    RequestRescued = "request-rescued" { request_id: RequestId, attempt: u32, reason: String },
    /// A bank was initialized.
    BankInitialized = "bank-initialized" { bank_id: Arc<str>, manifest: Option<String>, worker_count: usize },
    /// A bank changed status.
    BankStatusChanged = "bank-status-changed" { bank_id: Arc<str>, status: crate::bank::BankStatus },
    /// A worker was started.
    WorkerCreated = "worker-created" { worker_id: Arc<str>, bank_id: Arc<str> },
    /// A worker started a request.
    WorkerBusy = "worker-busy" { worker_id: Arc<str>, request_id: RequestId },
    /// A worker has nothing left to run.
    WorkerIdle = "worker-idle" { worker_id: Arc<str> },
    /// A worker failed (panic, crash, protocol error).
    WorkerError = "worker-error" { worker_id: Arc<str>, message: String },
    /// A worker stopped.
    WorkerTerminated = "worker-terminated" { worker_id: Arc<str> },
    /// A submission was refused because the queue is full.
    SystemOverload = "system-overload" { queued: usize, capacity: usize },
    /// The engine began shutting down.
    SystemShutdown = "system-shutdown" {},
}

impl EventKind {
    /// The request the event is about, if any.
    pub fn request_id(&self) -> Option<RequestId> {
        use EventKind::*;
        match self {
            RequestSubmitted { request_id, .. }
            | RequestAssigned { request_id, .. }
            | RequestProcessing { request_id, .. }
            | RequestStatusChanged { request_id, .. }
            | RequestProgress { request_id, .. }
            | RequestRetrying { request_id, .. }
            | RequestCompleted { request_id, .. }
            | RequestFailed { request_id, .. }
            | RequestCancelled { request_id, .. }
            | RequestTimeout { request_id, .. }
            | RequestRescued { request_id, .. }
            | WorkerBusy { request_id, .. } => Some(*request_id),
            _ => None,
        }
    }

    /// The bank the event is about, if known.
    pub fn bank_id(&self) -> Option<&str> {
        use EventKind::*;
        match self {
            RequestAssigned { bank_id, .. }
            | BankInitialized { bank_id, .. }
            | BankStatusChanged { bank_id, .. }
            | WorkerCreated { bank_id, .. } => Some(bank_id),
            RequestProcessing { bank_id, .. } | RequestCompleted { bank_id, .. } => bank_id.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_a_type_tag_and_camel_case_fields() {
        let e = Event {
            seq: 7,
            at: Timestamp::from_millis(0),
            kind: EventKind::WorkerIdle { worker_id: Arc::from("math/0") },
        };
        let v = serde_json::to_value(&e).unwrap_or_default();
        assert_eq!(v["type"], "worker-idle");
        assert_eq!(v["workerId"], "math/0");
        assert_eq!(v["seq"], 7);
        let back: Event = serde_json::from_value(v).unwrap_or_else(|_| e.clone());
        assert_eq!(back, e);
        assert_eq!(e.kind.event_type().as_str(), "worker-idle");
    }
}
