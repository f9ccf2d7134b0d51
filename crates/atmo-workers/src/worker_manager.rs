//! [`WorkerManager`]: the runtime around a [`RequestManager`].

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atmo_core::manifest::CommandSpec;
use atmo_core::{
    BankStatus, Capability, Error, EventKind, Handlers, Manifest, RequestQuery, RequestStatus, Resources, Result,
    Transition, WorkerInfo,
};
use serde_json::Value;

use crate::engine::bank::BankRuntime;
use crate::engine::executor::Executor;
use crate::engine::process::{ProcessConfig, ProcessExecutor, ProcessStats};
use crate::engine::thread::{ThreadExecutor, WorkerEnv};
use crate::engine::{applier, dispatcher, maintenance};
use crate::request_manager::{RequestManager, RequestManagerBuilder};
use crate::tracer::LoadBalancingReport;

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
    /// Number of workers (OS threads for synchronous handlers).
    pub worker_count: usize,
    /// Runtime configuration, recorded on the bank.
    pub config: Value,
    /// One handler per manifest action.
    pub handlers: Handlers,
    /// Resources injected into every handler's context.
    pub resources: Resources,
    /// Requests the bank may hold at once (default: workers × the manifest's
    /// `maxConcurrentTasks`). Requests beyond the running ones wait at their worker as
    /// `assigned`.
    pub capacity: Option<usize>,
    /// 0–1: how suited the bank is to its tasks when several banks can run one.
    pub proficiency: f64,
    /// For a process bank: the command each worker runs (default: the manifest's `command`).
    pub command: Option<CommandSpec>,
    /// For a process bank: how its processes are supervised.
    pub process: ProcessConfig,
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
            handlers: Handlers::new(),
            resources: Resources::new(),
            capacity: None,
            proficiency: 1.0,
            command: None,
            process: ProcessConfig::default(),
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
    /// Sets the handlers.
    pub fn handlers(mut self, h: Handlers) -> Self {
        self.handlers = h;
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
    /// Sets the command of a process bank (instead of the manifest's).
    pub fn command(mut self, c: CommandSpec) -> Self {
        self.command = Some(c);
        self
    }
    /// Sets how a process bank's processes are supervised.
    pub fn process_config(mut self, c: ProcessConfig) -> Self {
        self.process = c;
        self
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

    /// Starts the engine's services on the current tokio runtime.
    ///
    /// # Errors
    /// `Config` outside a tokio runtime; a store error if rescuing the previous run's requests
    /// fails.
    pub async fn start(self) -> Result<WorkerManager> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Config("the worker manager needs a tokio runtime".into()))?;
        let rm = self.inner.build();
        let inner = rm.inner.clone();
        // A durable store may hold requests this node held when it stopped: rescue them.
        let now = inner.clock.now();
        let mut rescued = inner.store.rescue_owner(inner.node_id.clone(), now, "engine restarted").await?;
        rescued.extend(inner.store.recover_orphans(now, "engine restarted").await?);
        if !rescued.is_empty() {
            tracing::warn!(count = rescued.len(), "rescued requests held by a previous run of this node");
        }
        let metrics = inner.store.metrics(atmo_core::MetricsParams { now, window_start: now, top_errors: 0 }).await?;
        let unfinished = RequestStatus::ALL.iter().filter(|s| !s.is_terminal()).map(|s| metrics.count(*s)).sum::<u64>();
        inner.active.store(usize::try_from(unfinished).unwrap_or(usize::MAX), Ordering::Release);
        let rx = inner.outcomes.lock().take().ok_or_else(|| Error::Config("engine already started".into()))?;
        inner.started.store(true, Ordering::Release);
        let tasks = vec![
            handle.spawn(applier::run(inner.clone(), rx)),
            handle.spawn(dispatcher::run(inner.clone())),
            handle.spawn(maintenance::scheduler(inner.clone())),
            handle.spawn(maintenance::retention(inner.clone())),
            handle.spawn(maintenance::leases(inner.clone())),
        ];
        inner.dispatch_wake.notify_one();
        Ok(WorkerManager { rm, tasks: Arc::new(parking_lot::Mutex::new(tasks)), runtime: handle })
    }
}

/// The runtime: banks of workers processing the requests of its [`RequestManager`]
/// (reachable through `Deref`: `manager.submit(...)`, `manager.query(...)`).
#[derive(Clone, Debug)]
pub struct WorkerManager {
    rm: RequestManager,
    tasks: Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    runtime: tokio::runtime::Handle,
}

impl Deref for WorkerManager {
    type Target = RequestManager;
    fn deref(&self) -> &RequestManager {
        &self.rm
    }
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

    /// Initializes a bank: registers its manifest, tasks and capabilities, starts its workers.
    ///
    /// # Errors
    /// `Config` when the id is taken, the worker count is zero, an action has no handler or a
    /// handler has no action, or threads cannot be started.
    pub fn initialize_worker_bank(&self, spec: BankSpec) -> Result<()> {
        let inner = &self.rm.inner;
        check_spec(inner, &spec)?;
        let mut problems = Vec::new();
        for a in spec.manifest.action_ids() {
            if spec.handlers.get(a).is_none() {
                problems.push(format!("action `{a}` has no handler"));
            }
        }
        for h in spec.handlers.action_ids() {
            if spec.manifest.action(h).is_none() {
                problems.push(format!("handler `{h}` matches no action of manifest `{}`", spec.manifest.name));
            }
        }
        if !problems.is_empty() {
            problems.sort();
            return Err(Error::Config(format!("bank `{}`: {}", spec.bank_id, problems.join("; "))));
        }
        let bank_id: Arc<str> = Arc::from(spec.bank_id.as_str());
        let worker_ids = worker_ids(&bank_id, spec.worker_count);
        let env = WorkerEnv {
            bank_id: bank_id.clone(),
            worker_ids: worker_ids.clone(),
            handlers: WorkerEnv::index_handlers(&spec.handlers),
            resources: Arc::new(spec.resources.clone()),
            reporter: inner.reporter.clone(),
            progress: Arc::new(inner.reporter.clone()),
            events: inner.events.clone(),
            slots: (0..spec.worker_count).map(|_| parking_lot::Mutex::new(None)).collect(),
        };
        let executor = ThreadExecutor::start(env, spec.worker_count, self.runtime.clone())
            .map_err(|e| Error::Config(format!("cannot start the threads of bank `{bank_id}`: {e}")))?;
        match self.install(spec, worker_ids, Box::new(executor), None) {
            Ok(_) => Ok(()),
            Err((e, executor)) => {
                // Lost a race for the id: stop the threads just started.
                self.runtime.spawn(executor.shutdown());
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
    /// does not answer within [`ProcessConfig::cancel_grace`] is killed and replaced.
    ///
    /// # Errors
    /// `Config` when the id is taken, the worker count is zero, there is no command, handlers
    /// were given (a process bank's handlers live in its processes), or a process cannot start,
    /// does not become ready in time, or announces another protocol version, manifest or set of
    /// actions (the message names every difference).
    pub async fn initialize_process_bank(&self, spec: BankSpec) -> Result<()> {
        let inner = &self.rm.inner;
        check_spec(inner, &spec)?;
        if !spec.handlers.is_empty() {
            return Err(Error::Config(format!(
                "bank `{}` runs worker processes: its handlers live in the processes, not in the spec",
                spec.bank_id
            )));
        }
        let Some(command) = spec.command.clone().or_else(|| spec.manifest.command.clone()) else {
            return Err(Error::Config(format!(
                "bank `{}`: manifest `{}` has no `command` and the spec sets none",
                spec.bank_id, spec.manifest.name
            )));
        };
        let bank_id: Arc<str> = Arc::from(spec.bank_id.as_str());
        let worker_ids = worker_ids(&bank_id, spec.worker_count);
        let index = Arc::new(std::sync::atomic::AtomicU32::new(u32::MAX));
        let (executor, stats) = ProcessExecutor::start(
            bank_id.clone(),
            index.clone(),
            worker_ids.clone(),
            spec.manifest.clone(),
            command,
            spec.process.clone(),
            inner.reporter.clone(),
            &self.runtime,
        )
        .await
        .map_err(|p| Error::Config(format!("bank `{bank_id}`: {p}")))?;
        match self.install(spec, worker_ids, Box::new(executor), Some(stats)) {
            Ok(i) => {
                index.store(i, Ordering::Release);
                Ok(())
            }
            Err((e, executor)) => {
                executor.shutdown().await;
                Err(e)
            }
        }
    }

    /// Registers a started bank; gives the executor back if the id was taken meanwhile.
    fn install(
        &self,
        spec: BankSpec,
        worker_ids: Vec<Arc<str>>,
        executor: Box<dyn Executor>,
        stats: Option<Arc<ProcessStats>>,
    ) -> std::result::Result<u32, (Error, Box<dyn Executor>)> {
        let inner = &self.rm.inner;
        let bank_id: Arc<str> = Arc::from(spec.bank_id.as_str());
        let capacity = spec.capacity.unwrap_or(spec.worker_count * spec.manifest.concurrency_per_worker()).max(1);
        let mut banks = inner.banks.write();
        if banks.iter().any(|b| b.id == bank_id) {
            return Err((Error::Config(format!("a bank with id `{bank_id}` already exists")), executor));
        }
        let Ok(index) = u32::try_from(banks.len()) else {
            return Err((Error::Config("too many banks".into()), executor));
        };
        let activity = inner.tracer.initialize_bank(bank_id.clone(), worker_ids.clone());
        let manifest = self.rm.register_manifest((*spec.manifest).clone());
        let mut runtime = BankRuntime::new(
            index,
            bank_id.clone(),
            spec.name.unwrap_or_else(|| spec.bank_id.clone()),
            manifest.clone(),
            spec.config,
            inner.clock.now(),
            worker_ids.clone(),
            capacity,
            spec.proficiency,
            activity,
            executor,
        );
        runtime.process_stats = stats;
        banks.push(Arc::new(runtime));
        drop(banks);
        for task in manifest.action_ids() {
            let mut c = Capability::new(bank_id.clone(), task, capacity);
            c.proficiency = spec.proficiency;
            self.rm.register_capability(c);
        }
        inner.events.emit_with(|| EventKind::BankInitialized {
            bank_id: bank_id.clone(),
            manifest: Some(manifest.name.clone()),
            worker_count: worker_ids.len(),
        });
        for w in &worker_ids {
            inner.events.emit_with(|| EventKind::WorkerCreated { worker_id: w.clone(), bank_id: bank_id.clone() });
        }
        inner.dispatch_wake.notify_one();
        Ok(index)
    }

    /// Pauses (`Inactive`), resumes (`Active`) or drains a bank.
    ///
    /// # Errors
    /// `NotFound`-style `Config` error for an unknown bank.
    pub fn set_bank_status(&self, bank_id: &str, status: BankStatus) -> Result<()> {
        let banks = self.rm.inner.banks.read();
        let bank = banks
            .iter()
            .find(|b| &*b.id == bank_id)
            .ok_or_else(|| Error::Config(format!("no bank with id `{bank_id}`")))?;
        bank.set_status(status);
        self.rm.inner.events.emit_with(|| EventKind::BankStatusChanged { bank_id: bank.id.clone(), status });
        self.rm.inner.dispatch_wake.notify_one();
        Ok(())
    }

    /// Every worker's live state.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.rm.inner.tracer.workers(None)
    }

    /// The activity tracer's load-balancing report.
    pub fn load_balancing_report(&self) -> LoadBalancingReport {
        self.rm.inner.tracer.load_balancing_report()
    }

    /// The activity tracer.
    pub fn tracer(&self) -> &crate::tracer::ActivityTracer {
        &self.rm.inner.tracer
    }

    /// Runs a retention sweep now; returns how many finished requests were deleted.
    pub async fn sweep_retention(&self) -> usize {
        maintenance::sweep(&self.rm.inner).await
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
        let inner = &self.rm.inner;
        if !inner.accepting.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        inner.events.emit_with(|| EventKind::SystemShutdown {});
        let durable = inner.store.kind() != "memory";
        if durable {
            // Queued requests stay queued for the next start; only running ones finish.
            inner.dispatching.store(false, Ordering::Release);
        }
        let deadline = tokio::time::Instant::now() + drain;
        loop {
            let busy = if durable { inner.running.len() } else { inner.active.load(Ordering::Acquire) };
            if busy == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5).min(drain)).await;
        }
        inner.dispatching.store(false, Ordering::Release);
        let now = inner.clock.now();
        let running = inner.running.ids();
        if durable {
            let transitions = running
                .iter()
                .map(|(id, a)| Transition::rescue(*id, *a, "engine shut down during the attempt", now))
                .collect();
            inner.commit(transitions).await?;
            for (id, a) in running {
                inner.release_running(id, a, true);
            }
        } else {
            for (id, _) in &running {
                let _ = self.rm.cancel_with_reason(*id, "engine shut down").await;
            }
            loop {
                let page = inner
                    .store
                    .query(RequestQuery::new().status([RequestStatus::Pending, RequestStatus::Scheduled]).limit(1000))
                    .await?;
                if page.requests.is_empty() {
                    break;
                }
                let ts =
                    page.requests.iter().map(|r| Transition::cancel(r.request_id, "engine shut down", now)).collect();
                inner.commit(ts).await?;
            }
        }
        let banks = inner.banks.read().clone();
        for b in &banks {
            b.set_status(BankStatus::Terminated);
        }
        for b in &banks {
            // A handler that ignores its cancellation token may hold its thread; don't wait forever.
            let _ = tokio::time::timeout(Duration::from_secs(5), b.executor.shutdown()).await;
        }
        inner.shutdown.cancel();
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    }
}

fn check_spec(inner: &crate::engine::Inner, spec: &BankSpec) -> Result<()> {
    if !inner.accepting.load(Ordering::Acquire) {
        return Err(Error::ShuttingDown);
    }
    if spec.worker_count == 0 {
        return Err(Error::Config(format!("bank `{}` needs at least one worker", spec.bank_id)));
    }
    if inner.banks.read().iter().any(|b| *b.id == *spec.bank_id) {
        return Err(Error::Config(format!("a bank with id `{}` already exists", spec.bank_id)));
    }
    Ok(())
}

fn worker_ids(bank_id: &str, n: usize) -> Vec<Arc<str>> {
    (0..n).map(|i| Arc::from(format!("{bank_id}/{i}").as_str())).collect()
}
