//! [`RequestManager`]: the request ledger.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use atmo_core::{
    Bank, Capability, Clock, Error, Event, EventType, Manifest, QueryPage, Request, RequestId, RequestLifecycle,
    RequestQuery, RequestResult, Result, Store, SubmitOptions, SubmitRequest, SystemMetrics, Task, TaskError,
    Timestamp,
};
use serde_json::Value;

use crate::engine::config::EngineConfig;
use crate::engine::state::Parts;
use crate::engine::{Engine, Reducer};
use crate::events::EventStream;
use crate::runtime::{Runtime, RuntimeClock};
use crate::store::MemoryStore;

/// The request ledger: registration of banks, tasks and capabilities; submission; state;
/// queries, metrics and events.
///
/// On its own, with a request reducer, it runs in *test mode*: each request is processed at
/// once by the reducer, no workers involved (the seed's usage example). A
/// [`WorkerManager`](crate::WorkerManager) owns one and adds the runtime: banks of workers,
/// dispatch, timeouts, retries.
///
/// ```
/// use atmo_workers::{RequestManager, SubmitOptions, Task, TaskError};
/// use serde_json::json;
///
/// # tokio_test_block_on(async {
/// let manager = RequestManager::builder()
///     .name("math-processor")
///     .request_reducer(|task_id, params| match task_id {
///         "add-numbers" => Ok(json!({"result": params["a"].as_i64().unwrap_or(0) + params["b"].as_i64().unwrap_or(0)})),
///         other => Err(TaskError::fatal("UNKNOWN_TASK", format!("unknown task: {other}"))),
///     })
///     .build();
/// manager.register_task(Task::new("add-numbers", "Add Two Numbers"));
/// let id = manager.submit("add-numbers", json!({"a": 5, "b": 3}), SubmitOptions::new().client_id("client-1")).await?;
/// let result = manager.get_result(id).await?.expect("test mode finishes at once");
/// assert_eq!(result.payload.as_deref(), Some(&json!({"result": 8})));
/// # Ok::<_, atmo_workers::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RequestManager {
    pub(crate) engine: Arc<Engine>,
}

/// Builds a [`RequestManager`] (or, through [`WorkerManager::builder`](crate::WorkerManager::builder),
/// the engine around one).
#[derive(Clone)]
pub struct RequestManagerBuilder {
    pub(crate) name: String,
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) runtime: Option<Arc<dyn Runtime>>,
    pub(crate) config: EngineConfig,
    pub(crate) reducer: Option<Reducer>,
    pub(crate) node_id: Option<String>,
}

impl std::fmt::Debug for RequestManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestManagerBuilder").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Default for RequestManagerBuilder {
    fn default() -> Self {
        RequestManagerBuilder {
            name: "atmo".to_owned(),
            store: None,
            clock: None,
            runtime: None,
            config: EngineConfig::default(),
            reducer: None,
            node_id: None,
        }
    }
}

impl RequestManagerBuilder {
    /// Names the manager (logs, metrics).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Where requests live (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// A shared store.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Where time comes from (default: the runtime's time; on tokio a
    /// [`TokioClock`](crate::clock::TokioClock), which tests drive with `tokio::time::pause`).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Where the engine's tasks run and sleep (default, with the `native` feature: the tokio
    /// runtime the engine is built or started on, as [`TokioRuntime`](crate::runtime::TokioRuntime)).
    pub fn runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The whole configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Most accepted, unfinished requests before submissions fail with `QueueFull`.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.config.queue_capacity = n;
        self
    }

    /// Largest accepted parameters, serialized, in bytes.
    pub fn max_payload_bytes(mut self, n: usize) -> Self {
        self.config.max_payload_bytes = n;
        self
    }

    /// The longest timeout and the furthest delay a request may ask for (see
    /// [`EngineConfig::max_timeout`] and [`EngineConfig::max_delay`]).
    pub fn limits(mut self, max_timeout: Duration, max_delay: Duration) -> Self {
        self.config.max_timeout = max_timeout;
        self.config.max_delay = max_delay;
        self
    }

    /// Retention of finished requests.
    pub fn retention(mut self, max_age: Option<Duration>, max_count: Option<usize>) -> Self {
        self.config.retention.max_age = max_age;
        self.config.retention.max_count = max_count;
        self
    }

    /// This engine's identity in a shared store (default: random).
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = Some(id.into());
        self
    }

    /// Test mode: every request is processed at once by `reducer`.
    pub fn request_reducer<F>(mut self, reducer: F) -> Self
    where
        F: Fn(&str, &Value) -> std::result::Result<Value, TaskError> + Send + Sync + 'static,
    {
        self.reducer = Some(Arc::new(reducer));
        self
    }

    pub(crate) fn into_engine(self) -> Engine {
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let runtime = self.runtime.clone().or_else(default_runtime);
        let clock = match (self.clock, &self.runtime) {
            (Some(c), _) => c,
            // A runtime of one's own: its time, so that timestamps and sleeps agree.
            (None, Some(rt)) => Arc::new(RuntimeClock(rt.clone())),
            (None, None) => default_clock(),
        };
        let node_id: Arc<str> = match self.node_id {
            Some(n) => Arc::from(n),
            None => Arc::from(format!("{}-{:016x}", self.name, fastrand::u64(..))),
        };
        Engine::new(Parts {
            name: self.name,
            node_id,
            store,
            clock,
            runtime,
            config: self.config,
            reducer: self.reducer,
        })
    }

    /// Builds the manager.
    pub fn build(self) -> RequestManager {
        RequestManager { engine: Arc::new(self.into_engine()) }
    }
}

#[cfg(feature = "native")]
fn default_runtime() -> Option<Arc<dyn Runtime>> {
    crate::runtime::TokioRuntime::current().ok().map(|rt| Arc::new(rt) as Arc<dyn Runtime>)
}

#[cfg(not(feature = "native"))]
fn default_runtime() -> Option<Arc<dyn Runtime>> {
    None
}

#[cfg(feature = "native")]
fn default_clock() -> Arc<dyn Clock> {
    Arc::new(crate::clock::TokioClock::new())
}

/// Without the `native` feature there is no system clock to fall back on: an engine built
/// with neither a runtime nor a clock reads the Unix epoch until it is given one.
#[cfg(not(feature = "native"))]
fn default_clock() -> Arc<dyn Clock> {
    Arc::new(atmo_core::ManualClock::new(Timestamp::EPOCH))
}

/// A registered `on(...)` callback; [`EventSubscription::unsubscribe`] stops it. Dropping the
/// handle keeps the callback running, as an event listener would.
#[derive(Debug)]
pub struct EventSubscription {
    task: crate::runtime::Task,
}

impl EventSubscription {
    /// Stops calling the callback.
    pub fn unsubscribe(self) {
        self.task.abort();
    }
}

impl RequestManager {
    /// Starts a builder.
    pub fn builder() -> RequestManagerBuilder {
        RequestManagerBuilder::default()
    }

    /// The manager's name.
    pub fn name(&self) -> &str {
        self.engine.name()
    }

    /// This engine's identity in its store.
    pub fn node_id(&self) -> &str {
        self.engine.node_id()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.engine.store()
    }

    /// Whether the engine takes submissions: from its start until shutdown begins (after that,
    /// submissions fail with `ShuttingDown`). A readiness probe wants this and the store's
    /// [`health`](Store::health) (the service's `/readyz` checks both).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let manager = atmo_workers::WorkerManager::builder().start().await?;
    /// assert!(manager.is_accepting());
    /// manager.shutdown(std::time::Duration::ZERO).await?;
    /// assert!(!manager.is_accepting());
    /// # Ok::<_, atmo_workers::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn is_accepting(&self) -> bool {
        self.engine.is_accepting()
    }

    /// The current time by the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.engine.clock().now()
    }

    // ===== registration =====

    /// Registers a bank record (a bank of workers is registered by
    /// [`WorkerManager::initialize_worker_bank`](crate::WorkerManager::initialize_worker_bank)).
    pub fn register_bank(&self, mut bank: Bank) {
        bank.created_at.get_or_insert_with(|| self.now());
        self.engine.registry().register_bank(bank);
    }

    /// Registers a task that accepts any parameters.
    pub fn register_task(&self, task: Task) {
        self.engine.registry().register_task(task);
    }

    /// Registers a manifest: each of its actions becomes a task whose parameters are validated
    /// against the action's schema, with its timeout and retry policy.
    pub fn register_manifest(&self, manifest: Manifest) -> Arc<Manifest> {
        self.engine.registry().register_manifest(manifest)
    }

    /// Registers a bank's capability for a task.
    pub fn register_capability(&self, capability: Capability) {
        self.engine.registry().register_capability(capability);
    }

    /// Registered tasks.
    pub fn tasks(&self) -> Vec<Task> {
        self.engine.registry().tasks()
    }

    /// Registered manifests.
    pub fn manifests(&self) -> Vec<Arc<Manifest>> {
        self.engine.registry().manifests()
    }

    /// Banks: those with workers (live figures) and registered records.
    pub fn banks(&self) -> Vec<Bank> {
        self.engine.registry().banks()
    }

    /// Capabilities, with live load and success figures for banks with workers.
    pub fn capabilities(&self) -> Vec<Capability> {
        self.engine.registry().capabilities()
    }

    // ===== submission =====

    /// Submits one request; returns its id once the store accepted it. In test mode, the
    /// request has also finished (unless it was delayed).
    ///
    /// # Errors
    /// `UnknownTask` (listing known tasks), `Validation` (every problem), `PayloadTooLarge`,
    /// `QueueFull`, `ShuttingDown`, or a store error (at once, without trying, when the store
    /// reports that it stopped taking writes: see [`Store::health`](atmo_core::Store::health)).
    pub async fn submit(&self, task_id: &str, parameters: Value, options: SubmitOptions) -> Result<RequestId> {
        let req = SubmitRequest { task_id: task_id.to_owned(), parameters, options };
        let mut ids = self.engine.submit_batch(vec![req], None).await?;
        ids.pop().ok_or(Error::Internal("the store answered a submission with no outcome"))
    }

    /// Submits many requests at once: all are accepted or none.
    ///
    /// # Errors
    /// As [`RequestManager::submit`]; a problem with one request fails the batch, and the
    /// error names the request's index.
    pub async fn submit_many(&self, requests: Vec<SubmitRequest>) -> Result<Vec<RequestId>> {
        self.engine.submit_batch(requests, None).await
    }

    /// Submits one request and waits for its result.
    ///
    /// # Errors
    /// As [`RequestManager::submit`] and [`RequestManager::wait`].
    pub async fn submit_and_wait(
        &self,
        task_id: &str,
        parameters: Value,
        options: SubmitOptions,
    ) -> Result<RequestResult> {
        let id = self.submit(task_id, parameters, options).await?;
        self.wait(id).await
    }

    /// Submits a batch and waits for every result, in order. The waiters are registered
    /// before the requests are stored, so no completion can slip by, and one allocation serves
    /// the whole batch.
    ///
    /// # Errors
    /// As [`RequestManager::submit_many`].
    pub async fn submit_many_and_wait(&self, requests: Vec<SubmitRequest>) -> Result<Vec<RequestResult>> {
        self.engine.submit_many_and_wait(requests).await
    }

    // ===== reading =====

    /// A request with its history.
    ///
    /// # Errors
    /// `NotFound`, or a store error.
    pub async fn get_request(&self, id: RequestId) -> Result<Request> {
        self.engine.get_request(id).await
    }

    /// The result, once the request finished (`None` while it runs).
    ///
    /// # Errors
    /// `NotFound`, or a store error.
    pub async fn get_result(&self, id: RequestId) -> Result<Option<RequestResult>> {
        Ok(self.get_request(id).await?.to_result())
    }

    /// Everything about a request: history, errors, task, bank, capability, assignment, result.
    ///
    /// # Errors
    /// `NotFound`, or a store error.
    pub async fn get_lifecycle(&self, id: RequestId) -> Result<RequestLifecycle> {
        self.engine.get_lifecycle(id).await
    }

    /// Requests matching a query, one page.
    ///
    /// # Errors
    /// `InvalidQuery` for a malformed cursor or an empty range; a store error.
    pub async fn query(&self, query: RequestQuery) -> Result<QueryPage> {
        self.engine.query(query).await
    }

    /// The system at a glance.
    ///
    /// # Errors
    /// A store error.
    pub async fn metrics(&self) -> Result<SystemMetrics> {
        self.engine.metrics().await
    }

    // ===== cancel and wait =====

    /// Cancels a request that has not finished: pending and scheduled ones never run; a running
    /// one's handler sees its cancellation token, and its late result is discarded.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when it already finished; a store error.
    pub async fn cancel(&self, id: RequestId) -> Result<()> {
        self.engine.cancel_with_reason(id, "cancelled by client").await
    }

    /// Resolves with the request's result once it finished.
    ///
    /// # Errors
    /// `NotFound`, or a store error.
    pub async fn wait(&self, id: RequestId) -> Result<RequestResult> {
        self.engine.wait(id).await
    }

    /// [`RequestManager::wait`] with a time limit.
    ///
    /// # Errors
    /// `WaitTimeout` when the limit passes first; `NoRuntime` without a runtime to time it;
    /// otherwise as `wait`.
    pub async fn wait_timeout(&self, id: RequestId, limit: Duration) -> Result<RequestResult> {
        self.engine.wait_timeout(id, limit).await
    }

    // ===== events =====

    /// A stream of every event from now on.
    pub fn subscribe(&self) -> EventStream {
        self.engine.events().subscribe()
    }

    /// Calls `callback` for every event of type `event` (on a task of the engine's runtime, so
    /// a slow callback lags rather than slowing the engine).
    ///
    /// # Errors
    /// `NoRuntime` when the engine has no runtime to run the callback on.
    pub fn on<F>(&self, event: EventType, callback: F) -> Result<EventSubscription>
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        self.on_many(&[event], callback)
    }

    /// Calls `callback` for every event of the given types.
    ///
    /// # Errors
    /// `NoRuntime` when the engine has no runtime to run the callback on.
    pub fn on_many<F>(&self, events: &[EventType], callback: F) -> Result<EventSubscription>
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        Ok(EventSubscription { task: self.engine.on_many(events, callback)? })
    }

    /// Waits until `f` holds for an event, up to `limit` (tests and tools).
    ///
    /// # Errors
    /// `EventTimeout` when no such event arrives in time; `NoRuntime` without a runtime.
    pub fn next_event_where<F>(&self, limit: Duration, f: F) -> impl Future<Output = Result<Arc<Event>>> + use<F>
    where
        F: FnMut(&Event) -> bool,
    {
        self.engine.next_event_where(limit, f)
    }
}
