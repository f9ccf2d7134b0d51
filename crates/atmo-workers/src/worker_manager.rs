//! [`WorkerManager`]: the runtime around a [`RequestManager`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use atmo_core::manifest::CommandSpec;
use atmo_core::{
    Bank, BankStatus, Capability, Error, Event, EventType, Handlers, Manifest, QueryPage, Request, RequestId,
    RequestLifecycle, RequestQuery, RequestResult, Resources, Result, Store, SubmitOptions, SubmitRequest,
    SystemMetrics, Task, Timestamp, WorkerInfo,
};
use serde_json::Value;

use crate::engine::banks::{BankContext, NewBank};
use crate::engine::executor::Executor;
use crate::engine::supervision::Supervision;
use crate::events::EventStream;
use crate::request_manager::{EventSubscription, RequestManager, RequestManagerBuilder};
use crate::runtime::Runtime;
use crate::tracer::LoadBalancingReport;

/// How a bank's workers run: handlers in this process, or a command each worker process runs.
/// A bank is one or the other.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum BankWorkers {
    /// One handler per manifest action, run on the bank's threads (synchronous handlers) or as
    /// tasks (asynchronous ones).
    Handlers(Handlers),
    /// Worker processes speaking the protocol, each running this command (`None`: the
    /// manifest's `command`).
    Command(Option<CommandSpec>),
}

/// What a bank runs and how big it is (`IInitWorkerBank` in the seed, plus handlers and
/// injected resources).
///
/// ```
/// use atmo_workers::{BankSpec, Handler, Handlers, Manifest, ActionDefinition, Resources};
/// use serde_json::json;
/// let manifest = Manifest::builder("math").action(ActionDefinition::new("add").lenient()).build().unwrap();
/// let spec = BankSpec::new("math-bank", manifest)
///     .workers(2)
///     .handlers(Handlers::new().on("add", Handler::sync(|_, p| Ok(json!(p["a"].as_i64().unwrap_or(0) + 1)))));
/// assert_eq!(spec.worker_count, 2);
/// ```
#[derive(Clone, Debug)]
pub struct BankSpec {
    /// Unique id.
    pub bank_id: String,
    /// Display name (default: the id).
    pub name: Option<String>,
    /// What the workers can do.
    pub manifest: Arc<Manifest>,
    /// Number of workers (OS threads for synchronous handlers, processes for a command).
    pub worker_count: usize,
    /// Runtime configuration, recorded on the bank.
    pub config: Value,
    /// How the workers run: handlers or a command (default: no handlers yet).
    pub workers: BankWorkers,
    /// Resources injected into every handler's context.
    pub resources: Resources,
    /// Requests the bank may hold at once (default: workers × the manifest's
    /// `maxConcurrentTasks`). Requests beyond the running ones wait at their worker as
    /// `assigned`.
    pub capacity: Option<usize>,
    /// 0–1: how suited the bank is to its tasks when several banks can run one.
    pub proficiency: f64,
    /// How workers that speak the protocol are supervised (process banks, executors of one's
    /// own).
    pub supervision: Supervision,
    /// Whether the bank's worker threads run at the lowest CPU priority (thread banks; see
    /// [`BankSpec::background`]).
    pub background: bool,
}

impl BankSpec {
    /// A bank of one worker running `manifest`.
    pub fn new(bank_id: impl Into<String>, manifest: impl Into<Arc<Manifest>>) -> Self {
        BankSpec {
            bank_id: bank_id.into(),
            name: None,
            manifest: manifest.into(),
            worker_count: 1,
            config: Value::Null,
            workers: BankWorkers::Handlers(Handlers::new()),
            resources: Resources::new(),
            capacity: None,
            proficiency: 1.0,
            supervision: Supervision::default(),
            background: false,
        }
    }
    /// Sets the number of workers.
    pub fn workers(mut self, n: usize) -> Self {
        self.worker_count = n;
        self
    }
    /// Sizes the bank for this machine: the [`EnvironmentSniffer`](crate::sniffer::EnvironmentSniffer)'s
    /// recommended worker count (about half the cores).
    pub fn recommended_workers(mut self) -> Self {
        self.worker_count = crate::sniffer::EnvironmentSniffer::recommended_worker_count();
        self
    }
    /// Runs these handlers (replacing a command).
    pub fn handlers(mut self, h: Handlers) -> Self {
        self.workers = BankWorkers::Handlers(h);
        self
    }
    /// Sets the injected resources.
    pub fn resources(mut self, r: Resources) -> Self {
        self.resources = r;
        self
    }
    /// Injects one resource.
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }
    /// Sets the configuration.
    pub fn config(mut self, c: Value) -> Self {
        self.config = c;
        self
    }
    /// Runs the bank's worker threads at the lowest CPU priority the OS grants without
    /// privileges (Linux: `SCHED_IDLE`): for banks of long, CPU-bound work, so that when they
    /// keep every core busy, the requests of other banks do not wait for a core at each step
    /// (they would, at normal priority: a short request crosses several threads, and each
    /// waits for a running thread's time slice to end). The bank still gets every core nobody
    /// else wants; under a load that never leaves a core idle it can be starved, so give its
    /// actions timeouts that allow for that. Thread banks only (synchronous handlers); off by
    /// default.
    pub fn background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }
    /// Sets the capacity.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = Some(n);
        self
    }
    /// Sets the proficiency.
    pub fn proficiency(mut self, p: f64) -> Self {
        self.proficiency = p.clamp(0.0, 1.0);
        self
    }
    /// Sets the display name.
    pub fn name(mut self, n: impl Into<String>) -> Self {
        self.name = Some(n.into());
        self
    }
    /// Runs worker processes with this command (instead of the manifest's; replacing handlers).
    pub fn command(mut self, c: CommandSpec) -> Self {
        self.workers = BankWorkers::Command(Some(c));
        self
    }
    /// Sets how the bank's protocol workers are supervised.
    pub fn supervision(mut self, s: Supervision) -> Self {
        self.supervision = s;
        self
    }
    /// Sets how a process bank's processes are supervised (the same as
    /// [`BankSpec::supervision`]).
    pub fn process_config(self, c: Supervision) -> Self {
        self.supervision(c)
    }

    /// Splits the spec into the bank to install and how its workers run.
    fn split(self) -> (NewBank, BankWorkers, Resources) {
        let bank_id: Arc<str> = Arc::from(self.bank_id.as_str());
        let worker_ids = (0..self.worker_count).map(|i| Arc::from(format!("{bank_id}/{i}").as_str())).collect();
        let bank = NewBank {
            bank_id,
            name: self.name,
            manifest: self.manifest,
            worker_ids,
            config: self.config,
            capacity: self.capacity,
            proficiency: self.proficiency,
            supervision: self.supervision,
        };
        (bank, self.workers, self.resources)
    }
}

/// Builds a [`WorkerManager`].
#[derive(Debug, Default)]
pub struct WorkerManagerBuilder {
    inner: RequestManagerBuilder,
}

impl WorkerManagerBuilder {
    /// Adjusts the request manager's settings (store, clock, capacity, retention, ...).
    pub fn configure(mut self, f: impl FnOnce(RequestManagerBuilder) -> RequestManagerBuilder) -> Self {
        self.inner = f(self.inner);
        self
    }

    /// Where requests live (default: memory).
    pub fn store(mut self, store: impl atmo_core::Store) -> Self {
        self.inner = self.inner.store(store);
        self
    }

    /// Names the manager.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.inner = self.inner.name(name);
        self
    }

    /// Where the engine's tasks run and sleep (default, with the `native` feature: the tokio
    /// runtime `start` is called on).
    pub fn runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.inner = self.inner.runtime(runtime);
        self
    }

    /// Starts the engine's services on its runtime.
    ///
    /// # Errors
    /// `NoRuntime` without a runtime (outside tokio with none given); a store error if
    /// rescuing the previous run's requests fails.
    pub async fn start(self) -> Result<WorkerManager> {
        let rm = self.inner.build();
        rm.engine.runtime_or_err()?;
        rm.engine.start().await?;
        Ok(WorkerManager { rm })
    }
}

/// The runtime: banks of workers processing the requests of its [`RequestManager`].
#[derive(Clone, Debug)]
pub struct WorkerManager {
    rm: RequestManager,
}

impl WorkerManager {
    /// Starts a builder.
    pub fn builder() -> WorkerManagerBuilder {
        WorkerManagerBuilder::default()
    }

    /// The request manager.
    pub fn request_manager(&self) -> &RequestManager {
        &self.rm
    }

    // ===== banks =====

    /// Initializes a bank of in-process workers: registers its manifest, tasks and
    /// capabilities, starts its workers (OS threads for synchronous handlers with the `native`
    /// feature; otherwise tasks of the runtime).
    ///
    /// # Errors
    /// `InvalidBank` when the worker count is zero, an action has no handler, a handler has no
    /// action, or the spec names a command; `BankExists`; `BankStart` when threads cannot be
    /// started; `ShuttingDown`.
    pub fn initialize_worker_bank(&self, spec: BankSpec) -> Result<()> {
        let engine = &self.rm.engine;
        engine.check_new_bank(&spec.bank_id, spec.worker_count)?;
        let handlers = match &spec.workers {
            BankWorkers::Handlers(h) => h.clone(),
            BankWorkers::Command(_) => {
                return Err(Error::InvalidBank {
                    bank_id: spec.bank_id,
                    problems: vec!["it runs a command: start it with `initialize_process_bank`".into()],
                });
            }
        };
        let mut problems = Vec::new();
        for a in spec.manifest.action_ids() {
            if handlers.get(a).is_none() {
                problems.push(format!("action `{a}` has no handler"));
            }
        }
        for h in handlers.action_ids() {
            if spec.manifest.action(h).is_none() {
                problems.push(format!("handler `{h}` matches no action of manifest `{}`", spec.manifest.name));
            }
        }
        if !problems.is_empty() {
            problems.sort();
            return Err(Error::InvalidBank { bank_id: spec.bank_id, problems });
        }
        let background = spec.background;
        let (bank, _, resources) = spec.split();
        let ctx = engine.bank_context(&bank)?;
        let executor = crate::engine::banks::handler_executor(engine, &ctx, &handlers, resources, background)?;
        match engine.install_bank(bank, &ctx, executor) {
            Ok(()) => Ok(()),
            Err((e, executor)) => {
                // Lost a race for the id: stop the workers just started.
                ctx.runtime.spawn(executor.shutdown());
                Err(e)
            }
        }
    }

    /// Initializes a bank of worker processes: each of its `worker_count` workers is a process
    /// running the spec's command (or the manifest's `command`) and speaking the worker
    /// protocol (`docs/protocol.md`). Returns once every process has announced
    /// `worker-ready` and matches the manifest.
    ///
    /// Processes that die are restarted with backoff and the requests they held are failed as
    /// `system` errors (retried under the policy); a crash loop marks the bank `error` until a
    /// process starts again. A timed-out or cancelled request gets `cancel-task`; a process that
    /// does not answer within [`Supervision::cancel_grace`] is killed and replaced.
    ///
    /// # Errors
    /// `InvalidBank` when the worker count is zero, there is no command, or handlers were given
    /// (a process bank's handlers live in its processes); `BankExists`; `BankStart` when a
    /// process cannot start, does not become ready in time, or announces another protocol
    /// version, manifest or set of actions (the message names every difference).
    #[cfg(feature = "native")]
    pub async fn initialize_process_bank(&self, spec: BankSpec) -> Result<()> {
        self.rm.engine.check_new_bank(&spec.bank_id, spec.worker_count)?;
        let command = match &spec.workers {
            BankWorkers::Command(Some(c)) => Some(c.clone()),
            BankWorkers::Command(None) => None,
            BankWorkers::Handlers(h) if h.is_empty() => None,
            BankWorkers::Handlers(_) => {
                return Err(Error::InvalidBank {
                    bank_id: spec.bank_id,
                    problems: vec![
                        "it runs worker processes: its handlers live in the processes, not in the spec".into(),
                    ],
                });
            }
        };
        let Some(command) = command.or_else(|| spec.manifest.command.clone()) else {
            return Err(Error::InvalidBank {
                problems: vec![format!("manifest `{}` has no `command` and the spec sets none", spec.manifest.name)],
                bank_id: spec.bank_id,
            });
        };
        self.initialize_bank_with(spec, move |ctx| async move {
            crate::engine::process::ProcessExecutor::start(&ctx, command).await.map_err(BankProblem)
        })
        .await
    }

    /// Initializes a bank on an executor of one's own: `make` gets the bank's [`BankContext`]
    /// (its workers, manifest, reporter, supervision settings, runtime and clock) and returns
    /// the executor once its workers are ready. The engine then dispatches the bank's requests
    /// to it and applies what it reports, with the same lifecycle as every other bank.
    ///
    /// ```
    /// use atmo_workers::{BankContext, BankSpec, Executor, Job, Manifest, Outcome, Reporter, WorkerManager};
    /// use serde_json::json;
    /// use std::time::Duration;
    ///
    /// /// Answers every job at once with its parameters.
    /// #[derive(Debug)]
    /// struct Echo(Reporter);
    /// impl Executor for Echo {
    ///     fn kind(&self) -> &'static str { "echo" }
    ///     fn dispatch(&self, job: Job) {
    ///         let params = (*job.parameters).clone();
    ///         self.0.finished_without_start(&job, Outcome::Completed(params), Duration::ZERO);
    ///     }
    ///     fn shutdown(&self) -> futures::future::BoxFuture<'static, ()> { Box::pin(async {}) }
    /// }
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let manager = WorkerManager::builder().start().await?;
    /// let manifest = atmo_workers::mock::MockWorker::manifest("echo", &["ECHO"]);
    /// manager
    ///     .initialize_bank_with(BankSpec::new("echo", manifest), |ctx: BankContext| async move {
    ///         Ok::<_, std::io::Error>(Echo(ctx.reporter))
    ///     })
    ///     .await?;
    /// let result = manager.submit_and_wait("ECHO", json!({"x": 1}), Default::default()).await?;
    /// assert_eq!(result.payload.as_deref(), Some(&json!({"x": 1})));
    /// manager.shutdown(Duration::from_secs(1)).await?;
    /// # Ok::<_, atmo_workers::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// `InvalidBank` for no workers; `BankExists`; `BankStart` with `make`'s error as its source.
    pub async fn initialize_bank_with<E, F, Fut, Err>(&self, spec: BankSpec, make: F) -> Result<()>
    where
        E: Executor,
        F: FnOnce(BankContext) -> Fut,
        Fut: Future<Output = std::result::Result<E, Err>>,
        Err: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        let engine = &self.rm.engine;
        engine.check_new_bank(&spec.bank_id, spec.worker_count)?;
        let (bank, _, _) = spec.split();
        let ctx = engine.bank_context(&bank)?;
        let executor = make(ctx.clone())
            .await
            .map_err(|e| Error::BankStart { bank_id: bank.bank_id.to_string(), source: e.into() })?;
        match engine.install_bank(bank, &ctx, Box::new(executor)) {
            Ok(()) => Ok(()),
            Err((e, executor)) => {
                executor.shutdown().await;
                Err(e)
            }
        }
    }

    /// Pauses (`Inactive`), resumes (`Active`) or drains a bank.
    ///
    /// # Errors
    /// `BankNotFound` for an unknown bank.
    pub fn set_bank_status(&self, bank_id: &str, status: BankStatus) -> Result<()> {
        self.rm.engine.set_bank_status(bank_id, status)
    }

    /// Every worker's live state.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.rm.engine.workers()
    }

    /// The activity tracer's load-balancing report.
    pub fn load_balancing_report(&self) -> LoadBalancingReport {
        self.rm.engine.tracer().load_balancing_report()
    }

    /// The activity tracer.
    pub fn tracer(&self) -> &crate::tracer::ActivityTracer {
        self.rm.engine.tracer()
    }

    /// Runs a retention sweep now; returns how many finished requests were deleted.
    pub async fn sweep_retention(&self) -> usize {
        crate::engine::maintenance::retention::sweep(&self.rm.engine).await
    }

    /// Graceful shutdown: stops intake, lets work drain for up to `drain`, then cancels what is
    /// left, stops the workers and the engine's services.
    ///
    /// With the memory store, requests still unfinished at the deadline are cancelled (reason
    /// "engine shut down"), since nothing would survive the process anyway. With a durable
    /// store, running attempts go back to `pending` and queued requests stay, to resume on the
    /// next start.
    ///
    /// # Errors
    /// A store error while cancelling.
    pub async fn shutdown(&self, drain: Duration) -> Result<()> {
        self.rm.engine.shutdown(drain).await
    }

    // ===== the request manager's API, for convenience =====

    /// See [`RequestManager::name`].
    pub fn name(&self) -> &str {
        self.rm.name()
    }
    /// See [`RequestManager::node_id`].
    pub fn node_id(&self) -> &str {
        self.rm.node_id()
    }
    /// See [`RequestManager::store`].
    pub fn store(&self) -> &Arc<dyn Store> {
        self.rm.store()
    }
    /// See [`RequestManager::is_accepting`].
    pub fn is_accepting(&self) -> bool {
        self.rm.is_accepting()
    }
    /// See [`RequestManager::now`].
    pub fn now(&self) -> Timestamp {
        self.rm.now()
    }
    /// See [`RequestManager::register_manifest`].
    pub fn register_manifest(&self, manifest: Manifest) -> Arc<Manifest> {
        self.rm.register_manifest(manifest)
    }
    /// See [`RequestManager::register_task`].
    pub fn register_task(&self, task: Task) {
        self.rm.register_task(task);
    }
    /// See [`RequestManager::tasks`].
    pub fn tasks(&self) -> Vec<Task> {
        self.rm.tasks()
    }
    /// See [`RequestManager::manifests`].
    pub fn manifests(&self) -> Vec<Arc<Manifest>> {
        self.rm.manifests()
    }
    /// See [`RequestManager::banks`].
    pub fn banks(&self) -> Vec<Bank> {
        self.rm.banks()
    }
    /// See [`RequestManager::capabilities`].
    pub fn capabilities(&self) -> Vec<Capability> {
        self.rm.capabilities()
    }
    /// See [`RequestManager::submit`].
    ///
    /// # Errors
    /// As [`RequestManager::submit`].
    pub async fn submit(&self, task_id: &str, parameters: Value, options: SubmitOptions) -> Result<RequestId> {
        self.rm.submit(task_id, parameters, options).await
    }
    /// See [`RequestManager::submit_many`].
    ///
    /// # Errors
    /// As [`RequestManager::submit_many`].
    pub async fn submit_many(&self, requests: Vec<SubmitRequest>) -> Result<Vec<RequestId>> {
        self.rm.submit_many(requests).await
    }
    /// See [`RequestManager::submit_and_wait`].
    ///
    /// # Errors
    /// As [`RequestManager::submit_and_wait`].
    pub async fn submit_and_wait(
        &self,
        task_id: &str,
        parameters: Value,
        options: SubmitOptions,
    ) -> Result<RequestResult> {
        self.rm.submit_and_wait(task_id, parameters, options).await
    }
    /// See [`RequestManager::submit_many_and_wait`].
    ///
    /// # Errors
    /// As [`RequestManager::submit_many_and_wait`].
    pub async fn submit_many_and_wait(&self, requests: Vec<SubmitRequest>) -> Result<Vec<RequestResult>> {
        self.rm.submit_many_and_wait(requests).await
    }
    /// See [`RequestManager::get_request`].
    ///
    /// # Errors
    /// As [`RequestManager::get_request`].
    pub async fn get_request(&self, id: RequestId) -> Result<Request> {
        self.rm.get_request(id).await
    }
    /// See [`RequestManager::get_result`].
    ///
    /// # Errors
    /// As [`RequestManager::get_result`].
    pub async fn get_result(&self, id: RequestId) -> Result<Option<RequestResult>> {
        self.rm.get_result(id).await
    }
    /// See [`RequestManager::get_lifecycle`].
    ///
    /// # Errors
    /// As [`RequestManager::get_lifecycle`].
    pub async fn get_lifecycle(&self, id: RequestId) -> Result<RequestLifecycle> {
        self.rm.get_lifecycle(id).await
    }
    /// See [`RequestManager::query`].
    ///
    /// # Errors
    /// As [`RequestManager::query`].
    pub async fn query(&self, query: RequestQuery) -> Result<QueryPage> {
        self.rm.query(query).await
    }
    /// See [`RequestManager::metrics`].
    ///
    /// # Errors
    /// As [`RequestManager::metrics`].
    pub async fn metrics(&self) -> Result<SystemMetrics> {
        self.rm.metrics().await
    }
    /// See [`RequestManager::cancel`].
    ///
    /// # Errors
    /// As [`RequestManager::cancel`].
    pub async fn cancel(&self, id: RequestId) -> Result<()> {
        self.rm.cancel(id).await
    }
    /// See [`RequestManager::wait`].
    ///
    /// # Errors
    /// As [`RequestManager::wait`].
    pub async fn wait(&self, id: RequestId) -> Result<RequestResult> {
        self.rm.wait(id).await
    }
    /// See [`RequestManager::wait_timeout`].
    ///
    /// # Errors
    /// As [`RequestManager::wait_timeout`].
    pub async fn wait_timeout(&self, id: RequestId, limit: Duration) -> Result<RequestResult> {
        self.rm.wait_timeout(id, limit).await
    }
    /// See [`RequestManager::subscribe`].
    pub fn subscribe(&self) -> EventStream {
        self.rm.subscribe()
    }
    /// See [`RequestManager::on`].
    ///
    /// # Errors
    /// As [`RequestManager::on`].
    pub fn on<F>(&self, event: EventType, callback: F) -> Result<EventSubscription>
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        self.rm.on(event, callback)
    }
    /// See [`RequestManager::on_many`].
    ///
    /// # Errors
    /// As [`RequestManager::on_many`].
    pub fn on_many<F>(&self, events: &[EventType], callback: F) -> Result<EventSubscription>
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        self.rm.on_many(events, callback)
    }
    /// See [`RequestManager::next_event_where`].
    ///
    /// # Errors
    /// As [`RequestManager::next_event_where`].
    pub fn next_event_where<F>(&self, limit: Duration, f: F) -> impl Future<Output = Result<Arc<Event>>> + use<F>
    where
        F: FnMut(&Event) -> bool,
    {
        self.rm.next_event_where(limit, f)
    }
}

/// Why a bank's workers could not start, as its executor put it.
#[cfg(feature = "native")]
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BankProblem(String);
