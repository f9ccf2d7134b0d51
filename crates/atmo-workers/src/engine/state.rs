//! [`Engine`]: the parts of one engine, private to `engine/`. [`RequestManager`] and
//! [`WorkerManager`] are its public faces; everything they do goes through the methods of the
//! `engine/` modules.
//!
//! [`RequestManager`]: crate::RequestManager
//! [`WorkerManager`]: crate::WorkerManager

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use atmo_core::{CancellationToken, Clock, Store};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::config::EngineConfig;
use super::executor::{Reporter, WorkerMsg};
use super::intake::Intake;
use super::registry::Registry;
use super::running::RunningTable;
use super::waiters::Waiters;
use super::wake::Wakeups;
use super::{Reducer, dispatcher};
use crate::events::EventBus;
use crate::runtime::{Runtime, Task};
use crate::tracer::ActivityTracer;

pub(crate) struct Engine {
    pub(super) name: String,
    pub(super) node_id: Arc<str>,
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    /// `None` for a ledger built outside any runtime (it stores and reads; whatever needs a task
    /// or a timer answers `NoRuntime`).
    pub(super) runtime: Option<Arc<dyn Runtime>>,
    pub(super) config: EngineConfig,
    pub(super) events: Arc<EventBus>,
    pub(super) registry: Registry,
    pub(super) intake: Intake,
    pub(super) wake: Wakeups,
    /// Whether dispatch rounds claim work (off once shutdown stops it).
    pub(super) dispatching: AtomicBool,
    /// One dispatch round at a time, whether the dispatcher task or a submitter runs it; the
    /// round's buffers live under it.
    pub(super) dispatch_lock: tokio::sync::Mutex<dispatcher::Scratch>,
    /// Orders submission events before assignment events when someone listens.
    pub(super) events_gate: tokio::sync::RwLock<()>,
    pub(super) shutdown: CancellationToken,
    pub(super) running: RunningTable,
    pub(super) waiters: Waiters,
    pub(super) tracer: ActivityTracer,
    /// Where executors' reports arrive; the applier takes the receiver when the engine starts.
    pub(super) outcomes_tx: mpsc::UnboundedSender<WorkerMsg>,
    pub(super) outcomes: Mutex<Option<mpsc::UnboundedReceiver<WorkerMsg>>>,
    pub(super) started: AtomicBool,
    /// The engine's own tasks (the five loops), joined at shutdown.
    pub(super) tasks: Mutex<Vec<Task>>,
    /// Test mode: requests are run by this reducer, on a bank of the engine's own.
    pub(super) reducer: Option<Reducer>,
    /// Test mode starts the engine on its first submission, once.
    pub(super) test_mode_started: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.name)
            .field("store", &self.store.kind())
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// What an engine is made of, as its builder gathered it.
pub(crate) struct Parts {
    pub(crate) name: String,
    pub(crate) node_id: Arc<str>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) runtime: Option<Arc<dyn Runtime>>,
    pub(crate) config: EngineConfig,
    pub(crate) reducer: Option<Reducer>,
}

impl Engine {
    pub(crate) fn new(parts: Parts) -> Self {
        let Parts { name, node_id, store, clock, runtime, config, reducer } = parts;
        let (tx, rx) = mpsc::unbounded_channel();
        let events = Arc::new(EventBus::new(config.event_buffer, clock.clone()));
        // A reducer is a pure function of its input: retrying it cannot give another answer,
        // so test mode's plain tasks are not retried unless a request asks for it.
        let plain_policy =
            if reducer.is_some() { atmo_core::RetryPolicy::none() } else { atmo_core::RetryPolicy::default() };
        Engine {
            name,
            node_id,
            store,
            clock,
            runtime,
            intake: Intake::new(config.queue_capacity),
            config,
            events,
            registry: Registry::new(plain_policy),
            wake: Wakeups::default(),
            dispatching: AtomicBool::new(true),
            dispatch_lock: tokio::sync::Mutex::new(dispatcher::Scratch::default()),
            events_gate: tokio::sync::RwLock::new(()),
            shutdown: CancellationToken::new(),
            running: RunningTable::default(),
            waiters: Waiters::default(),
            tracer: ActivityTracer::new(),
            outcomes_tx: tx,
            outcomes: Mutex::new(Some(rx)),
            started: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            reducer,
            test_mode_started: tokio::sync::OnceCell::new(),
        }
    }

    // ===== what the public faces read =====

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The runtime, or `NoRuntime`.
    pub(crate) fn runtime_or_err(&self) -> atmo_core::Result<&Arc<dyn Runtime>> {
        self.runtime.as_ref().ok_or(atmo_core::Error::NoRuntime)
    }

    /// Sleeps until `deadline` by the engine's clock (forever without a runtime: only the
    /// engine's own tasks sleep, and they run on one).
    pub(super) async fn sleep_until(&self, deadline: atmo_core::Timestamp) {
        self.sleep(deadline.saturating_since(self.clock.now())).await;
    }

    /// Sleeps for `duration` on the runtime.
    pub(super) async fn sleep(&self, duration: std::time::Duration) {
        match &self.runtime {
            Some(rt) => rt.sleep(duration).await,
            None => std::future::pending().await,
        }
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn events(&self) -> &Arc<EventBus> {
        &self.events
    }

    pub(crate) fn tracer(&self) -> &ActivityTracer {
        &self.tracer
    }

    pub(crate) fn is_accepting(&self) -> bool {
        self.intake.is_accepting()
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// A reporter for a new bank.
    pub(super) fn reporter(&self) -> Reporter {
        Reporter::new(self.outcomes_tx.clone())
    }
}
