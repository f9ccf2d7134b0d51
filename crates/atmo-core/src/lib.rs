//! # atmo-core
//!
//! The pure core of Atmo Workers: everything that is the same wherever workers run (threads,
//! processes, the browser, a cluster). No runtime, no threads, no files: it builds for
//! `wasm32-unknown-unknown`, and time comes from a [`Clock`].
//!
//! How the types relate:
//!
//! - A [`Request`] (a task id plus JSON parameters) moves through the lifecycle of
//!   [`RequestStatus`]; every move is a [`Transition`] checked by [`apply_transition`] and
//!   recorded as a [`HistoryEntry`].
//! - A [`manifest::Manifest`] declares actions (task ids) with parameter schemas;
//!   requests are validated against them at submission.
//! - A [`Bank`] is a group of workers running one manifest; its [`Capability`] per task carries
//!   live load and success figures.
//! - A [`Handler`] does the work of one action, given a [`TaskContext`] (cancellation, progress,
//!   injected [`Resources`]).
//! - A [`Store`] keeps requests: the memory, SQLite and PostgreSQL stores implement it.
//! - [`RequestQuery`] selects requests; [`SystemMetrics`] summarises them; [`Event`]s report
//!   changes as they happen.

pub mod bank;
mod cancel;
pub mod error;
pub mod event;
mod failure;
pub mod handler;
pub mod id;
pub mod manifest;
pub mod metrics;
pub mod protocol;
pub mod query;
pub mod request;
pub mod retry;
pub mod status;
pub mod store;
pub mod time;
pub mod transition;

pub use bank::{Bank, BankStatus, Capability, Task, WorkerInfo, WorkerStatus};
pub use error::{Error, ErrorCategory, RequestError, Result, Severity, TaskError};
pub use event::{Event, EventKind, EventType};
pub use handler::{
    AsyncHandler, CancellationToken, Handler, HandlerResult, Handlers, NoProgress, ProgressSink, Resources,
    SyncHandler, TaskContext,
};
pub use id::{InvalidRequestId, RequestId};
pub use manifest::{ActionDefinition, Manifest, ManifestRegistry, ParamType, ParameterSpec};
pub use metrics::{BankPerformance, ErrorCount, LatencySummary, StoreMetrics, SystemMetrics};
pub use query::{
    Cursor, DateRange, InvalidFilter, Pagination, PriorityRange, QueryPage, RequestQuery, SortField, SortOrder,
};
pub use request::{
    Assignment, DEFAULT_PRIORITY, DecodeError, HistoryEntry, MAX_PRIORITY, MIN_PRIORITY, Progress, Request,
    RequestLifecycle, RequestResult, SubmitOptions, SubmitRequest,
};
pub use retry::RetryPolicy;
pub use status::RequestStatus;
pub use store::{
    Applied, ApplyOutcome, ClaimParams, Claimed, InsertOutcome, MetricsParams, Promoted, RetentionParams, Store,
    StoreError, StoreFuture,
};
pub use time::{Clock, ManualClock, Timestamp};
pub use transition::{Change, Expect, Transition, TransitionRejected, apply_claim, apply_transition};
