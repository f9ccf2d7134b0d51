//! Helpers shared by the engine tests: paused-time settling, event draining, small manifests
//! and banks of async handlers.

use std::sync::Arc;
use std::time::Duration;

use atmo_workers::{
    ActionDefinition, BankSpec, Event, EventItem, EventKind, EventStream, Handler, Handlers, Manifest, RequestId,
    RequestStatus, WorkerManager,
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

pub use atmo_testkit::hooked::{AfterInsert, BeforeApply};

/// A memory store with hooks, for tests of how the engine copes with a slow or failing store.
pub type HookedStore = atmo_testkit::hooked::HookedStore<atmo_workers::store::MemoryStore>;
