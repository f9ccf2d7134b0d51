//! The engine's internals, shared by [`RequestManager`](crate::RequestManager) and
//! [`WorkerManager`](crate::WorkerManager).

pub(crate) mod applier;
pub(crate) mod bank;
pub(crate) mod config;
pub(crate) mod dispatcher;
pub(crate) mod executor;
pub(crate) mod maintenance;
pub(crate) mod process;
pub(crate) mod running;
pub(crate) mod thread;
pub(crate) mod waiters;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use atmo_core::manifest::ManifestRegistry;
use atmo_core::{
    ApplyOutcome, Bank, CancellationToken, Capability, Change, Clock, ErrorCategory, EventKind, Manifest, RequestId,
    RequestResult, RequestStatus, RetryPolicy, Store, Task, TaskError, Transition,
};
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use self::bank::BankRuntime;
use self::config::EngineConfig;
use self::executor::{Reporter, WorkerMsg};
use self::running::RunningTable;
use self::waiters::Waiters;
use crate::events::EventBus;
use crate::tracer::ActivityTracer;

/// The test-mode reducer: computes a result from a task id and parameters.
pub type Reducer = Arc<dyn Fn(&str, &Value) -> Result<Value, TaskError> + Send + Sync>;

/// A registered task and the policies that apply to it.
#[derive(Debug)]
pub(crate) struct TaskEntry {
    pub(crate) task: Task,
    pub(crate) manifest: Option<Arc<Manifest>>,
    pub(crate) action: Option<usize>,
    pub(crate) timeout: Duration,
    pub(crate) policy: Arc<RetryPolicy>,
    pub(crate) retryable: bool,
}

impl TaskEntry {
    pub(crate) fn plain(task: Task) -> Self {
        TaskEntry {
            task,
            manifest: None,
            action: None,
            timeout: atmo_core::manifest::DEFAULT_TIMEOUT,
            policy: Arc::new(RetryPolicy::default()),
            retryable: true,
        }
    }

    pub(crate) fn from_manifest(manifest: &Arc<Manifest>, index: usize) -> Option<Self> {
        let action = manifest.actions.get(index)?;
        let mut task = Task::new(action.action_id.as_str(), action.action_id.clone());
        task.description = (!action.description.is_empty()).then(|| action.description.clone());
        task.manifest = Some(manifest.name.clone());
        Some(TaskEntry {
            task,
            manifest: Some(manifest.clone()),
            action: Some(index),
            timeout: manifest.timeout_for(action),
            policy: Arc::new(manifest.retry_for(action)),
            retryable: action.retryable,
        })
    }

    pub(crate) fn action(&self) -> Option<&atmo_core::ActionDefinition> {
        self.manifest.as_ref().zip(self.action).and_then(|(m, i)| m.actions.get(i))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) tasks: FxHashMap<Arc<str>, Arc<TaskEntry>>,
    pub(crate) banks: BTreeMap<Arc<str>, Bank>,
    pub(crate) capabilities: BTreeMap<(Arc<str>, Arc<str>), Capability>,
    pub(crate) manifests: ManifestRegistry,
}

impl Registry {
    pub(crate) fn known_tasks(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tasks.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }
}

pub(crate) struct Inner {
    pub(crate) name: String,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) node_id: Arc<str>,
    pub(crate) config: EngineConfig,
    pub(crate) events: Arc<EventBus>,
    pub(crate) registry: RwLock<Registry>,
    pub(crate) reducer: Option<Reducer>,
    /// Accepted requests not finished yet (the intake bound counts these).
    pub(crate) active: AtomicUsize,
    pub(crate) accepting: AtomicBool,
    pub(crate) dispatching: AtomicBool,
    pub(crate) dispatch_wake: Notify,
    /// One dispatch round at a time, whether the dispatcher task or a submitter runs it; the
    /// round's buffers live under it.
    pub(crate) dispatch_lock: tokio::sync::Mutex<dispatcher::Scratch>,
    /// Orders submission events before assignment events when someone listens.
    pub(crate) events_gate: tokio::sync::RwLock<()>,
    /// Wakes the applier when work was dispatched (it then watches for long-running starts).
    pub(crate) applier_wake: Notify,
    pub(crate) schedule_wake: Notify,
    pub(crate) shutdown: CancellationToken,
    pub(crate) running: RunningTable,
    pub(crate) waiters: Waiters,
    pub(crate) banks: RwLock<Vec<Arc<BankRuntime>>>,
    pub(crate) tracer: ActivityTracer,
    pub(crate) reporter: Reporter,
    pub(crate) outcomes: Mutex<Option<mpsc::UnboundedReceiver<WorkerMsg>>>,
    pub(crate) started: AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.name)
            .field("store", &self.store.kind())
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Buffers that [`Inner::commit_drain`] reuses from one batch to the next.
#[derive(Debug, Default)]
pub(crate) struct CommitScratch {
    finished: Vec<(RequestId, RequestResult)>,
    waiters: waiters::Scratch,
}

/// Reused buffers keep at most this many elements' room, so one huge batch does not hold its
/// memory for the engine's lifetime.
pub(crate) const SCRATCH_KEEP: usize = 16 * 1024;

/// Empties `v`, giving its memory back if it grew beyond [`SCRATCH_KEEP`] elements.
pub(crate) fn trim_scratch<T>(v: &mut Vec<T>) {
    v.clear();
    if v.capacity() > SCRATCH_KEEP {
        *v = Vec::new();
    }
}

impl CommitScratch {
    fn trim(&mut self) {
        trim_scratch(&mut self.finished);
        self.waiters.trim();
    }
}

impl Inner {
    pub(crate) fn new(
        name: String,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        node_id: Arc<str>,
        config: EngineConfig,
        reducer: Option<Reducer>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let events = Arc::new(EventBus::new(config.event_buffer, clock.clone()));
        Inner {
            name,
            store,
            clock,
            node_id,
            config,
            events,
            registry: RwLock::new(Registry::default()),
            reducer,
            active: AtomicUsize::new(0),
            accepting: AtomicBool::new(true),
            dispatching: AtomicBool::new(true),
            dispatch_wake: Notify::new(),
            dispatch_lock: tokio::sync::Mutex::new(dispatcher::Scratch::default()),
            events_gate: tokio::sync::RwLock::new(()),
            applier_wake: Notify::new(),
            schedule_wake: Notify::new(),
            shutdown: CancellationToken::new(),
            running: RunningTable::default(),
            waiters: Waiters::default(),
            banks: RwLock::new(Vec::new()),
            tracer: ActivityTracer::new(),
            reporter: Reporter { tx },
            outcomes: Mutex::new(Some(rx)),
            started: AtomicBool::new(false),
        }
    }

    pub(crate) fn bank(&self, index: u32) -> Option<Arc<BankRuntime>> {
        self.banks.read().get(index as usize).cloned()
    }

    /// Applies transitions through the store, then publishes what took effect: events, waiters,
    /// the intake count, wake-ups. Every state change of the engine goes through here.
    pub(crate) async fn commit(
        &self,
        transitions: Vec<Transition>,
    ) -> Result<Vec<ApplyOutcome>, atmo_core::StoreError> {
        self.commit_or_return(transitions).await.map_err(|(e, _)| e)
    }

    /// [`Inner::commit`], which on a store error hands the transitions back, so that a caller
    /// that retries them need not keep a copy of its own.
    pub(crate) async fn commit_or_return(
        &self,
        mut transitions: Vec<Transition>,
    ) -> Result<Vec<ApplyOutcome>, (atmo_core::StoreError, Vec<Transition>)> {
        match self.commit_drain(&mut transitions, &mut CommitScratch::default()).await {
            Ok(o) => Ok(o),
            Err(e) => Err((e, transitions)),
        }
    }

    /// [`Inner::commit`] for a caller that commits batch after batch: the transitions are
    /// drained from `transitions` (left as they were on a store error) and the buffers are
    /// reused, so a batch allocates no large vectors of its own. Large short-lived vectors are
    /// what the system allocator handles worst (fresh pages, and a consolidation of its free
    /// lists on every release).
    pub(crate) async fn commit_drain(
        &self,
        transitions: &mut Vec<Transition>,
        scratch: &mut CommitScratch,
    ) -> Result<Vec<ApplyOutcome>, atmo_core::StoreError> {
        if transitions.is_empty() {
            return Ok(Vec::new());
        }
        // The store only reads the transitions: what took effect is published from them after.
        let outcomes = self.store.apply_borrowed(transitions).await?;
        let finished = &mut scratch.finished;
        finished.clear();
        let mut wake_dispatch = false;
        let mut wake_schedule = false;
        let mut terminal = 0usize;
        let events_on = self.events.active();
        // Results are built only when someone waits for them.
        let waited = self.waiters.any();
        for (t, outcome) in transitions.drain(..).zip(&outcomes) {
            let Ok(applied) = outcome else { continue };
            let at = t.at();
            let change = t.into_change();
            let id = applied.id;
            if events_on && applied.from != applied.to {
                self.events.emit_at(
                    at,
                    EventKind::RequestStatusChanged {
                        request_id: id,
                        from: Some(applied.from),
                        to: applied.to,
                        attempt: applied.attempt,
                    },
                );
            }
            let processing_ms = applied.started_at.map(|s| at.saturating_since(s).as_secs_f64() * 1000.0);
            let result =
                |status: RequestStatus, payload: Option<Arc<Value>>, error: Option<atmo_core::RequestError>| {
                    RequestResult {
                        request_id: id,
                        status,
                        success: status == RequestStatus::Completed,
                        payload,
                        error,
                        processing_time_ms: processing_ms,
                        attempts: applied.attempt,
                        completed_at: Some(at),
                    }
                };
            match change {
                Change::Start { worker_id } if events_on => {
                    self.events.emit_at(
                        at,
                        EventKind::RequestProcessing {
                            request_id: id,
                            bank_id: applied.bank_id.clone(),
                            worker_id: Some(worker_id),
                            attempt: applied.attempt,
                        },
                    );
                }
                Change::Complete { result: value } => {
                    terminal += 1;
                    self.events.emit_with_at(at, || EventKind::RequestCompleted {
                        request_id: id,
                        task_id: applied.task_id.clone(),
                        bank_id: applied.bank_id.clone(),
                        processing_time_ms: processing_ms,
                    });
                    if waited {
                        finished.push((id, result(RequestStatus::Completed, Some(value), None)));
                    }
                }
                Change::Fail { error } => {
                    terminal += 1;
                    self.events.emit_with_at(at, || EventKind::RequestFailed {
                        request_id: id,
                        task_id: applied.task_id.clone(),
                        error: error.clone(),
                    });
                    if waited {
                        finished.push((id, result(RequestStatus::Failed, None, Some(error))));
                    }
                }
                Change::TimeOut { error } => {
                    terminal += 1;
                    self.events.emit_with_at(at, || EventKind::RequestTimeout {
                        request_id: id,
                        attempt: applied.attempt,
                        r#final: true,
                    });
                    if waited {
                        finished.push((id, result(RequestStatus::TimedOut, None, Some(error))));
                    }
                }
                Change::Retry { error, run_at } => {
                    wake_schedule = true;
                    if events_on {
                        if error.category == ErrorCategory::Timeout {
                            self.events.emit_at(
                                at,
                                EventKind::RequestTimeout { request_id: id, attempt: applied.attempt, r#final: false },
                            );
                        }
                        self.events.emit_at(
                            at,
                            EventKind::RequestRetrying { request_id: id, attempt: applied.attempt, run_at, error },
                        );
                    }
                }
                Change::Rescue { reason } => {
                    wake_dispatch = true;
                    self.events.emit_with_at(at, || EventKind::RequestRescued {
                        request_id: id,
                        attempt: applied.attempt,
                        reason: reason.into_owned(),
                    });
                }
                Change::Promote => wake_dispatch = true,
                Change::Cancel { reason } => {
                    terminal += 1;
                    self.events.emit_with_at(at, || EventKind::RequestCancelled {
                        request_id: id,
                        reason: reason.to_string(),
                    });
                    if waited {
                        finished.push((id, result(RequestStatus::Cancelled, None, None)));
                    }
                }
                Change::Progress(p) => {
                    self.events.emit_with_at(at, || EventKind::RequestProgress {
                        request_id: id,
                        attempt: applied.attempt,
                        percent: p.percent,
                        message: p.message.clone(),
                    });
                }
                _ => {}
            }
        }
        if terminal > 0 {
            let _ = self.active.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(terminal)));
        }
        self.waiters.complete_many(finished, &mut scratch.waiters);
        scratch.trim();
        if wake_dispatch {
            self.dispatch_wake.notify_one();
        }
        if wake_schedule {
            self.schedule_wake.notify_one();
        }
        Ok(outcomes)
    }

    /// Takes a running attempt off this engine's books: its worker slot and bank capacity are
    /// free again. Returns whether it was still held.
    pub(crate) fn release_running(&self, id: RequestId, attempt: u32, cancel: bool) -> bool {
        let Some(entry) = self.running.remove_attempt(id, attempt) else { return false };
        if cancel {
            entry.token.cancel();
        }
        if let Some(bank) = self.bank(entry.bank) {
            bank.release(1);
        }
        self.dispatch_wake.notify_one();
        true
    }
}
