//! Helpers shared by the engine tests: paused-time settling, event draining, small manifests
//! and banks of async handlers.

use std::sync::Arc;
use std::time::Duration;

use atmo_workers::{
    ActionDefinition, BankSpec, Event, EventItem, EventKind, EventStream, Handler, Handlers, Manifest, RequestId,
    RequestStatus, StoreFuture, Timestamp, WorkerManager,
};
use futures::{FutureExt, StreamExt};

/// Lets the engine's tasks run without moving tokio's (paused) clock: `yield_now` never parks
/// the runtime, so auto-advance cannot kick in.
pub async fn settle() {
    for _ in 0..256 {
        tokio::task::yield_now().await;
    }
}

/// Advances paused time by `d`, then lets the engine react.
pub async fn advance(d: Duration) {
    tokio::time::advance(d).await;
    settle().await;
}

/// Every event already buffered in `stream`, without waiting; lag notices are returned as
/// `Err(n)`.
pub fn drain_items(stream: &mut EventStream) -> Vec<Result<Arc<Event>, u64>> {
    let mut out = Vec::new();
    // `unconstrained`: tokio's cooperative budget would otherwise end the drain after ~128 items.
    while let Some(Some(item)) = tokio::task::unconstrained(stream.next()).now_or_never() {
        out.push(match item {
            EventItem::Event(e) => Ok(e),
            EventItem::Lagged(n) => Err(n),
        });
    }
    out
}

/// Every event already buffered in `stream` (lag notices dropped).
pub fn drain(stream: &mut EventStream) -> Vec<Arc<Event>> {
    drain_items(stream).into_iter().filter_map(Result::ok).collect()
}

/// The events about one request, in order.
pub fn about(events: &[Arc<Event>], id: RequestId) -> Vec<EventKind> {
    events.iter().filter(|e| e.kind.request_id() == Some(id)).map(|e| e.kind.clone()).collect()
}

/// The status changes an event list reports for one request.
pub fn status_changes(events: &[Arc<Event>], id: RequestId) -> Vec<(Option<RequestStatus>, RequestStatus)> {
    about(events, id)
        .into_iter()
        .filter_map(|k| match k {
            EventKind::RequestStatusChanged { from, to, .. } => Some((from, to)),
            _ => None,
        })
        .collect()
}

/// A manifest whose actions accept any parameters.
pub fn lenient(name: &str, actions: &[&str]) -> anyhow::Result<Manifest> {
    let mut b = Manifest::builder(name);
    for a in actions {
        b = b.action(ActionDefinition::new(*a).lenient());
    }
    Ok(b.build()?)
}

/// A started engine on the current runtime.
pub async fn engine(name: &str) -> anyhow::Result<WorkerManager> {
    Ok(WorkerManager::builder().name(name).start().await?)
}

/// Adds a bank running `handler` for every action of `manifest`.
pub fn bank(
    manager: &WorkerManager,
    bank_id: &str,
    manifest: Manifest,
    workers: usize,
    capacity: usize,
    handler: &Handler,
) -> anyhow::Result<()> {
    let handlers = manifest.action_ids().fold(Handlers::new(), |h, a| h.on(a, handler.clone()));
    manager.initialize_worker_bank(
        BankSpec::new(bank_id, manifest).workers(workers).capacity(capacity).handlers(handlers),
    )?;
    Ok(())
}

/// Runs after `insert_many` stored its batch, before it returns.
pub type AfterInsert = Arc<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>;
/// Runs before `apply`; an error is returned instead of applying.
pub type BeforeApply = Arc<dyn Fn() -> Result<(), atmo_workers::StoreError> + Send + Sync>;

/// A memory store with hooks, for tests of how the engine copes with a slow or failing store.
#[derive(Default)]
pub struct HookedStore {
    /// The store doing the work.
    pub inner: atmo_workers::store::MemoryStore,
    /// See [`AfterInsert`].
    pub after_insert: Option<AfterInsert>,
    /// See [`BeforeApply`].
    pub before_apply: Option<BeforeApply>,
}

impl std::fmt::Debug for HookedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookedStore").finish_non_exhaustive()
    }
}

impl atmo_workers::Store for HookedStore {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn insert_many(&self, requests: Vec<atmo_workers::Request>) -> StoreFuture<'_, Vec<atmo_workers::InsertOutcome>> {
        Box::pin(async move {
            let out = self.inner.insert_many(requests).await?;
            if let Some(hook) = &self.after_insert {
                hook().await;
            }
            Ok(out)
        })
    }
    fn claim(&self, params: atmo_workers::ClaimParams) -> StoreFuture<'_, Vec<atmo_workers::Claimed>> {
        self.inner.claim(params)
    }
    fn apply(&self, transitions: Vec<atmo_workers::Transition>) -> StoreFuture<'_, Vec<atmo_workers::ApplyOutcome>> {
        if let Some(hook) = &self.before_apply
            && let Err(e) = hook()
        {
            return Box::pin(async move { Err(e) });
        }
        self.inner.apply(transitions)
    }
    fn promote_scheduled(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<atmo_workers::Promoted>> {
        self.inner.promote_scheduled(now, limit)
    }
    fn next_scheduled(&self) -> StoreFuture<'_, Option<Timestamp>> {
        self.inner.next_scheduled()
    }
    fn heartbeat(&self, owner: Arc<str>, until: Timestamp) -> StoreFuture<'_, usize> {
        self.inner.heartbeat(owner, until)
    }
    fn rescue_expired(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<RequestId>> {
        self.inner.rescue_expired(now, limit)
    }
    fn rescue_owner(&self, owner: Arc<str>, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        self.inner.rescue_owner(owner, now, reason)
    }
    fn get(&self, id: RequestId) -> StoreFuture<'_, Option<atmo_workers::Request>> {
        self.inner.get(id)
    }
    fn query(&self, query: atmo_workers::RequestQuery) -> StoreFuture<'_, atmo_workers::QueryPage> {
        self.inner.query(query)
    }
    fn metrics(&self, params: atmo_workers::MetricsParams) -> StoreFuture<'_, atmo_workers::StoreMetrics> {
        self.inner.metrics(params)
    }
    fn delete_finished(&self, params: atmo_workers::RetentionParams) -> StoreFuture<'_, usize> {
        self.inner.delete_finished(params)
    }
}
