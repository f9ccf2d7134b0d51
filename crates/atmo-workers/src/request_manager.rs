//! [`RequestManager`]: the request ledger.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atmo_core::manifest::{ValidationErrors, ValidationIssue, ValidationIssueKind};
use atmo_core::{
    Bank, Capability, ClaimParams, Clock, Error, Event, EventKind, EventType, InsertOutcome, Manifest, MetricsParams,
    QueryPage, Request, RequestId, RequestLifecycle, RequestQuery, RequestResult, RequestStatus, Result, Store,
    SubmitOptions, SubmitRequest, SystemMetrics, Task, TaskError, Timestamp, Transition, TransitionRejected,
};
use futures::StreamExt;
use serde_json::Value;

use crate::clock::TokioClock;
use crate::engine::config::EngineConfig;
use crate::engine::{Inner, Reducer, TaskEntry};
use crate::events::{EventItem, EventStream};
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
    pub(crate) inner: Arc<Inner>,
}

/// Builds a [`RequestManager`] (or, through [`WorkerManager::builder`](crate::WorkerManager::builder),
/// the engine around one).
#[derive(Clone)]
pub struct RequestManagerBuilder {
    pub(crate) name: String,
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
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

    /// Where time comes from (default: [`TokioClock`], which tests drive with
    /// `tokio::time::pause`).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
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

    pub(crate) fn into_inner(self) -> Inner {
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let clock = self.clock.unwrap_or_else(|| Arc::new(TokioClock::new()));
        let node_id: Arc<str> = match self.node_id {
            Some(n) => Arc::from(n),
            None => Arc::from(format!("{}-{:016x}", self.name, fastrand::u64(..))),
        };
        Inner::new(self.name, store, clock, node_id, self.config, self.reducer)
    }

    /// Builds the manager.
    pub fn build(self) -> RequestManager {
        RequestManager { inner: Arc::new(self.into_inner()) }
    }
}

/// What a submission event says about a request.
type Summary = (RequestId, Arc<str>, u8, Option<Arc<str>>, RequestStatus);

/// Counts bytes without storing them: the payload limit needs the serialized size, not the text.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An upper bound of `value`'s size as compact JSON, if it is at most `limit`; `None` when the
/// bound exceeds `limit`, or for a non-integer number, whose printed length is not bounded as
/// cheaply.
fn json_size_bound(value: &Value, limit: usize) -> Option<usize> {
    // A string's escaped form is at most six bytes per byte (`\u00XX`), plus its quotes.
    fn string(len: usize) -> usize {
        len.saturating_mul(6).saturating_add(2)
    }
    fn walk(value: &Value, total: &mut usize, limit: usize) -> bool {
        let add = match value {
            Value::Null | Value::Bool(_) => 5,
            // An integer that fits 64 bits prints in at most 20 characters.
            Value::Number(n) if n.is_i64() || n.is_u64() => 20,
            Value::Number(_) => return false,
            Value::String(s) => string(s.len()),
            Value::Array(items) => {
                // Brackets and commas.
                *total = total.saturating_add(items.len() + 2);
                return *total <= limit && items.iter().all(|v| walk(v, total, limit));
            }
            Value::Object(map) => {
                *total = total.saturating_add(2);
                for (k, v) in map {
                    // The key, its colon and a comma.
                    *total = total.saturating_add(string(k.len()) + 2);
                    if *total > limit || !walk(v, total, limit) {
                        return false;
                    }
                }
                return true;
            }
        };
        *total = total.saturating_add(add);
        *total <= limit
    }
    let mut total = 0;
    walk(value, &mut total, limit).then_some(total)
}

/// A registered `on(...)` callback; [`EventSubscription::unsubscribe`] stops it. Dropping the
/// handle keeps the callback running, as an event listener would.
#[derive(Debug)]
pub struct EventSubscription {
    handle: tokio::task::JoinHandle<()>,
}

impl EventSubscription {
    /// Stops calling the callback.
    pub fn unsubscribe(self) {
        self.handle.abort();
    }
}

fn validation(task_id: &str, parameter: &str, kind: ValidationIssueKind, message: String) -> Error {
    Error::Validation {
        task_id: task_id.to_owned(),
        errors: ValidationErrors(vec![ValidationIssue { parameter: parameter.to_owned(), kind, message }]),
    }
}

impl RequestManager {
    /// Starts a builder.
    pub fn builder() -> RequestManagerBuilder {
        RequestManagerBuilder::default()
    }

    /// The manager's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// This engine's identity in its store.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
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
        self.inner.accepting.load(Ordering::Acquire)
    }

    /// The current time by the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    // ===== registration =====

    /// Registers a bank record (a bank of workers is registered by
    /// [`WorkerManager::initialize_worker_bank`](crate::WorkerManager::initialize_worker_bank)).
    pub fn register_bank(&self, mut bank: Bank) {
        bank.created_at.get_or_insert_with(|| self.inner.clock.now());
        self.inner.registry.write().banks.insert(bank.bank_id.clone(), bank);
    }

    /// Registers a task that accepts any parameters.
    pub fn register_task(&self, task: Task) {
        let mut reg = self.inner.registry.write();
        reg.tasks.insert(task.task_id.clone(), Arc::new(TaskEntry::plain(task)));
    }

    /// Registers a manifest: each of its actions becomes a task whose parameters are validated
    /// against the action's schema, with its timeout and retry policy.
    pub fn register_manifest(&self, manifest: Manifest) -> Arc<Manifest> {
        let mut reg = self.inner.registry.write();
        let m = reg.manifests.register(manifest);
        for i in 0..m.actions.len() {
            if let Some(entry) = TaskEntry::from_manifest(&m, i) {
                reg.tasks.insert(entry.task.task_id.clone(), Arc::new(entry));
            }
        }
        m
    }

    /// Registers a bank's capability for a task.
    pub fn register_capability(&self, capability: Capability) {
        let key = (capability.bank_id.clone(), capability.task_id.clone());
        self.inner.registry.write().capabilities.insert(key, capability);
    }

    /// Registered tasks.
    pub fn tasks(&self) -> Vec<Task> {
        let reg = self.inner.registry.read();
        let mut v: Vec<Task> = reg.tasks.values().map(|e| e.task.clone()).collect();
        v.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        v
    }

    /// Registered manifests.
    pub fn manifests(&self) -> Vec<Arc<Manifest>> {
        self.inner.registry.read().manifests.manifests().cloned().collect()
    }

    /// Banks: those with workers (live figures) and registered records.
    pub fn banks(&self) -> Vec<Bank> {
        let mut out: Vec<Bank> = self.inner.banks.read().iter().map(|b| b.record()).collect();
        let reg = self.inner.registry.read();
        for (id, bank) in &reg.banks {
            if !out.iter().any(|b| &b.bank_id == id) {
                out.push(bank.clone());
            }
        }
        out
    }

    /// Capabilities, with live load and success figures for banks with workers.
    pub fn capabilities(&self) -> Vec<Capability> {
        let runtime = self.inner.banks.read().clone();
        let reg = self.inner.registry.read();
        reg.capabilities
            .values()
            .map(|c| {
                let mut c = c.clone();
                if let Some(b) = runtime.iter().find(|b| b.id == c.bank_id) {
                    c.current_load = b.load();
                    c.success_rate = b.success_rate();
                    c.average_processing_time_ms = b.average_processing_ms();
                }
                c
            })
            .collect()
    }

    // ===== submission =====

    fn build_request(&self, req: SubmitRequest, entry: Option<&Arc<TaskEntry>>, now: Timestamp) -> Result<Request> {
        let SubmitRequest { task_id, parameters, options } = req;
        let Some(entry) = entry else {
            let known = self.inner.registry.read().known_tasks();
            return Err(Error::UnknownTask { task_id, known });
        };
        let limit = self.inner.config.max_payload_bytes;
        // Most parameters are far below the limit, which a cheap upper bound shows without
        // printing them; the exact size is measured only when the bound does not settle it.
        if json_size_bound(&parameters, limit).is_none() {
            let mut counter = ByteCounter(0);
            if serde_json::to_writer(&mut counter, &parameters).is_ok() && counter.0 > limit {
                return Err(Error::PayloadTooLarge { size: counter.0, limit });
            }
        }
        let parameters = match entry.action() {
            Some(action) => {
                action.validate(parameters).map_err(|errors| Error::Validation { task_id: task_id.clone(), errors })?
            }
            None if parameters.is_null() => Value::Object(Default::default()),
            None => parameters,
        };
        // Bounds of the free-text options (lengths, control characters), checked in the core.
        options.check().map_err(|errors| Error::Validation { task_id: task_id.clone(), errors })?;
        let SubmitOptions { priority, client_id, metadata, idempotency_key, run_at, delay, timeout, retry } = options;
        let priority = priority.unwrap_or(atmo_core::DEFAULT_PRIORITY);
        if !(atmo_core::MIN_PRIORITY..=atmo_core::MAX_PRIORITY).contains(&priority) {
            return Err(validation(
                &task_id,
                "priority",
                ValidationIssueKind::OutOfRange,
                format!("priority must be between 1 and 10 (10 runs first), got {priority}"),
            ));
        }
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(validation(
                &task_id,
                "timeout",
                ValidationIssueKind::OutOfRange,
                "timeout must be positive".into(),
            ));
        }
        let run_at = match (run_at, delay) {
            (Some(t), Some(d)) => Some(t.max(now + d)),
            (Some(t), None) => Some(t),
            (None, Some(d)) => Some(now + d),
            (None, None) => None,
        }
        .filter(|t| *t > now);
        let mut random = [0u8; 10];
        fastrand::fill(&mut random);
        // `Request::new` leaves room in the history for the usual path (assigned, processing,
        // finished). Fields are set in place: a struct update would copy the whole request.
        let mut request =
            Request::new(RequestId::from_parts(now, random), entry.task.task_id.clone(), parameters, now, run_at);
        request.priority = priority;
        request.client_id = client_id.map(Arc::from);
        request.metadata = metadata.filter(|m| !m.is_empty()).map(Box::new);
        request.idempotency_key = idempotency_key.map(String::into_boxed_str);
        request.timeout = timeout;
        request.retry = retry.map(Box::new);
        Ok(request)
    }

    /// Submits one request; returns its id once the store accepted it.
    ///
    /// # Errors
    /// `UnknownTask` (listing known tasks), `Validation` (every problem), `PayloadTooLarge`,
    /// `QueueFull`, `ShuttingDown`, or a store error (at once, without trying, when the store
    /// reports that it stopped taking writes: see [`Store::health`](atmo_core::Store::health)).
    pub async fn submit(&self, task_id: &str, parameters: Value, options: SubmitOptions) -> Result<RequestId> {
        let req = SubmitRequest { task_id: task_id.to_owned(), parameters, options };
        let mut ids = self.submit_batch(vec![req], None).await?;
        ids.pop().ok_or_else(|| Error::Config("store returned no outcome".into()))
    }

    /// Submits many requests at once: all are accepted or none.
    ///
    /// # Errors
    /// As [`RequestManager::submit`]; a problem with one request fails the batch, and the
    /// error names the request's index.
    pub async fn submit_many(&self, requests: Vec<SubmitRequest>) -> Result<Vec<RequestId>> {
        self.submit_batch(requests, None).await
    }

    async fn submit_batch(
        &self,
        requests: Vec<SubmitRequest>,
        waiter: Option<&mut Option<Arc<crate::engine::waiters::BatchWait>>>,
    ) -> Result<Vec<RequestId>> {
        let inner = &self.inner;
        if !inner.accepting.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        // A store that stopped taking writes would refuse the batch anyway: say why at once.
        inner.store.health()?;
        let now = inner.clock.now();
        let n = requests.len();
        let mut built = Vec::with_capacity(n);
        // Batches are usually of one task: look it up once, not per request.
        let mut last: Option<Arc<TaskEntry>> = None;
        for (i, r) in requests.into_iter().enumerate() {
            if last.as_ref().is_none_or(|e| *e.task.task_id != *r.task_id) {
                last = self.inner.registry.read().tasks.get(r.task_id.as_str()).cloned();
            }
            match self.build_request(r, last.as_ref(), now) {
                Ok(r) => built.push(r),
                Err(e) if n > 1 => return Err(Error::Batch { index: i, source: Box::new(e) }),
                Err(e) => return Err(e),
            }
        }
        let capacity = inner.config.queue_capacity;
        let before = inner.active.fetch_add(n, Ordering::AcqRel);
        if before + n > capacity {
            inner.active.fetch_sub(n, Ordering::AcqRel);
            inner.events.emit_with(|| EventKind::SystemOverload { queued: before, capacity });
            return Err(Error::QueueFull { queued: before, capacity });
        }
        let ids: Vec<RequestId> = built.iter().map(|r| r.request_id).collect();
        if let Some(w) = waiter {
            *w = Some(inner.waiters.register_batch(&ids));
        }
        let any_scheduled = built.iter().any(|r| r.status == RequestStatus::Scheduled);
        let events_on = inner.events.active();
        let summaries: Vec<Summary> = if events_on {
            built.iter().map(|r| (r.request_id, r.task_id.clone(), r.priority, r.client_id.clone(), r.status)).collect()
        } else {
            Vec::new()
        };
        // With subscribers, a dispatch round must not emit a request's assignment before its
        // submission: the gate orders them (and costs nothing when nobody listens).
        let gate = if events_on { Some(inner.events_gate.read().await) } else { None };
        let outcomes = match inner.store.insert_many(built).await {
            Ok(o) => o,
            Err(e) => {
                inner.active.fetch_sub(n, Ordering::AcqRel);
                return Err(e.into());
            }
        };
        let duplicates = outcomes.iter().filter(|o| matches!(o, InsertOutcome::Duplicate(_))).count();
        if duplicates > 0 {
            inner.active.fetch_sub(duplicates, Ordering::AcqRel);
        }
        for (i, (id, task_id, priority, client_id, status)) in summaries.into_iter().enumerate() {
            if matches!(outcomes.get(i), Some(InsertOutcome::Inserted(_))) {
                inner.events.emit(EventKind::RequestSubmitted { request_id: id, task_id, priority, client_id, status });
                inner.events.emit(EventKind::RequestStatusChanged {
                    request_id: id,
                    from: None,
                    to: status,
                    attempt: 0,
                });
            }
        }
        drop(gate);
        if any_scheduled {
            inner.schedule_wake.notify_one();
        }
        if inner.started.load(Ordering::Acquire) && !crate::engine::dispatcher::try_dispatch_now(inner).await {
            inner.dispatch_wake.notify_one();
        }
        if inner.reducer.is_some() {
            self.run_test_mode().await?;
        }
        Ok(outcomes.iter().map(InsertOutcome::id).collect())
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
        let mut waiter = None;
        let ids = self.submit_batch(requests, Some(&mut waiter)).await?;
        let Some(batch) = waiter else { return Err(Error::Config("no waiter registered".into())) };
        // Requests that were idempotent duplicates resolve through their originals.
        let mut dup = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if !batch.covers(i, *id) {
                dup.push((i, *id));
            }
        }
        for (i, id) in dup {
            if let Some(registered) = batch.registered_id(i) {
                self.inner.waiters.drop_batch_slot(registered);
            }
            let r = self.wait(id).await?;
            batch.fill_index(i, r);
        }
        let results = batch.wait().await;
        // Collected into an exact allocation: a flattening `collect` cannot know the count and
        // would copy the results at every doubling.
        let mut out = Vec::with_capacity(results.len());
        for (r, id) in results.into_iter().zip(&ids) {
            match r {
                Some(r) => out.push(r),
                None => return Err(Error::NotFound(*id)),
            }
        }
        Ok(out)
    }

    /// Processes pending requests with the reducer (test mode).
    async fn run_test_mode(&self) -> Result<()> {
        let Some(reducer) = self.inner.reducer.clone() else { return Ok(()) };
        let task_ids: Vec<Arc<str>> = self.inner.registry.read().tasks.keys().cloned().collect();
        let bank: Arc<str> = Arc::from("test-mode");
        let worker: Arc<str> = Arc::from("test-mode/reducer");
        loop {
            let now = self.inner.clock.now();
            let claimed = self
                .inner
                .store
                .claim(ClaimParams {
                    bank_id: bank.clone(),
                    task_ids: task_ids.clone(),
                    limit: 1024,
                    owner: self.inner.node_id.clone(),
                    now,
                    lease_until: now + self.inner.config.lease_duration,
                })
                .await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let mut transitions = Vec::with_capacity(claimed.len() * 2);
            for req in claimed {
                self.inner.events.emit_with(|| EventKind::RequestStatusChanged {
                    request_id: req.request_id,
                    from: Some(RequestStatus::Pending),
                    to: RequestStatus::Assigned,
                    attempt: req.attempt,
                });
                self.inner.events.emit_with(|| EventKind::RequestAssigned {
                    request_id: req.request_id,
                    bank_id: bank.clone(),
                    attempt: req.attempt,
                });
                let at = self.inner.clock.now();
                transitions.push(Transition::start(req.request_id, req.attempt, worker.clone(), at));
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reducer(&req.task_id, &req.parameters)));
                let at = self.inner.clock.now();
                transitions.push(match outcome {
                    Ok(Ok(v)) => Transition::complete(req.request_id, req.attempt, Arc::new(v), at),
                    Ok(Err(e)) => Transition::fail(
                        req.request_id,
                        req.attempt,
                        atmo_core::RequestError::from_task_error(e, false, req.attempt, at),
                        at,
                    ),
                    Err(p) => Transition::fail(
                        req.request_id,
                        req.attempt,
                        atmo_core::RequestError::from_task_error(
                            TaskError::system("HANDLER_PANIC", crate::engine::thread::panic_message(&*p)),
                            false,
                            req.attempt,
                            at,
                        ),
                        at,
                    ),
                });
            }
            self.inner.commit(transitions).await?;
        }
    }

    // ===== reading =====

    /// A request with its history.
    ///
    /// # Errors
    /// `NotFound`, or a store error.
    pub async fn get_request(&self, id: RequestId) -> Result<Request> {
        self.inner.store.get(id).await?.ok_or(Error::NotFound(id))
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
        let request = self.get_request(id).await?;
        let reg = self.inner.registry.read();
        let task = reg.tasks.get(&*request.task_id).map(|e| e.task.clone());
        let bank = request.bank_id.as_ref().and_then(|b| {
            self.inner
                .banks
                .read()
                .iter()
                .find(|r| &r.id == b)
                .map(|r| r.record())
                .or_else(|| reg.banks.get(b).cloned())
        });
        let capability =
            request.bank_id.as_ref().and_then(|b| reg.capabilities.get(&(b.clone(), request.task_id.clone())).cloned());
        Ok(RequestLifecycle {
            assignment: request.assignment(),
            result: request.to_result(),
            task,
            bank,
            capability,
            request,
        })
    }

    /// Requests matching a query, one page.
    ///
    /// # Errors
    /// `InvalidQuery` for a malformed cursor or an empty range; a store error.
    pub async fn query(&self, query: RequestQuery) -> Result<QueryPage> {
        // Filters no store should be given (control characters in metadata keys), checked in the core.
        query.check().map_err(|e| Error::InvalidQuery(e.to_string()))?;
        if let Some(c) = &query.pagination.cursor {
            atmo_core::Cursor::decode(c).map_err(|e| Error::InvalidQuery(e.to_string()))?;
        }
        if let Some(p) = query.priority_range
            && p.min > p.max
        {
            return Err(Error::InvalidQuery(format!("priority range {}..{} is empty (min > max)", p.min, p.max)));
        }
        Ok(self.inner.store.query(query).await?)
    }

    /// The system at a glance.
    ///
    /// # Errors
    /// A store error.
    pub async fn metrics(&self) -> Result<SystemMetrics> {
        let now = self.inner.clock.now();
        let sm = self
            .inner
            .store
            .metrics(MetricsParams { now, window_start: now.saturating_sub(Duration::from_secs(60)), top_errors: 10 })
            .await?;
        let banks = self.inner.banks.read().clone();
        let completed = sm.count(RequestStatus::Completed);
        let failed = sm.count(RequestStatus::Failed) + sm.count(RequestStatus::TimedOut);
        let decided = completed + failed;
        let rate = |x: u64| if decided == 0 { 0.0 } else { x as f64 / decided as f64 };
        let ledger_active =
            self.inner.registry.read().banks.values().filter(|b| b.status == atmo_core::BankStatus::Active).count();
        Ok(SystemMetrics {
            generated_at: now,
            total_requests: sm.total(),
            requests_by_status: RequestStatus::ALL.iter().map(|s| (*s, sm.count(*s))).collect(),
            success_rate: rate(completed),
            error_rate: rate(failed),
            average_processing_time: sm.processing.mean_ms,
            processing_time: sm.processing,
            requests_per_minute: sm.finished_in_window as f64,
            top_errors: sm.top_errors.clone(),
            active_banks: banks.iter().filter(|b| b.status() == atmo_core::BankStatus::Active).count() + ledger_active,
            total_worker_capacity: banks.iter().map(|b| b.capacity).sum(),
            current_load: banks.iter().map(|b| b.load()).sum(),
            queue_depth: sm.count(RequestStatus::Pending) + sm.count(RequestStatus::Scheduled),
            bank_performance: banks.iter().map(|b| b.performance()).collect(),
        })
    }

    // ===== cancel and wait =====

    /// Cancels a request that has not finished: pending and scheduled ones never run; a running
    /// one's handler sees its cancellation token, and its late result is discarded.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when it already finished; a store error.
    pub async fn cancel(&self, id: RequestId) -> Result<()> {
        self.cancel_with_reason(id, "cancelled by client").await
    }

    pub(crate) async fn cancel_with_reason(&self, id: RequestId, reason: &'static str) -> Result<()> {
        let now = self.inner.clock.now();
        let mut outcomes = self.inner.commit(vec![Transition::cancel(id, reason, now)]).await?;
        match outcomes.pop() {
            Some(Ok(applied)) => {
                if applied.from.is_running() {
                    self.inner.release_running(id, applied.attempt, true);
                }
                Ok(())
            }
            Some(Err(TransitionRejected::NotFound)) | None => Err(Error::NotFound(id)),
            Some(Err(
                TransitionRejected::StateMismatch { current, .. } | TransitionRejected::Illegal { from: current, .. },
            )) => {
                Err(Error::Conflict { id, status: current, message: "a finished request cannot be cancelled".into() })
            }
        }
    }

    /// Resolves with the request's result once it finished.
    ///
    /// # Errors
    /// `NotFound`, or a store error.
    pub async fn wait(&self, id: RequestId) -> Result<RequestResult> {
        // Register first, then look: a completion between the two cannot be missed.
        let rx = self.inner.waiters.register(id);
        let early = match self.inner.store.get(id).await {
            Ok(Some(r)) => r.to_result().map(Ok),
            Ok(None) => Some(Err(Error::NotFound(id))),
            Err(e) => Some(Err(e.into())),
        };
        if let Some(answer) = early {
            drop(rx);
            self.inner.waiters.prune(id);
            return answer;
        }
        match rx.await {
            Ok(r) => Ok(r),
            // The waiter was dropped: the request was deleted (retention) before finishing.
            Err(_) => self.get_request(id).await?.to_result().ok_or(Error::NotFound(id)),
        }
    }

    /// [`RequestManager::wait`] with a time limit.
    ///
    /// # Errors
    /// `WaitTimeout` when the limit passes first; otherwise as `wait`.
    pub async fn wait_timeout(&self, id: RequestId, limit: Duration) -> Result<RequestResult> {
        match tokio::time::timeout(limit, self.wait(id)).await {
            Ok(r) => r,
            Err(_) => Err(Error::WaitTimeout(id)),
        }
    }

    // ===== events =====

    /// A stream of every event from now on.
    pub fn subscribe(&self) -> EventStream {
        self.inner.events.subscribe()
    }

    /// Calls `callback` for every event of type `event` (on a tokio task, so a slow callback
    /// lags rather than slowing the engine).
    ///
    /// # Errors
    /// `Config` when called outside a tokio runtime.
    pub fn on<F>(&self, event: EventType, callback: F) -> Result<EventSubscription>
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        self.on_many(&[event], callback)
    }

    /// Calls `callback` for every event of the given types.
    ///
    /// # Errors
    /// `Config` when called outside a tokio runtime.
    pub fn on_many<F>(&self, events: &[EventType], callback: F) -> Result<EventSubscription>
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Config("`on` needs a tokio runtime to deliver events".into()))?;
        let mut stream = self.subscribe().only(events.iter().copied());
        let task = handle.spawn(async move {
            while let Some(item) = stream.next().await {
                match item {
                    EventItem::Event(e) => callback(&e),
                    EventItem::Lagged(n) => tracing::warn!(missed = n, "event callback fell behind"),
                }
            }
        });
        Ok(EventSubscription { handle: task })
    }

    /// Waits until `f` holds for an event, up to `limit` (tests and tools).
    ///
    /// # Errors
    /// `Config` on timeout.
    pub fn next_event_where<F>(&self, limit: Duration, mut f: F) -> impl Future<Output = Result<Arc<Event>>> + use<F>
    where
        F: FnMut(&Event) -> bool,
    {
        let mut stream = self.subscribe();
        async move {
            let search = async {
                while let Some(item) = stream.next().await {
                    if let EventItem::Event(e) = item
                        && f(&e)
                    {
                        return Some(e);
                    }
                }
                None
            };
            match tokio::time::timeout(limit, search).await {
                Ok(Some(e)) => Ok(e),
                _ => Err(Error::Config("no matching event arrived in time".into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn exact(v: &Value) -> usize {
        serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
    }

    #[test]
    fn the_size_bound_is_never_below_the_printed_size() {
        let values = [
            json!(null),
            json!(true),
            json!(i64::MIN),
            json!(u64::MAX),
            json!("plain"),
            json!("\u{1}\u{2}\"\\\n"),
            json!({"a": 1, "b": [1, 2, {"c": "d"}], "": {}}),
            json!([[], {}, [null, false]]),
        ];
        for v in values {
            let bound = json_size_bound(&v, usize::MAX);
            assert!(bound.is_some_and(|b| b >= exact(&v)), "{v}: bound {bound:?} < {}", exact(&v));
        }
    }

    #[test]
    fn the_size_bound_gives_way_to_measuring() {
        let v = json!({"text": "x".repeat(100)});
        assert_eq!(json_size_bound(&v, 100), None, "over the limit by the bound");
        assert_eq!(json_size_bound(&json!({"x": 1.5}), usize::MAX), None, "floats are measured");
    }
}
