//! The in-memory store: [`MemoryStore`].
//!
//! Fast, and nothing survives the process: a restart loses every request. Use the SQLite store
//! when requests must outlive the process.
//!
//! See [`MemoryStore`] for how it is laid out.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use atmo_core::{
    Applied, ApplyOutcome, Change, ClaimParams, Claimed, Cursor, ErrorCount, HistoryEntry, InsertOutcome,
    LatencySummary, MetricsParams, Promoted, QueryPage, Request, RequestError, RequestId, RequestQuery, RequestStatus,
    RetentionParams, Store, StoreError, StoreFuture, StoreMetrics, Timestamp, Transition, TransitionRejected,
    apply_claim, apply_transition,
};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use self::history::{CompactHistory, HistoryTables};

mod history;

/// Requests per slab chunk. A chunk of 1024 requests is a few hundred kilobytes: small enough
/// that a new store is cheap, large enough that the chunk list stays short.
const CHUNK: usize = 1024;

/// Stale queue entries tolerated before a compaction (beyond one per live entry), so that a
/// burst of cancellations of a task nobody claims does not grow its queue without bound.
const COMPACT_SLACK: usize = 1024;

/// A level's deque is shrunk when it empties with more capacity than this, so a burst does not
/// keep its memory forever.
const LEVEL_KEEP: usize = 4096;

/// Slots are `u32` to keep index entries small; four billion requests at once is beyond any
/// memory this store could have.
const MAX_SLOTS: usize = u32::MAX as usize;

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
/// Every state change goes through [`apply_transition`] or [`apply_claim`], as in every store.
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
    inner: Mutex<Inner>,
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

// ===== Inner state =====

struct Inner {
    slab: Slab,
    /// What the compact histories in the slab point into.
    history: HistoryTables,
    /// Histories compacted during the current `apply`, for it to drop outside the lock.
    spent_histories: Vec<Vec<HistoryEntry>>,
    /// Request id → slot.
    index: Index,
    /// Ready queues, one per task; `queue_of` maps a task id to its queue.
    queues: Vec<ReadyQueue>,
    queue_of: FxHashMap<Arc<str>, usize>,
    /// Entries in all ready queues, live and stale (a live one per pending request).
    ready_items: usize,
    scheduled: BinaryHeap<Reverse<ScheduledItem>>,
    /// Request id → lease (and slot), for assigned and processing requests. Running requests
    /// are few and their transitions the most frequent, so this small table also finds their
    /// slots without a probe of the (large, mostly cold) index.
    leases: FxHashMap<u128, Lease>,
    idempotency: Idempotency,
    /// Terminal requests, ordered by `completed_at`.
    finished: VecDeque<Finished>,
    /// Next queue sequence number: FIFO within a priority.
    seq: u64,
    counts: [u64; 8],
    /// Processing times of completed requests, in microseconds. `None` only if the histogram
    /// could not be created, which its constant parameters rule out.
    processing: Option<Histogram<u64>>,
    /// Error code → occurrences and the latest message.
    errors: FxHashMap<String, ErrorTally>,
}

/// A pending request in a ready queue.
struct ReadyItem {
    /// Queue order across the tasks of a claim (lower first within a priority).
    seq: u64,
    slot: u32,
    /// Tells a live entry from a stale one whose slot was reused.
    id: RequestId,
}

/// A scheduled request in the scheduled heap (a min-heap through `Reverse`).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct ScheduledItem {
    run_at: Timestamp,
    seq: u64,
    slot: u32,
    id: RequestId,
}

struct Lease {
    slot: u32,
    owner: Arc<str>,
    until: Timestamp,
}

struct Finished {
    at: Timestamp,
    slot: u32,
}

/// The parts of a deleted request that may be costly to free (its own JSON values and errors).
struct Remains {
    _parameters: Arc<serde_json::Value>,
    _result: Option<Arc<serde_json::Value>>,
    _metadata: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    _errors: Vec<RequestError>,
}

struct ErrorTally {
    count: u64,
    last_message: String,
}

/// When a scheduled request is due; one without `run_at` is due at once.
fn due_at(r: &Request) -> Timestamp {
    r.run_at.unwrap_or(Timestamp::EPOCH)
}

impl Inner {
    fn new() -> Self {
        Inner {
            slab: Slab::default(),
            history: HistoryTables::default(),
            spent_histories: Vec::new(),
            index: Index::default(),
            queues: Vec::new(),
            queue_of: FxHashMap::default(),
            ready_items: 0,
            scheduled: BinaryHeap::new(),
            leases: FxHashMap::default(),
            idempotency: Idempotency::default(),
            finished: VecDeque::new(),
            seq: 0,
            counts: [0; 8],
            processing: Histogram::new(3).ok(),
            errors: FxHashMap::default(),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn queue_index(&mut self, task: &Arc<str>) -> usize {
        if let Some(&q) = self.queue_of.get(&**task) {
            return q;
        }
        self.queues.push(ReadyQueue::default());
        let q = self.queues.len() - 1;
        self.queue_of.insert(task.clone(), q);
        q
    }

    fn push_ready(&mut self, queue: usize, priority: u8, slot: u32, id: RequestId) {
        let seq = self.next_seq();
        if let Some(rq) = self.queues.get_mut(queue) {
            rq.push(priority, ReadyItem { seq, slot, id });
            self.ready_items += 1;
        }
    }

    fn push_scheduled(&mut self, run_at: Timestamp, slot: u32, id: RequestId) {
        let seq = self.next_seq();
        self.scheduled.push(Reverse(ScheduledItem { run_at, seq, slot, id }));
    }

    fn push_finished(&mut self, at: Timestamp, slot: u32) {
        // Callers' clocks are nearly but not strictly monotonic; keeping the list sorted keeps
        // retention and the window exact. Out-of-order arrivals land near the back.
        if self.finished.back().is_none_or(|b| b.at <= at) {
            self.finished.push_back(Finished { at, slot });
        } else {
            let pos = self.finished.partition_point(|f| f.at <= at);
            self.finished.insert(pos, Finished { at, slot });
        }
    }

    fn record_error(&mut self, e: &RequestError) {
        // Look up by `&str` first: an existing code costs no allocation.
        if let Some(t) = self.errors.get_mut(e.code.as_str()) {
            t.count += 1;
            if t.last_message != e.message {
                t.last_message.clone_from(&e.message);
            }
        } else {
            self.errors.insert(e.code.clone(), ErrorTally { count: 1, last_message: e.message.clone() });
        }
    }

    // ===== insert =====

    // Inlined into `insert_many`, so that a request is not copied on its way into the slab.
    #[inline(always)]
    fn insert(&mut self, req: Request, last_queue: &mut Option<(Arc<str>, usize)>) -> InsertOutcome {
        let id = req.request_id;
        let key_hash = req.idempotency_key.as_deref().map(|k| self.idempotency.hash(k));
        if let (Some(key), Some(hash)) = (req.idempotency_key.as_deref(), key_hash)
            && let Some(existing) = self.idempotency.find(hash, key, &self.slab)
        {
            return InsertOutcome::Duplicate(existing);
        }
        let status = req.status;
        let priority = req.priority;
        let due = due_at(&req);
        let completed = req.completed_at.unwrap_or(req.updated_at);
        let queue = match last_queue {
            Some((task, q)) if Arc::ptr_eq(task, &req.task_id) => *q,
            _ if status == RequestStatus::Pending => {
                let q = self.queue_index(&req.task_id);
                *last_queue = Some((req.task_id.clone(), q));
                q
            }
            _ => usize::MAX,
        };
        // Re-inserting an id (a client retrying a batch that did reach the store) must not
        // create a second copy: it names the stored request, like an idempotency key.
        let slot = match self.index.by_fold.entry(fold(id)) {
            Entry::Vacant(v) => {
                let slot = self.slab.insert(req);
                v.insert(slot);
                slot
            }
            Entry::Occupied(o) => {
                if self.slab.get(*o.get()).is_some_and(|r| r.request_id == id)
                    || self.index.collisions.contains_key(&id.as_u128())
                {
                    return InsertOutcome::Duplicate(id);
                }
                let slot = self.slab.insert(req);
                self.index.collisions.insert(id.as_u128(), slot);
                slot
            }
        };
        if let Some(hash) = key_hash {
            // The key is read back from the stored request: it is copied only on a collision.
            let key = self.slab.get(slot).and_then(|r| r.idempotency_key.as_deref()).unwrap_or_default();
            self.idempotency.insert(hash, key, slot);
        }
        self.counts[status as usize] += 1;
        match status {
            RequestStatus::Pending => self.push_ready(queue, priority, slot, id),
            RequestStatus::Scheduled => self.push_scheduled(due, slot, id),
            // Requests are submitted pending or scheduled; a running one (an import) has no
            // live worker here, so it gets an expired lease and the rescuer returns it.
            RequestStatus::Assigned | RequestStatus::Processing => {
                self.leases.insert(id.as_u128(), Lease { slot, owner: Arc::from(""), until: Timestamp::EPOCH });
            }
            _ => {
                self.push_finished(completed, slot);
                if let Some((req, history)) = self.slab.get_mut(slot) {
                    self.history.compact(&std::mem::take(&mut req.history), history);
                }
            }
        }
        InsertOutcome::Inserted(id)
    }

    // ===== claim =====

    fn claim(&mut self, p: &ClaimParams) -> Vec<Claimed> {
        if p.limit == 0 {
            return Vec::new();
        }
        let mut queues: Vec<usize> = p.task_ids.iter().filter_map(|t| self.queue_of.get(&**t).copied()).collect();
        queues.sort_unstable();
        queues.dedup();
        let pending = usize::try_from(self.counts[RequestStatus::Pending as usize]).unwrap_or(usize::MAX);
        let mut out = Vec::with_capacity(p.limit.min(pending));
        while out.len() < p.limit {
            // The best live head among the bank's tasks: highest priority, then queue order.
            let mut best: Option<(u8, u64, usize)> = None;
            for &q in &queues {
                let Some(rq) = self.queues.get_mut(q) else { continue };
                let Some((prio, seq)) = rq.live_head(&self.slab, &mut self.ready_items) else { continue };
                if best.is_none_or(|(bp, bs, _)| prio > bp || (prio == bp && seq < bs)) {
                    best = Some((prio, seq, q));
                }
            }
            let Some((prio, _, q)) = best else { break };
            let Some(item) = self.queues.get_mut(q).and_then(|rq| rq.pop(prio)) else { break };
            self.ready_items -= 1;
            let Some(req) = self.slab.get_mut(item.slot).map(|(r, _)| r) else { continue };
            if apply_claim(req, &p.bank_id, p.now).is_err() {
                // Unreachable: the head was checked to be pending.
                continue;
            }
            out.push(Claimed::from(&*req));
            self.counts[RequestStatus::Pending as usize] -= 1;
            self.counts[RequestStatus::Assigned as usize] += 1;
            self.leases
                .insert(item.id.as_u128(), Lease { slot: item.slot, owner: p.owner.clone(), until: p.lease_until });
        }
        out
    }

    // ===== transitions =====

    /// The slot of `id`: a running request's from its lease, any other's from the index.
    fn slot_of(&self, id: RequestId) -> Option<u32> {
        match self.leases.get(&id.as_u128()) {
            Some(lease) if self.slab.get(lease.slot).is_some_and(|r| r.request_id == id) => Some(lease.slot),
            _ => self.index.get(id, &self.slab),
        }
    }

    fn apply_one(&mut self, t: &Transition) -> ApplyOutcome {
        let Some(slot) = self.slot_of(t.id()) else {
            return Err(TransitionRejected::NotFound);
        };
        let from = self.apply_at(slot, t)?;
        let r = self.slab.get(slot).ok_or(TransitionRejected::NotFound)?;
        Ok(Applied {
            id: r.request_id,
            from,
            to: r.status,
            attempt: r.attempts,
            task_id: r.task_id.clone(),
            bank_id: r.bank_id.clone(),
            worker_id: r.worker_id.clone(),
            started_at: r.started_at,
        })
    }

    /// Applies `t` to the request in `slot` and brings every index in line with its new status.
    fn apply_at(&mut self, slot: u32, t: &Transition) -> Result<RequestStatus, TransitionRejected> {
        let (req, history) = self.slab.get_mut(slot).ok_or(TransitionRejected::NotFound)?;
        let from = apply_transition(req, t)?;
        let to = req.status;
        if from == to {
            return Ok(from);
        }
        if to.is_terminal() {
            // Finished requests are most of what a store holds, for the whole retention window:
            // their history is kept compactly, and their errors without spare capacity (a
            // no-op when there is none).
            let entries = std::mem::take(&mut req.history);
            self.history.compact(&entries, history);
            self.spent_histories.push(entries);
            req.errors.shrink_to_fit();
        }
        let (id, priority, due) = (req.request_id, req.priority, due_at(req));
        let finished_at = req.completed_at.unwrap_or(t.at());
        let processing_us = match (req.started_at, req.completed_at) {
            (Some(s), Some(c)) if to == RequestStatus::Completed => Some(c.as_micros().saturating_sub(s.as_micros())),
            _ => None,
        };
        let task = (to == RequestStatus::Pending).then(|| req.task_id.clone());

        self.counts[from as usize] -= 1;
        self.counts[to as usize] += 1;
        if from.is_running() && !to.is_running() {
            self.leases.remove(&id.as_u128());
        }
        // Leaving pending or scheduled other than through a claim or promotion (a cancel, a
        // direct promote) leaves a stale queue entry behind; `maybe_compact` bounds those.
        match to {
            RequestStatus::Pending => {
                if let Some(task) = task {
                    let q = self.queue_index(&task);
                    self.push_ready(q, priority, slot, id);
                }
            }
            RequestStatus::Scheduled => self.push_scheduled(due, slot, id),
            s if s.is_terminal() => self.push_finished(finished_at, slot),
            _ => {}
        }
        if let Some(us) = processing_us
            && let Some(h) = &mut self.processing
        {
            let us = u64::try_from(us).unwrap_or(0);
            // `record` grows the auto-resizing histogram; `saturating_record` would clamp to its
            // current range instead. It fails only if the counts array cannot grow.
            if h.record(us).is_err() {
                h.saturating_record(us);
            }
        }
        if let Change::Fail { error } | Change::TimeOut { error } | Change::Retry { error, .. } = t.change() {
            self.record_error(error);
        }
        Ok(from)
    }

    fn rescue_slots(
        &mut self,
        slots: impl Iterator<Item = u32>,
        reason: &'static str,
        now: Timestamp,
    ) -> Vec<RequestId> {
        let mut out = Vec::new();
        for slot in slots {
            let Some(r) = self.slab.get(slot) else { continue };
            let id = r.request_id;
            let t = Transition::rescue(id, r.attempts, reason, now);
            if self.apply_at(slot, &t).is_ok() {
                out.push(id);
            } else {
                // A lease on a request that is not running would be rescued forever.
                self.leases.remove(&id.as_u128());
            }
        }
        out
    }

    /// Rebuilds the ready queues and the scheduled heap without their stale entries once those
    /// outnumber the live ones.
    fn maybe_compact(&mut self) {
        let pending = usize::try_from(self.counts[RequestStatus::Pending as usize]).unwrap_or(usize::MAX);
        if self.ready_items > pending.saturating_mul(2).saturating_add(COMPACT_SLACK) {
            let slab = &self.slab;
            self.ready_items = 0;
            for rq in &mut self.queues {
                self.ready_items += rq.retain(|i| slab.is_pending(i.slot, i.id));
            }
        }
        let scheduled = usize::try_from(self.counts[RequestStatus::Scheduled as usize]).unwrap_or(usize::MAX);
        if self.scheduled.len() > scheduled.saturating_mul(2).saturating_add(COMPACT_SLACK) {
            let slab = &self.slab;
            self.scheduled.retain(|Reverse(i)| slab.is_scheduled(i));
        }
    }

    /// Frees the history tables' unused values once they may be many (see [`history`]).
    fn maybe_sweep_history(&mut self) {
        if self.history.sweep_due(self.slab.slots()) {
            self.history.sweep(self.slab.histories());
        }
    }

    // ===== schedule =====

    fn promote_scheduled(&mut self, now: Timestamp, limit: usize) -> Vec<Promoted> {
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(Reverse(top)) = self.scheduled.peek() else { break };
            let live = self.slab.is_scheduled(top);
            if live && top.run_at > now {
                break;
            }
            let Some(Reverse(item)) = self.scheduled.pop() else { break };
            if !live {
                continue;
            }
            let Some(r) = self.slab.get(item.slot) else { continue };
            let attempt = r.attempts;
            let t = Transition::promote(item.id, attempt, now);
            if self.apply_at(item.slot, &t).is_ok() {
                out.push(Promoted { id: item.id, attempt });
            }
        }
        out
    }

    fn next_scheduled(&mut self) -> Option<Timestamp> {
        while let Some(Reverse(top)) = self.scheduled.peek() {
            if self.slab.is_scheduled(top) {
                return Some(top.run_at);
            }
            self.scheduled.pop();
        }
        None
    }

    // ===== query =====

    fn query(&self, q: &RequestQuery, cursor: Option<Cursor>) -> QueryPage {
        // The same page `RequestQuery::paginate` computes, over references: sorting and
        // cloning every matching request just to return one page would cost a copy of the
        // store per query. Only the page is sorted (after a selection) and cloned.
        let mut matching: Vec<(&Request, &CompactHistory)> = self.slab.iter().filter(|(r, _)| q.matches(r)).collect();
        let total = matching.len();
        let page = q.page_size();
        let cmp = |a: &(&Request, _), b: &(&Request, _)| q.compare(a.0, b.0);
        let (start, end) = match cursor {
            Some(c) => {
                matching.retain(|(r, _)| q.is_after(&c, r));
                let start = total - matching.len();
                let n = page.min(matching.len());
                smallest_sorted(&mut matching, n, cmp);
                (start, start + n)
            }
            None => {
                let start = q.pagination.offset.min(total);
                let end = start.saturating_add(page).min(total);
                smallest_sorted(&mut matching, end, cmp);
                matching.drain(..start);
                (start, end)
            }
        };
        let next_cursor = match matching.last() {
            Some((last, _)) if end < total && end > start => Some(q.cursor_after(last).encode()),
            _ => None,
        };
        QueryPage { requests: matching.into_iter().map(|(r, h)| self.to_request(r, h)).collect(), total, next_cursor }
    }

    /// The request as written: the stored one with its compacted history (if any) rebuilt.
    fn to_request(&self, r: &Request, history: &CompactHistory) -> Request {
        if history.is_empty() {
            return r.clone();
        }
        Request { history: self.history.expand(history, &r.history), ..r.clone() }
    }

    // ===== metrics =====

    fn metrics(&self, p: &MetricsParams) -> StoreMetrics {
        let processing = match &self.processing {
            Some(h) if !h.is_empty() => {
                let ms = |us: u64| us as f64 / 1000.0;
                LatencySummary {
                    count: h.len(),
                    mean_ms: h.mean() / 1000.0,
                    p50_ms: ms(h.value_at_quantile(0.50)),
                    p95_ms: ms(h.value_at_quantile(0.95)),
                    p99_ms: ms(h.value_at_quantile(0.99)),
                    max_ms: ms(h.max()),
                }
            }
            _ => LatencySummary::default(),
        };
        let before_window = self.finished.partition_point(|f| f.at < p.window_start);
        let mut top: Vec<(&String, &ErrorTally)> = self.errors.iter().collect();
        // Ties by code, so the order does not depend on hash-map iteration.
        top.sort_unstable_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        top.truncate(p.top_errors);
        StoreMetrics {
            by_status: self.counts,
            processing,
            finished_in_window: (self.finished.len() - before_window) as u64,
            top_errors: top
                .into_iter()
                .map(|(code, t)| ErrorCount {
                    code: code.clone(),
                    count: t.count,
                    last_message: t.last_message.clone(),
                })
                .collect(),
        }
    }

    // ===== retention =====

    /// Removes what retention allows and returns what is costly to free of the removed
    /// requests, for the caller to drop outside the lock.
    fn delete_finished(&mut self, p: &RetentionParams) -> Vec<Remains> {
        let mut removed = Vec::with_capacity(p.batch_limit.min(self.finished.len()));
        while removed.len() < p.batch_limit {
            let Some(front) = self.finished.front() else { break };
            let over_count = p.max_finished.is_some_and(|max| self.finished.len() > max);
            if !over_count && front.at >= p.finished_before {
                break;
            }
            let slot = front.slot;
            self.finished.pop_front();
            let Some(req) = self.slab.remove(slot, &mut self.history) else { continue };
            self.index.remove(req.request_id, slot);
            if let Some(key) = req.idempotency_key.as_deref() {
                self.idempotency.remove(key, slot);
            }
            self.counts[req.status as usize] -= 1;
            // The rest (shared ids, small boxes) is dropped here: moving whole requests out
            // would copy them twice.
            let Request { parameters, result, metadata, errors, .. } = req;
            removed.push(Remains { _parameters: parameters, _result: result, _metadata: metadata, _errors: errors });
        }
        self.maybe_sweep_history();
        // Collections never shrink by themselves; after a large sweep give the memory back.
        self.index.shrink();
        if self.finished.capacity() > self.finished.len().saturating_mul(4).saturating_add(4096) {
            self.finished.shrink_to(self.finished.len().saturating_mul(2));
        }
        removed
    }
}

/// Leaves the `n` smallest of `v` (by `cmp`) in `v`, sorted: a selection, then a sort of the
/// page only.
fn smallest_sorted<T>(v: &mut Vec<T>, n: usize, mut cmp: impl FnMut(&T, &T) -> std::cmp::Ordering) {
    if n == 0 {
        v.clear();
        return;
    }
    if n < v.len() {
        v.select_nth_unstable_by(n - 1, &mut cmp);
        v.truncate(n);
    }
    v.sort_unstable_by(cmp);
}

// ===== ReadyQueue =====

/// The pending requests of one task: a FIFO per priority and a bitmap of the non-empty ones.
#[derive(Default)]
struct ReadyQueue {
    /// Indexed by priority; grown to the highest priority seen.
    levels: Vec<VecDeque<ReadyItem>>,
    nonempty: [u64; 4],
}

impl ReadyQueue {
    fn push(&mut self, priority: u8, item: ReadyItem) {
        let p = usize::from(priority);
        if self.levels.len() <= p {
            self.levels.resize_with(p + 1, VecDeque::new);
        }
        if let Some(level) = self.levels.get_mut(p) {
            level.push_back(item);
            self.nonempty[p / 64] |= 1 << (p % 64);
        }
    }

    /// The highest non-empty priority.
    fn top(&self) -> Option<usize> {
        (0..4).rev().find_map(|w| {
            let bits = self.nonempty[w];
            (bits != 0).then(|| w * 64 + 63 - bits.leading_zeros() as usize)
        })
    }

    fn mark_empty(&mut self, p: usize) {
        self.nonempty[p / 64] &= !(1 << (p % 64));
        if let Some(level) = self.levels.get_mut(p)
            && level.capacity() > LEVEL_KEEP
        {
            level.shrink_to_fit();
        }
    }

    /// The priority and sequence number of the best live entry, dropping the stale entries in
    /// front of it (and counting them off `items`).
    fn live_head(&mut self, slab: &Slab, items: &mut usize) -> Option<(u8, u64)> {
        loop {
            let p = self.top()?;
            let level = self.levels.get_mut(p)?;
            while let Some(front) = level.front() {
                if slab.is_pending(front.slot, front.id) {
                    return Some((p as u8, front.seq));
                }
                level.pop_front();
                *items -= 1;
            }
            self.mark_empty(p);
        }
    }

    fn pop(&mut self, priority: u8) -> Option<ReadyItem> {
        let p = usize::from(priority);
        let level = self.levels.get_mut(p)?;
        let item = level.pop_front();
        if level.is_empty() {
            self.mark_empty(p);
        }
        item
    }

    /// Keeps the entries `keep` accepts; returns how many remain.
    fn retain(&mut self, mut keep: impl FnMut(&ReadyItem) -> bool) -> usize {
        let mut n = 0;
        for p in 0..self.levels.len() {
            let Some(level) = self.levels.get_mut(p) else { continue };
            level.retain(&mut keep);
            n += level.len();
            if level.is_empty() {
                self.mark_empty(p);
            }
        }
        n
    }
}

// ===== Slab =====

/// Requests in chunks of [`CHUNK`] that never move; free slots are reused.
///
/// A finished request's history is kept compactly (see [`history`]) at the same position of
/// its chunk's `histories`, and its own `history` is empty, without capacity. Apart from the
/// requests, so that claiming a backlog and scanning for a query stride over requests only.
#[derive(Default)]
struct Slab {
    chunks: Vec<Chunk>,
    free: Vec<u32>,
    len: usize,
}

struct Chunk {
    requests: Vec<Option<Request>>,
    /// As long as `requests`; empty at vacant positions.
    histories: Vec<CompactHistory>,
}

impl Slab {
    /// Stores `r`. The caller ensures fewer than [`MAX_SLOTS`] requests are held.
    #[inline(always)]
    fn insert(&mut self, r: Request) -> u32 {
        self.len += 1;
        if let Some(slot) = self.free.pop()
            && let Some(s) = self.slot_mut(slot)
        {
            // Only the request moves in: the vacant slot's history is already empty.
            *s = Some(r);
            return slot;
        }
        if self.chunks.last().is_none_or(|c| c.requests.len() == CHUNK) {
            // Exactly one chunk's capacity: pushes below never reallocate, so requests never move.
            self.chunks.push(Chunk { requests: Vec::with_capacity(CHUNK), histories: Vec::with_capacity(CHUNK) });
        }
        let chunk_index = self.chunks.len() - 1;
        let mut slot = 0;
        if let Some(chunk) = self.chunks.last_mut() {
            slot = (chunk_index * CHUNK + chunk.requests.len()) as u32;
            chunk.requests.push(Some(r));
            chunk.histories.push(CompactHistory::default());
        }
        slot
    }

    fn slot_mut(&mut self, slot: u32) -> Option<&mut Option<Request>> {
        let slot = slot as usize;
        self.chunks.get_mut(slot / CHUNK)?.requests.get_mut(slot % CHUNK)
    }

    /// The request in `slot`, without its compacted history.
    fn get(&self, slot: u32) -> Option<&Request> {
        let slot = slot as usize;
        self.chunks.get(slot / CHUNK)?.requests.get(slot % CHUNK)?.as_ref()
    }

    fn with_history(&self, slot: u32) -> Option<(&Request, &CompactHistory)> {
        let slot = slot as usize;
        let chunk = self.chunks.get(slot / CHUNK)?;
        Some((chunk.requests.get(slot % CHUNK)?.as_ref()?, chunk.histories.get(slot % CHUNK)?))
    }

    fn get_mut(&mut self, slot: u32) -> Option<(&mut Request, &mut CompactHistory)> {
        let slot = slot as usize;
        let chunk = self.chunks.get_mut(slot / CHUNK)?;
        Some((chunk.requests.get_mut(slot % CHUNK)?.as_mut()?, chunk.histories.get_mut(slot % CHUNK)?))
    }

    /// Takes the request out of `slot`; `tables` forget its compacted history.
    fn remove(&mut self, slot: u32, tables: &mut HistoryTables) -> Option<Request> {
        let i = slot as usize;
        let chunk = self.chunks.get_mut(i / CHUNK)?;
        let r = chunk.requests.get_mut(i % CHUNK)?.take()?;
        if let Some(h) = chunk.histories.get_mut(i % CHUNK) {
            tables.forget(h);
        }
        self.free.push(slot);
        self.len -= 1;
        Some(r)
    }

    fn iter(&self) -> impl Iterator<Item = (&Request, &CompactHistory)> {
        self.chunks.iter().flat_map(|c| c.requests.iter().zip(&c.histories)).filter_map(|(r, h)| Some((r.as_ref()?, h)))
    }

    /// Every compacted history (a vacant slot's is empty).
    fn histories(&self) -> impl Iterator<Item = &CompactHistory> {
        self.chunks.iter().flat_map(|c| &c.histories)
    }

    /// Slots allocated, vacant or not (every chunk but the last is full).
    fn slots(&self) -> usize {
        self.chunks.last().map_or(0, |c| (self.chunks.len() - 1) * CHUNK + c.requests.len())
    }

    /// Whether a ready-queue entry is live.
    fn is_pending(&self, slot: u32, id: RequestId) -> bool {
        self.get(slot).is_some_and(|r| r.request_id == id && r.status == RequestStatus::Pending)
    }

    /// Whether a scheduled-heap entry is live. `run_at` must match too: a request promoted
    /// directly and later retried has an old entry with an earlier time.
    fn is_scheduled(&self, i: &ScheduledItem) -> bool {
        self.get(i.slot)
            .is_some_and(|r| r.request_id == i.id && r.status == RequestStatus::Scheduled && due_at(r) == i.run_at)
    }
}

// ===== Index =====

/// Request id → slot, keyed by the id's two halves folded into 64 bits: entries of 16 bytes
/// instead of 32 (a map of a million requests is 35 MB instead of 70), hashed with one multiply
/// instead of two. A hit is confirmed against the slot's request. The rare id whose fold equals
/// that of another id held goes to `collisions`, keyed by the whole id.
///
/// The fold of a version 7 id mixes its timestamp and random bits, so ids of one millisecond do
/// not collide more than random ones.
#[derive(Default)]
struct Index {
    by_fold: FxHashMap<u64, u32>,
    collisions: FxHashMap<u128, u32>,
}

fn fold(id: RequestId) -> u64 {
    let v = id.as_u128();
    (v as u64) ^ ((v >> 64) as u64)
}

impl Index {
    fn get(&self, id: RequestId, slab: &Slab) -> Option<u32> {
        if let Some(&slot) = self.by_fold.get(&fold(id))
            && slab.get(slot).is_some_and(|r| r.request_id == id)
        {
            return Some(slot);
        }
        if self.collisions.is_empty() {
            return None;
        }
        self.collisions.get(&id.as_u128()).copied()
    }

    /// Unindexes `id`, held in `slot`.
    fn remove(&mut self, id: RequestId, slot: u32) {
        let key = fold(id);
        if self.by_fold.get(&key) == Some(&slot) {
            self.by_fold.remove(&key);
        } else {
            self.collisions.remove(&id.as_u128());
        }
    }

    /// Gives memory back after a large deletion (a rehash of the small index, not of the
    /// requests).
    fn shrink(&mut self) {
        let len = self.by_fold.len();
        if self.by_fold.capacity() > len.saturating_mul(4).saturating_add(4096) {
            self.by_fold.shrink_to(len.saturating_mul(2));
        }
        if self.collisions.is_empty() && self.collisions.capacity() > 0 {
            self.collisions = FxHashMap::default();
        }
    }
}

// ===== Idempotency =====

/// Idempotency key → slot, without copying keys: the map is keyed by the key's 64-bit hash and
/// a hit is confirmed against the stored request's key. The rare second key with the same hash
/// goes to `collisions`, which does hold a copy.
///
/// Keys come from clients, so the hash is seeded per store (SipHash): nobody can precompute
/// colliding keys to degrade it.
#[derive(Default)]
struct Idempotency {
    hasher: RandomState,
    by_hash: FxHashMap<u64, u32>,
    collisions: FxHashMap<Box<str>, u32>,
}

impl Idempotency {
    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, hash: u64, key: &str, slab: &Slab) -> Option<RequestId> {
        let slot_key = |slot: u32| slab.get(slot).filter(|r| r.idempotency_key.as_deref() == Some(key));
        if let Some(r) = self.by_hash.get(&hash).and_then(|&s| slot_key(s)) {
            return Some(r.request_id);
        }
        if self.collisions.is_empty() {
            return None;
        }
        self.collisions.get(key).and_then(|&s| slot_key(s)).map(|r| r.request_id)
    }

    fn insert(&mut self, hash: u64, key: &str, slot: u32) {
        match self.by_hash.entry(hash) {
            Entry::Vacant(v) => {
                v.insert(slot);
            }
            Entry::Occupied(_) => {
                self.collisions.insert(key.into(), slot);
            }
        }
    }

    fn remove(&mut self, key: &str, slot: u32) {
        self.remove_hashed(self.hash(key), key, slot);
    }

    fn remove_hashed(&mut self, hash: u64, key: &str, slot: u32) {
        if self.by_hash.get(&hash) == Some(&slot) {
            self.by_hash.remove(&hash);
        } else if self.collisions.get(key) == Some(&slot) {
            self.collisions.remove(key);
        }
    }
}

#[cfg(test)]
// Tests fail by panicking; the conformance suite (tests/conformance.rs) covers the `Store`
// contract, these cover what only this layout can get wrong.
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {

    use atmo_core::RetentionParams;
    use futures::executor::block_on;
    use serde_json::json;

    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + ms)
    }

    fn req(task: &str, priority: u8, n: u8) -> Request {
        let id = RequestId::from_parts(t(0), [0, 0, 0, 0, 0, 0, 0, 0, 0, n]);
        Request { priority, ..Request::new(id, task, json!({}), t(0), None) }
    }

    fn claim(store: &MemoryStore, task: &str, limit: usize) -> Vec<RequestId> {
        let p = ClaimParams {
            bank_id: Arc::from("b"),
            task_ids: vec![Arc::from(task)],
            limit,
            owner: Arc::from("o"),
            now: t(1),
            lease_until: t(100),
        };
        block_on(store.claim(p)).unwrap().into_iter().map(|r| r.request_id).collect()
    }

    /// A cancelled request's queue entry outlives the request; when its slot is reused by a new
    /// pending request, the old entry must not hand the new request out twice.
    #[test]
    fn reused_slot_does_not_revive_a_stale_entry() {
        let store = MemoryStore::new();
        let a = req("t", 5, 1);
        block_on(store.insert_many(vec![a.clone()])).unwrap();
        block_on(store.apply(vec![Transition::cancel(a.request_id, "x", t(1))])).unwrap();
        let p = RetentionParams { finished_before: Timestamp::MAX, max_finished: None, batch_limit: 10 };
        assert_eq!(block_on(store.delete_finished(p)).unwrap(), 1);
        let b = req("t", 5, 2);
        block_on(store.insert_many(vec![b.clone()])).unwrap();
        let inner = store.inner.lock();
        assert_eq!(inner.index.get(b.request_id, &inner.slab), Some(0), "slot 0 was reused");
        drop(inner);
        assert_eq!(claim(&store, "t", 10), vec![b.request_id]);
        assert!(claim(&store, "t", 10).is_empty());
    }

    /// Priorities outside 1–10 still order correctly in the bucket queue.
    #[test]
    fn every_u8_priority_orders() {
        let store = MemoryStore::new();
        let reqs: Vec<Request> =
            [0u8, 255, 10, 64, 63, 1, 128].iter().enumerate().map(|(i, &p)| req("t", p, i as u8)).collect();
        block_on(store.insert_many(reqs.clone())).unwrap();
        let order: Vec<u8> = claim(&store, "t", 100)
            .into_iter()
            .map(|id| reqs.iter().find(|r| r.request_id == id).unwrap().priority)
            .collect();
        assert_eq!(order, vec![255, 128, 64, 63, 10, 1, 0]);
    }

    /// Mass cancellation is compacted away instead of accumulating.
    #[test]
    fn stale_entries_are_compacted() {
        let store = MemoryStore::new();
        // Distinct ids (the helper takes a `u8`).
        let reqs: Vec<Request> = (0..3000)
            .map(|_| req("t", 5, 0))
            .enumerate()
            .map(|(i, mut r)| {
                r.request_id = RequestId::from_u128(1_000_000 + i as u128);
                r
            })
            .collect();
        block_on(store.insert_many(reqs.clone())).unwrap();
        let cancels = reqs.iter().skip(1).map(|r| Transition::cancel(r.request_id, "x", t(1))).collect();
        assert!(block_on(store.apply(cancels)).unwrap().iter().all(Result::is_ok));
        let inner = store.inner.lock();
        assert!(inner.ready_items <= 1 + COMPACT_SLACK, "{} entries left", inner.ready_items);
        drop(inner);
        assert_eq!(claim(&store, "t", 10), vec![reqs[0].request_id]);
    }

    fn apply1(store: &MemoryStore, t: Transition) {
        let out = block_on(store.apply(vec![t])).unwrap();
        assert!(out[0].is_ok(), "{out:?}");
    }

    /// A finished request's history, kept compactly, reads back exactly as the core writes it:
    /// owned and static reasons, several workers, more entries than fit inline. The stored
    /// request keeps no history of its own.
    #[test]
    fn finished_histories_read_back_exactly() {
        let store = MemoryStore::new();
        let mut expected = req("t", 5, 1);
        let id = expected.request_id;
        block_on(store.insert_many(vec![expected.clone()])).unwrap();
        let bank: Arc<str> = Arc::from("b");
        let (w1, w2): (Arc<str>, Arc<str>) = (Arc::from("w1"), Arc::from("w2"));
        let error = |attempt| {
            let e = atmo_core::TaskError::new("E_NET", "down");
            RequestError::from_task_error(e, attempt == 1, attempt, t(3))
        };
        let steps = [
            Transition::start(id, 1, w1.clone(), t(2)),
            Transition::retry(id, 1, error(1), t(5), t(3)),
            Transition::promote(id, 1, t(5)),
            Transition::start(id, 2, w2.clone(), t(7)),
            Transition::fail(id, 2, error(2), t(8)),
        ];
        assert_eq!(claim(&store, "t", 1), vec![id]);
        apply_claim(&mut expected, &bank, t(1)).unwrap();
        for (n, step) in steps.into_iter().enumerate() {
            if n == 3 {
                assert_eq!(claim(&store, "t", 1), vec![id]);
                apply_claim(&mut expected, &bank, t(1)).unwrap();
            }
            apply_transition(&mut expected, &step).unwrap();
            apply1(&store, step);
        }
        assert_eq!(expected.history.len(), 8);
        assert_eq!(block_on(store.get(id)).unwrap(), Some(expected.clone()));
        let page = block_on(store.query(RequestQuery::new())).unwrap();
        assert_eq!(page.requests, vec![expected]);

        let inner = store.inner.lock();
        let slot = inner.index.get(id, &inner.slab).unwrap();
        let (stored, history) = inner.slab.with_history(slot).unwrap();
        assert_eq!(stored.history.capacity(), 0);
        assert_eq!(history.as_slice().len(), 8);
    }

    /// Two ids whose folds are equal are told apart, found, re-inserted as duplicates and
    /// removed independently.
    #[test]
    fn ids_with_one_fold_are_exact() {
        let store = MemoryStore::new();
        let mut a = req("t", 5, 1);
        a.request_id = RequestId::from_u128((1 << 64) | 2);
        let mut b = req("t", 5, 2);
        b.request_id = RequestId::from_u128(3 << 64);
        assert_eq!(fold(a.request_id), fold(b.request_id));
        let out = block_on(store.insert_many(vec![a.clone(), b.clone(), b.clone(), a.clone()])).unwrap();
        let expected = [
            InsertOutcome::Inserted(a.request_id),
            InsertOutcome::Inserted(b.request_id),
            InsertOutcome::Duplicate(b.request_id),
            InsertOutcome::Duplicate(a.request_id),
        ];
        assert_eq!(out, expected);
        assert_eq!(block_on(store.get(a.request_id)).unwrap(), Some(a.clone()));
        assert_eq!(block_on(store.get(b.request_id)).unwrap(), Some(b.clone()));
        apply1(&store, Transition::cancel(a.request_id, "x", t(1)));
        let p = RetentionParams { finished_before: Timestamp::MAX, max_finished: None, batch_limit: 10 };
        assert_eq!(block_on(store.delete_finished(p)).unwrap(), 1);
        assert_eq!(block_on(store.get(a.request_id)).unwrap(), None);
        assert_eq!(block_on(store.get(b.request_id)).unwrap(), Some(b.clone()), "the colliding id survives");
        apply1(&store, Transition::cancel(b.request_id, "x", t(1)));
        assert_eq!(block_on(store.delete_finished(p)).unwrap(), 1);
        let inner = store.inner.lock();
        assert!(inner.index.by_fold.is_empty() && inner.index.collisions.is_empty());
    }

    /// Reasons nobody repeats (cancellations with a request's own words) do not accumulate:
    /// deleting their requests lets a sweep free them.
    #[test]
    fn unused_history_values_are_swept() {
        let store = MemoryStore::new();
        let reqs: Vec<Request> = (0..3000u128)
            .map(|i| {
                let mut r = req("t", 5, 0);
                r.request_id = RequestId::from_u128(1_000_000 + i);
                r
            })
            .collect();
        block_on(store.insert_many(reqs.clone())).unwrap();
        let cancels = reqs.iter().map(|r| Transition::cancel(r.request_id, format!("{}", r.request_id), t(1)));
        assert!(block_on(store.apply(cancels.collect())).unwrap().iter().all(Result::is_ok));
        let (reasons, _) = store.inner.lock().history.table_sizes();
        assert!(reasons > 2000, "every cancellation's reason is held: {reasons}");
        let p = RetentionParams { finished_before: Timestamp::MAX, max_finished: None, batch_limit: 10_000 };
        assert_eq!(block_on(store.delete_finished(p)).unwrap(), 3000);
        assert_eq!(store.inner.lock().history.table_sizes(), (0, 0));
    }

    /// Two keys with one hash are told apart, found, and removed independently.
    #[test]
    fn idempotency_hash_collisions_are_exact() {
        let mut slab = Slab::default();
        let mut a = req("t", 5, 1);
        a.idempotency_key = Some("alpha".into());
        let mut b = req("t", 5, 2);
        b.idempotency_key = Some("beta".into());
        let (ia, ib) = (a.request_id, b.request_id);
        let (sa, sb) = (slab.insert(a), slab.insert(b));
        let mut idem = Idempotency::default();
        // Force the collision: both keys under hash 7.
        idem.insert(7, "alpha", sa);
        idem.insert(7, "beta", sb);
        assert_eq!(idem.find(7, "alpha", &slab), Some(ia));
        assert_eq!(idem.find(7, "beta", &slab), Some(ib));
        assert_eq!(idem.find(7, "gamma", &slab), None);
        idem.remove_hashed(7, "alpha", sa);
        assert_eq!(idem.find(7, "alpha", &slab), None);
        assert_eq!(idem.find(7, "beta", &slab), Some(ib), "the colliding key survives its partner");
        idem.remove_hashed(7, "beta", sb);
        assert!(idem.by_hash.is_empty() && idem.collisions.is_empty());
    }
}
