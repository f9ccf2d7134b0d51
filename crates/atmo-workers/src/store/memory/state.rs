//! The state under the store's lock ([`Inner`]) and every operation on it.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use atmo_core::{
    Applied, ApplyOutcome, Change, ClaimParams, Claimed, Cursor, ErrorCount, HistoryEntry, InsertOutcome,
    LatencySummary, MetricsParams, Promoted, QueryPage, Request, RequestError, RequestId, RequestQuery, RequestStatus,
    RetentionParams, StoreMetrics, Timestamp, Transition, TransitionRejected, apply_claim, apply_transition,
};
use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;

use super::history::{CompactHistory, HistoryTables};
use super::idempotency::Idempotency;
use super::index::{Index, fold};
use super::ready::{ReadyItem, ReadyQueue};
use super::scheduled::{ScheduledItem, due_at};
use super::slab::Slab;

/// Stale queue entries tolerated before a compaction (beyond one per live entry), so that a
/// burst of cancellations of a task nobody claims does not grow its queue without bound.
pub(super) const COMPACT_SLACK: usize = 1024;

// ===== Inner state =====

pub(super) struct Inner {
    pub(super) slab: Slab,
    /// What the compact histories in the slab point into.
    pub(super) history: HistoryTables,
    /// Histories compacted during the current `apply`, for it to drop outside the lock.
    pub(super) spent_histories: Vec<Vec<HistoryEntry>>,
    /// Request id → slot.
    pub(super) index: Index,
    /// Ready queues, one per task; `queue_of` maps a task id to its queue.
    pub(super) queues: Vec<ReadyQueue>,
    pub(super) queue_of: FxHashMap<Arc<str>, usize>,
    /// Entries in all ready queues, live and stale (a live one per pending request).
    pub(super) ready_items: usize,
    pub(super) scheduled: BinaryHeap<Reverse<ScheduledItem>>,
    /// Request id → lease (and slot), for assigned and processing requests. Running requests
    /// are few and their transitions the most frequent, so this small table also finds their
    /// slots without a probe of the (large, mostly cold) index.
    pub(super) leases: FxHashMap<u128, Lease>,
    pub(super) idempotency: Idempotency,
    /// Terminal requests, ordered by `completed_at`.
    pub(super) finished: VecDeque<Finished>,
    /// Next queue sequence number: FIFO within a priority.
    pub(super) seq: u64,
    pub(super) counts: [u64; 8],
    /// Processing times of completed requests, in microseconds. `None` only if the histogram
    /// could not be created, which its constant parameters rule out.
    pub(super) processing: Option<Histogram<u64>>,
    /// Error code → occurrences and the latest message.
    pub(super) errors: FxHashMap<String, ErrorTally>,
}

pub(super) struct Lease {
    pub(super) slot: u32,
    pub(super) owner: Arc<str>,
    pub(super) until: Timestamp,
}

pub(super) struct Finished {
    at: Timestamp,
    slot: u32,
}

/// The parts of a deleted request that may be costly to free (its own JSON values and errors).
pub(super) struct Remains {
    _parameters: Arc<serde_json::Value>,
    _result: Option<Arc<serde_json::Value>>,
    _metadata: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    _errors: Vec<RequestError>,
}

pub(super) struct ErrorTally {
    count: u64,
    last_message: String,
}

impl Inner {
    pub(super) fn new() -> Self {
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
    pub(super) fn insert(&mut self, req: Request, last_queue: &mut Option<(Arc<str>, usize)>) -> InsertOutcome {
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

    pub(super) fn claim(&mut self, p: &ClaimParams) -> Vec<Claimed> {
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

    pub(super) fn apply_one(&mut self, t: &Transition) -> ApplyOutcome {
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

    pub(super) fn rescue_slots(
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
    pub(super) fn maybe_compact(&mut self) {
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

    /// Frees the history tables' unused values once they may be many (see [`super::history`]).
    pub(super) fn maybe_sweep_history(&mut self) {
        if self.history.sweep_due(self.slab.slots()) {
            self.history.sweep(self.slab.histories());
        }
    }

    // ===== schedule =====

    pub(super) fn promote_scheduled(&mut self, now: Timestamp, limit: usize) -> Vec<Promoted> {
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

    pub(super) fn next_scheduled(&mut self) -> Option<Timestamp> {
        while let Some(Reverse(top)) = self.scheduled.peek() {
            if self.slab.is_scheduled(top) {
                return Some(top.run_at);
            }
            self.scheduled.pop();
        }
        None
    }

    // ===== query =====

    pub(super) fn query(&self, q: &RequestQuery, cursor: Option<Cursor>) -> QueryPage {
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
    pub(super) fn to_request(&self, r: &Request, history: &CompactHistory) -> Request {
        if history.is_empty() {
            return r.clone();
        }
        Request { history: self.history.expand(history, &r.history), ..r.clone() }
    }

    // ===== metrics =====

    pub(super) fn metrics(&self, p: &MetricsParams) -> StoreMetrics {
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
    pub(super) fn delete_finished(&mut self, p: &RetentionParams) -> Vec<Remains> {
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
