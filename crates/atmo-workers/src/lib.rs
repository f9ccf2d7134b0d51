//! # atmo-workers
//!
//! The engine of Atmo Workers. A program submits requests (a task id plus JSON parameters);
//! banks of workers, declared by manifests, process them; every request is tracked through its
//! lifecycle.
//!
//! How the pieces relate:
//!
//! - [`RequestManager`] is the ledger: registration, submission, state, queries, metrics,
//!   events. Alone, with a request reducer, it runs in test mode.
//! - [`WorkerManager`] owns a `RequestManager` and runs it: [`BankSpec`]s become banks of
//!   workers (synchronous handlers on the bank's own threads, async handlers as tasks, worker
//!   processes, or an [`Executor`] of one's own); a dispatcher claims requests for banks with
//!   spare capacity, an applier records outcomes in batches and enforces timeouts and retries.
//! - The engine runs on a [`runtime::Runtime`] (spawn, sleep, now): tokio by default (feature
//!   `native`, which also holds OS threads, processes, stdio and the system clocks); without
//!   `native` it builds for `wasm32-unknown-unknown` and runs on a runtime the embedder gives.
//! - Requests live in a [`Store`]: [`store::MemoryStore`] here, durable stores in other crates.
//! - [`tracer::ActivityTracer`] follows every worker; [`sniffer::EnvironmentSniffer`] says what
//!   the machine can do; [`mock::MockWorker`] fakes handlers for tests.
//!
//! ```
//! use atmo_workers::{ActionDefinition, BankSpec, Handler, Handlers, Manifest, SubmitOptions, WorkerManager};
//! use serde_json::json;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let manager = WorkerManager::builder().name("example").start().await?;
//! let manifest = Manifest::builder("math").action(ActionDefinition::new("add").lenient()).build().unwrap();
//! manager.initialize_worker_bank(
//!     BankSpec::new("math-bank", manifest)
//!         .workers(2)
//!         .handlers(Handlers::new().on("add", Handler::sync(|_ctx, p| {
//!             Ok(json!({"result": p["a"].as_i64().unwrap_or(0) + p["b"].as_i64().unwrap_or(0)}))
//!         }))),
//! )?;
//! let result = manager.submit_and_wait("add", json!({"a": 5, "b": 3}), SubmitOptions::new()).await?;
//! assert_eq!(result.payload.as_deref(), Some(&json!({"result": 8})));
//! manager.shutdown(Duration::from_secs(1)).await?;
//! # Ok::<_, atmo_workers::Error>(())
//! # }).unwrap();
//! ```

// The core crate's vocabulary, named one by one: this crate's own `store` module (the memory
// store) would shadow a glob's `store`, and a glob hides what the crate's API is.
pub use atmo_core::store::{
    Applied, ApplyOutcome, ClaimParams, Claimed, InsertOutcome, MetricsParams, Promoted, RetentionParams, Store,
    StoreError, StoreFuture,
};
pub use atmo_core::{
    ActionDefinition, Assignment, AsyncHandler, Bank, BankPerformance, BankStatus, CancellationToken, Capability,
    Change, Clock, Cursor, DEFAULT_PRIORITY, DateRange, DecodeError, Error, ErrorCategory, ErrorCount, Event,
    EventKind, EventType, Expect, Handler, HandlerResult, Handlers, HistoryEntry, InvalidRequestId, LatencySummary,
    MAX_PRIORITY, MIN_PRIORITY, Manifest, ManifestRegistry, ManualClock, NoProgress, Pagination, ParamType,
    ParameterSpec, PriorityRange, Progress, ProgressSink, QueryPage, Request, RequestError, RequestId,
    RequestLifecycle, RequestQuery, RequestResult, RequestStatus, Resources, Result, RetryPolicy, Severity, SortField,
    SortOrder, StoreMetrics, SubmitOptions, SubmitRequest, SyncHandler, SystemMetrics, Task, TaskContext, TaskError,
    Timestamp, Transition, TransitionRejected, WorkerInfo, WorkerStatus, apply_claim, apply_transition,
};
pub use atmo_core::{
    bank, error, event, handler, id, manifest, metrics, protocol, query, request, retry, status, time, transition,
};

pub mod clock;
mod engine;
pub mod events;
#[cfg(feature = "native")]
mod lines;
#[cfg(feature = "native")]
pub mod mock;
mod request_manager;
#[cfg(feature = "native")]
pub mod responder;
pub mod runtime;
pub mod sniffer;
pub mod store;
pub mod tracer;
mod worker_manager;

pub use engine::Reducer;
pub use engine::banks::BankContext;
pub use engine::config::{EngineConfig, RetentionConfig};
pub use engine::executor::{Executor, Job, Outcome, Reporter, StartedJob};
#[cfg(feature = "native")]
pub use engine::process::ProcessConfig;
pub use engine::supervision::{CrashTracker, RestartPlan, Supervision, SupervisionStats, check_ready};
pub use events::{EventItem, EventStream};
pub use request_manager::{EventSubscription, RequestManager, RequestManagerBuilder};
pub use worker_manager::{BankSpec, BankWorkers, WorkerManager, WorkerManagerBuilder};

// The README's examples are compiled and run as doc tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[doc = include_str!("../../../docs/protocol.md")]
#[cfg(doctest)]
pub struct ProtocolDoctests;
