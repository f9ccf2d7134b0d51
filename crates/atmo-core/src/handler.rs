//! Handlers (the work) and the context they receive.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::cancel::CancellationToken;
use crate::failure::TaskError;
use crate::id::RequestId;
use crate::time::Timestamp;

// ===== Resources =====

/// Typed shared resources injected into every handler of a bank: an HTTP client, a database
/// pool, a clock, a logger. Keyed by type, so a test swaps in a double by inserting another
/// value of the same type (often an `Arc<dyn Trait>`).
///
/// ```
/// use atmo_core::Resources;
/// use std::sync::Arc;
/// trait Rates: Send + Sync { fn eur_usd(&self) -> f64; }
/// struct FixedRates;
/// impl Rates for FixedRates { fn eur_usd(&self) -> f64 { 1.1 } }
///
/// let mut res = Resources::new();
/// res.insert::<Arc<dyn Rates>>(Arc::new(FixedRates));
/// let rates = res.get::<Arc<dyn Rates>>().unwrap();
/// assert_eq!(rates.eur_usd(), 1.1);
/// ```
#[derive(Clone, Default)]
pub struct Resources {
    map: HashMap<TypeId, (Arc<dyn Any + Send + Sync>, &'static str)>,
}

impl Resources {
    /// No resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the resource of type `T`.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> &mut Self {
        self.map.insert(TypeId::of::<T>(), (Arc::new(value), type_name::<T>()));
        self
    }

    /// Builder form of [`Resources::insert`].
    pub fn with<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.insert(value);
        self
    }

    /// The resource of type `T`.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map.get(&TypeId::of::<T>()).and_then(|(v, _)| v.downcast_ref::<T>())
    }

    /// The resource of type `T`, or a `system` error naming the missing type.
    ///
    /// # Errors
    /// When no resource of that type was injected.
    pub fn require<T: Send + Sync + 'static>(&self) -> Result<&T, TaskError> {
        self.get::<T>().ok_or_else(|| {
            TaskError::fatal(
                "MISSING_RESOURCE",
                format!("no resource of type {} was injected into this bank", type_name::<T>()),
            )
            .with_category(crate::failure::ErrorCategory::System)
        })
    }

    /// Names of the injected types.
    pub fn type_names(&self) -> Vec<&'static str> {
        self.map.values().map(|(_, n)| *n).collect()
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.type_names()).finish()
    }
}

// ===== Progress =====

/// Receives progress reports of running handlers (the engine implements it).
pub trait ProgressSink: Send + Sync + 'static {
    /// Attempt `attempt` of `request` is `percent` done.
    fn report(&self, request: RequestId, attempt: u32, percent: f32, message: Option<String>);
}

/// A sink that drops reports (tests, direct calls).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _: RequestId, _: u32, _: f32, _: Option<String>) {}
}

// ===== TaskContext =====

fn attempt_span(request_id: RequestId, task_id: &str, attempt: u32) -> tracing::Span {
    tracing::info_span!("atmo.task", %request_id, task_id, attempt)
}

/// What a handler receives besides its parameters.
#[derive(Clone)]
pub struct TaskContext {
    /// The request.
    pub request_id: RequestId,
    /// Its task.
    pub task_id: Arc<str>,
    /// The attempt (1-based).
    pub attempt: u32,
    /// The bank.
    pub bank_id: Arc<str>,
    /// The worker running it.
    pub worker_id: Arc<str>,
    /// When the attempt times out.
    pub deadline: Option<Timestamp>,
    /// Cancelled on timeout, cancel or shutdown.
    pub cancel: CancellationToken,
    /// Injected resources.
    pub resources: Arc<Resources>,
    /// A span for the attempt (`request_id`, `task_id`, `attempt`).
    pub span: tracing::Span,
    progress: Arc<dyn ProgressSink>,
}

impl TaskContext {
    /// A context; the engine builds these, tests may too.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        request_id: RequestId,
        task_id: Arc<str>,
        attempt: u32,
        bank_id: Arc<str>,
        worker_id: Arc<str>,
        deadline: Option<Timestamp>,
        cancel: CancellationToken,
        resources: Arc<Resources>,
        progress: Arc<dyn ProgressSink>,
    ) -> Self {
        let span = attempt_span(request_id, &task_id, attempt);
        TaskContext { request_id, task_id, attempt, bank_id, worker_id, deadline, cancel, resources, span, progress }
    }

    /// Makes a new span from the context's `request_id`, `task_id` and `attempt`, as
    /// [`TaskContext::new`] does: for a worker that reuses one context for its attempts,
    /// after it set those fields (and `cancel`, `deadline`) to the next attempt's.
    pub fn renew_span(&mut self) {
        self.span = attempt_span(self.request_id, &self.task_id, self.attempt);
    }

    /// A context for calling a handler directly, outside the engine.
    pub fn detached(task_id: &str, resources: Arc<Resources>) -> Self {
        TaskContext::new(
            RequestId::from_u128(0),
            Arc::from(task_id),
            1,
            Arc::from("direct"),
            Arc::from("direct/0"),
            None,
            CancellationToken::new(),
            resources,
            Arc::new(NoProgress),
        )
    }

    /// Reports progress (0–100).
    pub fn progress(&self, percent: f32, message: Option<&str>) {
        self.progress.report(self.request_id, self.attempt, percent.clamp(0.0, 100.0), message.map(str::to_owned));
    }

    /// The resource of type `T`.
    ///
    /// # Errors
    /// A `system` error naming the type when it was not injected.
    pub fn resource<T: Send + Sync + 'static>(&self) -> Result<&T, TaskError> {
        self.resources.require::<T>()
    }

    /// Whether the attempt should stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("request_id", &self.request_id)
            .field("task_id", &self.task_id)
            .field("attempt", &self.attempt)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

// ===== Handlers =====

/// The result of a handler.
pub type HandlerResult = Result<Value, TaskError>;

/// Work that runs on a thread and blocks it (CPU-bound work).
pub trait SyncHandler: Send + Sync + 'static {
    /// Runs one attempt.
    fn call(&self, ctx: &TaskContext, params: &Value) -> HandlerResult;
}

impl<F> SyncHandler for F
where
    F: Fn(&TaskContext, &Value) -> HandlerResult + Send + Sync + 'static,
{
    fn call(&self, ctx: &TaskContext, params: &Value) -> HandlerResult {
        self(ctx, params)
    }
}

/// Work that awaits (I/O-bound work).
pub trait AsyncHandler: Send + Sync + 'static {
    /// Runs one attempt.
    fn call(&self, ctx: TaskContext, params: Arc<Value>) -> BoxFuture<'static, HandlerResult>;
}

impl<F, Fut> AsyncHandler for F
where
    F: Fn(TaskContext, Arc<Value>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call(&self, ctx: TaskContext, params: Arc<Value>) -> BoxFuture<'static, HandlerResult> {
        Box::pin(self(ctx, params))
    }
}

/// A handler of either kind.
///
/// ```
/// use atmo_core::{Handler, TaskContext, Resources, TaskError};
/// use serde::Deserialize;
/// use serde_json::json;
/// use std::sync::Arc;
///
/// #[derive(Deserialize)]
/// struct Add { a: f64, b: f64 }
/// let add = Handler::typed(|_ctx: &TaskContext, p: Add| Ok::<_, TaskError>(json!({"result": p.a + p.b})));
/// let ctx = TaskContext::detached("add", Arc::new(Resources::new()));
/// assert_eq!(add.call_blocking(&ctx, &json!({"a": 5, "b": 3})).unwrap(), json!({"result": 8.0}));
/// ```
#[derive(Clone)]
pub enum Handler {
    /// Runs on a bank's OS threads.
    Sync(Arc<dyn SyncHandler>),
    /// Runs on the async runtime.
    Async(Arc<dyn AsyncHandler>),
}

impl Handler {
    /// A blocking handler from a closure over raw JSON.
    pub fn sync<F>(f: F) -> Self
    where
        F: Fn(&TaskContext, &Value) -> HandlerResult + Send + Sync + 'static,
    {
        Handler::Sync(Arc::new(f))
    }

    /// An async handler from a closure over raw JSON.
    pub fn asynchronous<F, Fut>(f: F) -> Self
    where
        F: Fn(TaskContext, Arc<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Handler::Async(Arc::new(f))
    }

    /// A blocking handler with typed parameters and result (serde).
    pub fn typed<P, R, F>(f: F) -> Self
    where
        P: DeserializeOwned,
        R: Serialize,
        F: Fn(&TaskContext, P) -> Result<R, TaskError> + Send + Sync + 'static,
    {
        Handler::sync(move |ctx: &TaskContext, params: &Value| {
            let p = P::deserialize(params).map_err(|e| TaskError::invalid(e.to_string()))?;
            let r = f(ctx, p)?;
            serde_json::to_value(r).map_err(|e| TaskError::new("SERIALIZE_RESULT", e.to_string()))
        })
    }

    /// An async handler with typed parameters and result (serde).
    pub fn typed_async<P, R, F, Fut>(f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(TaskContext, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, TaskError>> + Send + 'static,
    {
        let f = Arc::new(f);
        Handler::asynchronous(move |ctx: TaskContext, params: Arc<Value>| {
            let f = f.clone();
            async move {
                let p = P::deserialize(&*params).map_err(|e| TaskError::invalid(e.to_string()))?;
                let r = f(ctx, p).await?;
                serde_json::to_value(r).map_err(|e| TaskError::new("SERIALIZE_RESULT", e.to_string()))
            }
        })
    }

    /// Whether it blocks a thread.
    pub fn is_sync(&self) -> bool {
        matches!(self, Handler::Sync(_))
    }

    /// Runs a handler to completion on the current thread (async ones with a tiny executor):
    /// for direct calls and tests.
    ///
    /// # Errors
    /// The handler's error.
    pub fn call_blocking(&self, ctx: &TaskContext, params: &Value) -> HandlerResult {
        match self {
            Handler::Sync(h) => h.call(ctx, params),
            Handler::Async(h) => futures::executor::block_on(h.call(ctx.clone(), Arc::new(params.clone()))),
        }
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_sync() { "Handler::Sync" } else { "Handler::Async" })
    }
}

/// Handlers by action id: what a bank runs.
#[derive(Clone, Debug, Default)]
pub struct Handlers {
    map: HashMap<String, Handler>,
}

impl Handlers {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a handler for `action_id`.
    pub fn on(mut self, action_id: impl Into<String>, handler: Handler) -> Self {
        self.map.insert(action_id.into(), handler);
        self
    }

    /// Adds a handler in place.
    pub fn insert(&mut self, action_id: impl Into<String>, handler: Handler) {
        self.map.insert(action_id.into(), handler);
    }

    /// The handler of `action_id`.
    pub fn get(&self, action_id: &str) -> Option<&Handler> {
        self.map.get(action_id)
    }

    /// The action ids with a handler.
    pub fn action_ids(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Whether any handler blocks a thread.
    pub fn has_sync(&self) -> bool {
        self.map.values().any(Handler::is_sync)
    }

    /// Number of handlers.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
