//! [`MemoryStore`]: the lock around the state, and the [`Store`] operations on it.

use std::fmt;
use std::sync::Arc;

use atmo_core::{
    ApplyOutcome, ClaimParams, Claimed, Cursor, InsertOutcome, MetricsParams, Promoted, QueryPage, Request, RequestId,
    RequestQuery, RequestStatus, RetentionParams, Store, StoreError, StoreFuture, StoreMetrics, Timestamp, Transition,
};
use parking_lot::Mutex;

use super::slab::MAX_SLOTS;
use super::state::Inner;

/// Requests in memory: fast, nothing survives the process.
///
/// All operations complete within their first poll: the work is done when the returned future
/// is first polled, so a future dropped unpolled has no effect.
///
/// # Layout
///
/// One [`parking_lot::Mutex`] guards all state. The engine calls the store in batches, so the
/// lock is taken once per batch, and every operation is O(batch · log n) except
/// [`Store::query`], which scans every request under the lock, and the lease operations, which
/// scan the running requests. The state is:
///
/// - a **slab** of requests in fixed-size chunks. Chunks never move once allocated, so growing
///   the store never copies requests (a hash map holding requests inline would move all of
///   them on every resize, under the lock), and a deleted request's slot is reused;
/// - **compact histories**: when a request finishes, its history moves beside it in the slab as
///   24-byte entries (instead of 72) whose reason and bank and worker are indices into
///   store-wide tables of the distinct values, and is rebuilt only for the requests that `get`
///   and `query` return, exactly as written. Finished requests are the bulk of a store, kept
///   for the whole retention window: this makes a retained finished request about 450 bytes
///   beyond its parameters and result instead of about 660. The tables hold the distinct
///   values of the histories held (a few dozen: the lifecycle's words, one reason per error
///   code, one pair per worker), plus unused ones until a sweep frees them, which is due once
///   the values exceed twice those in use by 1024 (or one per 16 slots, in a large store);
/// - an **index** from request id to slot, keyed by the id folded into 64 bits (16-byte entries
///   instead of 32), each hit confirmed against the slot;
/// - one **ready queue** per task: a FIFO per priority (a bucket queue) plus a bitmap of the
///   non-empty priorities, so a claim is O(1) per request and touches memory sequentially; a
///   binary heap of a million entries costs a cache miss per level on every pop. FIFO is the
///   order requests became pending (a rescued or promoted request queues behind the requests
///   of its priority already waiting). A claim over several tasks takes the best head among
///   them (priority, then queue order), one request at a time. Entries are deleted lazily: a
///   cancelled request's entry stays until it reaches the front (or a compaction), and is
///   recognised as stale because its slot no longer holds a pending request with that id;
/// - the **scheduled** heap ordered by `run_at`, with the same lazy deletion;
/// - **leases** (owner and expiry) of assigned and processing requests, in a side table, so that
///   finished requests — the bulk of a long-running store — carry no lease fields, and
///   heartbeats and the rescuer visit running requests only;
/// - the **finished** list: terminal requests in the order of `completed_at`, which drives
///   retention and the throughput window;
/// - the **idempotency** index, keyed by a hash of the key so that keys are not copied;
/// - **metrics** kept incrementally: counts by status, a processing-time histogram and error
///   counts.
///
/// Every state change goes through [`apply_transition`](atmo_core::apply_transition) or
/// [`apply_claim`](atmo_core::apply_claim), as in every store.
///
/// Processing-time percentiles in [`Store::metrics`] cover every request completed since the
/// store was created, including ones retention deleted later; the error counts likewise. The
/// throughput window counts the finished requests still held.
///
/// ```
/// use atmo_workers::store::MemoryStore;
/// use atmo_workers::Store;
/// let store = MemoryStore::new();
/// assert_eq!(store.kind(), "memory");
/// ```
pub struct MemoryStore {
    pub(super) inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore { inner: Mutex::new(Inner::new()) }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MemoryStore");
        // `try_lock`: formatting must not deadlock when the caller already holds the lock or
        // wait behind a long query.
        match self.inner.try_lock() {
            Some(inner) => d.field("requests", &inner.slab.len).field("by_status", &inner.counts),
            None => d.field("requests", &"<locked>"),
        };
        d.finish()
    }
}

// ===== impl Store =====

impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn insert_many(&self, requests: Vec<Request>) -> StoreFuture<'_, Vec<InsertOutcome>> {
        Box::pin(async move {
            let mut inner = self.inner.lock();
            if inner.slab.len.saturating_add(requests.len()) > MAX_SLOTS {
                return Err(StoreError::Backend(Box::new(Full)));
            }
            let mut outcomes = Vec::with_capacity(requests.len());
            // Requests of one batch usually share one task `Arc`: remembering the last queue
            // saves a string hash per request.
            let mut last_queue: Option<(Arc<str>, usize)> = None;
            for req in requests {
                outcomes.push(inner.insert(req, &mut last_queue));
            }
            // Imported finished requests are compacted on insert, which may add values.
            inner.maybe_sweep_history();
            Ok(outcomes)
        })
    }

    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<Claimed>> {
        Box::pin(async move { Ok(self.inner.lock().claim(&params)) })
    }

    fn apply(&self, transitions: Vec<Transition>) -> StoreFuture<'_, Vec<ApplyOutcome>> {
        Box::pin(async move {
            let outcomes = self.apply_all(&transitions);
            // `transitions` (results, errors) are dropped here, after the lock is released.
            drop(transitions);
            Ok(outcomes)
        })
    }

    fn apply_borrowed<'a>(&'a self, transitions: &'a [Transition]) -> StoreFuture<'a, Vec<ApplyOutcome>> {
        Box::pin(async move { Ok(self.apply_all(transitions)) })
    }

    fn promote_scheduled(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<Promoted>> {
        Box::pin(async move { Ok(self.inner.lock().promote_scheduled(now, limit)) })
    }

    fn next_scheduled(&self) -> StoreFuture<'_, Option<Timestamp>> {
        Box::pin(async move { Ok(self.inner.lock().next_scheduled()) })
    }

    fn heartbeat(&self, owner: Arc<str>, until: Timestamp) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let mut inner = self.inner.lock();
            let mut n = 0;
            for lease in inner.leases.values_mut() {
                if same_owner(&lease.owner, &owner) {
                    lease.until = until;
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    fn rescue_expired(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<RequestId>> {
        Box::pin(async move {
            let mut inner = self.inner.lock();
            // Most overdue first, so a small `limit` rescues the oldest losses.
            let mut due: Vec<(Timestamp, u32)> =
                inner.leases.values().filter(|l| l.until < now).map(|l| (l.until, l.slot)).collect();
            due.sort_unstable();
            due.truncate(limit);
            Ok(inner.rescue_slots(due.into_iter().map(|(_, slot)| slot), "lease expired", now))
        })
    }

    fn rescue_owner(&self, owner: Arc<str>, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        Box::pin(async move {
            let mut inner = self.inner.lock();
            let mut slots: Vec<u32> =
                inner.leases.values().filter(|l| same_owner(&l.owner, &owner)).map(|l| l.slot).collect();
            // Slot order is insertion order (modulo reuse): deterministic, unlike map order.
            slots.sort_unstable();
            Ok(inner.rescue_slots(slots.into_iter(), reason, now))
        })
    }

    fn get(&self, id: RequestId) -> StoreFuture<'_, Option<Request>> {
        Box::pin(async move {
            let inner = self.inner.lock();
            let found = inner.index.get(id, &inner.slab).and_then(|slot| inner.slab.with_history(slot));
            Ok(found.map(|(r, h)| inner.to_request(r, h)))
        })
    }

    fn query(&self, query: RequestQuery) -> StoreFuture<'_, QueryPage> {
        Box::pin(async move {
            // Decode before locking: a bad cursor costs nothing.
            let cursor = query.pagination.cursor.as_deref().map(Cursor::decode).transpose()?;
            Ok(self.inner.lock().query(&query, cursor))
        })
    }

    fn metrics(&self, params: MetricsParams) -> StoreFuture<'_, StoreMetrics> {
        Box::pin(async move { Ok(self.inner.lock().metrics(&params)) })
    }

    fn delete_finished(&self, params: RetentionParams) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let removed = self.inner.lock().delete_finished(&params);
            // Dropped outside the lock: freeing parameters and results is the expensive part of
            // a deletion.
            Ok(removed.len())
        })
    }
}

impl MemoryStore {
    /// Applies a batch under one lock.
    fn apply_all(&self, transitions: &[Transition]) -> Vec<ApplyOutcome> {
        let finishing = transitions.iter().filter(|t| t.change().target().is_some_and(RequestStatus::is_terminal));
        let finishing = finishing.count();
        let mut inner = self.inner.lock();
        if finishing > 0 {
            inner.spent_histories.reserve_exact(finishing);
        }
        let outcomes = transitions.iter().map(|t| inner.apply_one(t)).collect();
        inner.maybe_compact();
        inner.maybe_sweep_history();
        let spent = std::mem::take(&mut inner.spent_histories);
        drop(inner);
        // The compacted histories are dropped here, after the lock is released.
        drop(spent);
        outcomes
    }
}

/// The store cannot hold more requests.
#[derive(Debug, thiserror::Error)]
#[error("the memory store holds its maximum of {MAX_SLOTS} requests; delete finished requests first")]
struct Full;

fn same_owner(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}
