//! The [`Store`] trait: where requests live.
//!
//! Batch-oriented, flat, noun-first operations, each taking a params struct. State changes go
//! through [`Store::apply`] with compare-and-set [`Transition`]s. The engine never reaches
//! around the store, so the memory, SQLite and PostgreSQL stores are interchangeable; the
//! conformance suite in `atmo-testkit` runs against each.
//!
//! Time is always passed in (`now`), never read by a store, so tests control it completely.
//!
//! The operations return boxed futures ([`StoreFuture`]) so that the engine can hold any store
//! as `Arc<dyn Store>` and pick it at run time (memory, SQLite, PostgreSQL from a config file);
//! every operation takes a batch, so the allocation of the box is paid per batch, not per
//! request.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::id::RequestId;
use crate::metrics::StoreMetrics;
use crate::query::{QueryPage, RequestQuery};
use crate::request::Request;
use crate::status::RequestStatus;
use crate::time::Timestamp;
use crate::transition::{Transition, TransitionRejected};

/// The future every store operation returns.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backing database failed.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The store was closed.
    #[error("store is closed")]
    Closed,
    /// Another process owns the store.
    #[error("store is locked by another owner: {0}")]
    Locked(String),
    /// The store's schema is newer than this program.
    #[error("store schema version {found} is newer than the supported version {supported}; upgrade Atmo Workers")]
    SchemaTooNew {
        /// Version in the store.
        found: i64,
        /// Newest version this program knows.
        supported: i64,
    },
    /// The file or database is not an Atmo store.
    #[error("not an Atmo Workers store: {0}")]
    NotAStore(String),
    /// The query is malformed (a client mistake, not a store failure).
    #[error(transparent)]
    InvalidQuery(#[from] crate::query::InvalidCursor),
}

/// The outcome of inserting one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored.
    Inserted(RequestId),
    /// A request with the same idempotency key exists; this is its id, and nothing was stored.
    Duplicate(RequestId),
}

impl InsertOutcome {
    /// The id the client should use.
    pub fn id(&self) -> RequestId {
        match *self {
            InsertOutcome::Inserted(id) | InsertOutcome::Duplicate(id) => id,
        }
    }
}

/// What a claim asks for.
#[derive(Clone, Debug)]
pub struct ClaimParams {
    /// The bank claiming.
    pub bank_id: Arc<str>,
    /// The tasks it can run.
    pub task_ids: Vec<Arc<str>>,
    /// At most this many.
    pub limit: usize,
    /// Who holds the lease (the engine node's identity).
    pub owner: Arc<str>,
    /// The current time.
    pub now: Timestamp,
    /// The lease expires then unless heartbeated.
    pub lease_until: Timestamp,
}

/// What a claim hands to the engine: what running one attempt needs, nothing more (no
/// history, no metadata), so claiming stays cheap.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    /// The request.
    pub request_id: RequestId,
    /// Its task.
    pub task_id: Arc<str>,
    /// Its validated parameters.
    pub parameters: Arc<serde_json::Value>,
    /// The attempt this claim starts (1-based).
    pub attempt: u32,
    /// Its priority.
    pub priority: u8,
    /// Its own timeout, if it set one.
    pub timeout: Option<std::time::Duration>,
    /// Its own retry policy, if it set one.
    pub retry: Option<Box<crate::retry::RetryPolicy>>,
}

impl From<&Request> for Claimed {
    fn from(r: &Request) -> Self {
        Claimed {
            request_id: r.request_id,
            task_id: r.task_id.clone(),
            parameters: r.parameters.clone(),
            attempt: r.attempts,
            priority: r.priority,
            timeout: r.timeout,
            retry: r.retry.clone(),
        }
    }
}

/// A scheduled request that became pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promoted {
    /// The request.
    pub id: RequestId,
    /// Its attempt count (0 for a delayed submission, the failed attempt's number for a retry).
    pub attempt: u32,
}

/// A transition that took effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// The request.
    pub id: RequestId,
    /// The status it left.
    pub from: RequestStatus,
    /// The status it entered (same as `from` for progress).
    pub to: RequestStatus,
    /// Its attempt.
    pub attempt: u32,
    /// Its task.
    pub task_id: Arc<str>,
    /// Its bank, if any.
    pub bank_id: Option<Arc<str>>,
    /// Its worker, if any.
    pub worker_id: Option<Arc<str>>,
    /// When the attempt started processing, if it did.
    pub started_at: Option<Timestamp>,
}

/// The outcome of one transition of a batch.
pub type ApplyOutcome = Result<Applied, TransitionRejected>;

/// What a retention sweep deletes.
#[derive(Clone, Copy, Debug)]
pub struct RetentionParams {
    /// Delete finished requests that finished before this.
    pub finished_before: Timestamp,
    /// Keep at most this many finished requests (the newest).
    pub max_finished: Option<usize>,
    /// Delete at most this many in one call (the sweeper calls again while it deletes a full batch).
    pub batch_limit: usize,
}

/// What metrics to aggregate.
#[derive(Clone, Copy, Debug)]
pub struct MetricsParams {
    /// The current time.
    pub now: Timestamp,
    /// Requests finished since this time count toward the throughput window.
    pub window_start: Timestamp,
    /// How many distinct error codes to list.
    pub top_errors: usize,
}

/// Where requests live. See the module documentation.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// A short name (`"memory"`, `"sqlite"`).
    fn kind(&self) -> &'static str;

    /// Stores new requests (status `pending` or `scheduled`, history with the submission entry).
    /// Requests whose idempotency key exists are not stored; their outcome names the original.
    /// Returns only after the batch is durable (for durable stores).
    fn insert_many(&self, requests: Vec<Request>) -> StoreFuture<'_, Vec<InsertOutcome>>;

    /// Claims up to `limit` pending requests of the given tasks, highest priority first, FIFO
    /// within a priority: each becomes `assigned` to the bank, its attempt counted, under a lease
    /// held by `owner`. Each request is claimed by at most one caller.
    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<Claimed>>;

    /// Applies transitions in order, each compare-and-set on its expected state. One outcome per
    /// transition. A finished lease is released.
    fn apply(&self, transitions: Vec<Transition>) -> StoreFuture<'_, Vec<ApplyOutcome>>;

    /// [`Store::apply`] for a caller that needs the transitions afterwards (to publish what
    /// took effect): a store that only reads them overrides this and spares the copy that the
    /// default makes.
    fn apply_borrowed<'a>(&'a self, transitions: &'a [Transition]) -> StoreFuture<'a, Vec<ApplyOutcome>> {
        self.apply(transitions.to_vec())
    }

    /// Moves up to `limit` scheduled requests whose `run_at` is at or before `now` to `pending`.
    fn promote_scheduled(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<Promoted>>;

    /// The earliest `run_at` of a scheduled request.
    fn next_scheduled(&self) -> StoreFuture<'_, Option<Timestamp>>;

    /// Extends every lease held by `owner` to `until`; returns how many.
    fn heartbeat(&self, owner: Arc<str>, until: Timestamp) -> StoreFuture<'_, usize>;

    /// Returns up to `limit` assigned or processing requests whose lease expired before `now` to
    /// `pending` (attempt kept, history says why). Returns their ids.
    fn rescue_expired(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<RequestId>>;

    /// Returns every assigned or processing request leased by `owner` to `pending`
    /// (a node that restarted rescues what its previous life held).
    fn rescue_owner(&self, owner: Arc<str>, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>>;

    /// Called once when an engine starts on this store. A store that knows it has a single
    /// owner (an embedded file under an exclusive lock) returns every assigned or processing
    /// request to `pending`, since whatever held them died with the previous process; returns
    /// their ids. Shared stores keep the default (nothing), relying on leases and the rescuer.
    fn recover_orphans(&self, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        let _ = (now, reason);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// One request with its history.
    fn get(&self, id: RequestId) -> StoreFuture<'_, Option<Request>>;

    /// Requests matching a query, one page.
    fn query(&self, query: RequestQuery) -> StoreFuture<'_, QueryPage>;

    /// Aggregates for the system metrics.
    fn metrics(&self, params: MetricsParams) -> StoreFuture<'_, StoreMetrics>;

    /// Deletes finished requests per the retention params; returns how many.
    fn delete_finished(&self, params: RetentionParams) -> StoreFuture<'_, usize>;

    /// Whether the store can still take writes: `Err` once it has stopped for good (a durable
    /// store whose fsync failed refuses every later write until it is reopened), with the
    /// error its writes now get. Cheap and synchronous: readiness probes call it. The default
    /// is a store that never stops.
    fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
