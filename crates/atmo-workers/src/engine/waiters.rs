//! Futures waiting for requests to finish.

use std::collections::hash_map::Entry as MapEntry;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use atmo_core::{RequestId, RequestResult};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tokio::sync::{Notify, oneshot};

#[derive(Debug)]
enum Slot {
    One(oneshot::Sender<RequestResult>),
    Batch(Arc<BatchWait>, usize),
}

#[derive(Debug)]
enum Entry {
    Single(Slot),
    Many(Vec<Slot>),
}

/// One wait for many requests: one allocation per batch, not per request.
#[derive(Debug)]
pub(crate) struct BatchWait {
    ids: Vec<RequestId>,
    remaining: AtomicUsize,
    results: Mutex<Vec<Option<RequestResult>>>,
    notify: Notify,
}

impl BatchWait {
    pub(crate) async fn wait(&self) -> Vec<Option<RequestResult>> {
        loop {
            let notified = self.notify.notified();
            if self.remaining.load(Ordering::Acquire) == 0 {
                return std::mem::take(&mut *self.results.lock());
            }
            notified.await;
        }
    }

    /// Whether slot `index` waits for `id` (not so for an idempotent duplicate, whose id is
    /// the original's).
    pub(crate) fn covers(&self, index: usize, id: RequestId) -> bool {
        self.ids.get(index) == Some(&id)
    }

    /// The id slot `index` was registered under.
    pub(crate) fn registered_id(&self, index: usize) -> Option<RequestId> {
        self.ids.get(index).copied()
    }

    pub(crate) fn fill_index(&self, index: usize, result: RequestResult) {
        self.fill(index, result);
    }

    /// Counts `filled` slots as done (filled under one lock of the results).
    fn filled(&self, filled: usize) {
        if filled > 0 && self.remaining.fetch_sub(filled, Ordering::AcqRel) == filled {
            self.notify.notify_waiters();
        }
    }

    fn fill(&self, index: usize, result: RequestResult) {
        let mut results = self.results.lock();
        if let Some(slot) = results.get_mut(index)
            && slot.is_none()
        {
            *slot = Some(result);
            drop(results);
            if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.notify.notify_waiters();
            }
        }
    }
}

/// What [`Waiters::complete_many`] reuses from one call to the next.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    entries: Vec<Option<Entry>>,
}

impl Scratch {
    pub(crate) fn trim(&mut self) {
        super::trim_scratch(&mut self.entries);
    }
}

#[derive(Debug, Default)]
pub(crate) struct Waiters {
    map: Mutex<FxHashMap<u128, Entry>>,
    count: AtomicUsize,
}

impl Waiters {
    fn add(map: &mut FxHashMap<u128, Entry>, id: RequestId, slot: Slot) {
        match map.entry(id.as_u128()) {
            MapEntry::Vacant(v) => {
                v.insert(Entry::Single(slot));
            }
            MapEntry::Occupied(mut o) => {
                let entry = o.get_mut();
                match std::mem::replace(entry, Entry::Many(Vec::new())) {
                    Entry::Single(first) => *entry = Entry::Many(vec![first, slot]),
                    Entry::Many(mut v) => {
                        v.push(slot);
                        *entry = Entry::Many(v);
                    }
                }
            }
        }
    }

    pub(crate) fn register(&self, id: RequestId) -> oneshot::Receiver<RequestResult> {
        let (tx, rx) = oneshot::channel();
        let mut map = self.map.lock();
        Self::add(&mut map, id, Slot::One(tx));
        self.count.store(map.len(), Ordering::Release);
        rx
    }

    pub(crate) fn register_batch(&self, ids: &[RequestId]) -> Arc<BatchWait> {
        let batch = Arc::new(BatchWait {
            ids: ids.to_vec(),
            remaining: AtomicUsize::new(ids.len()),
            results: Mutex::new(vec![None; ids.len()]),
            notify: Notify::new(),
        });
        let mut map = self.map.lock();
        map.reserve(ids.len());
        for (i, id) in ids.iter().enumerate() {
            Self::add(&mut map, *id, Slot::Batch(batch.clone(), i));
        }
        self.count.store(map.len(), Ordering::Release);
        batch
    }

    /// Whether anyone waits at all: lets the applier skip the lock.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Resolves every waiter of each finished request, draining `finished`.
    pub(crate) fn complete_many(&self, finished: &mut Vec<(RequestId, RequestResult)>, scratch: &mut Scratch) {
        if finished.is_empty() || !self.any() {
            finished.clear();
            return;
        }
        let entries = &mut scratch.entries;
        entries.clear();
        {
            let mut map = self.map.lock();
            entries.extend(finished.iter().map(|(id, _)| map.remove(&id.as_u128())));
            self.count.store(map.len(), Ordering::Release);
        }
        // Results move straight from `finished` into their slots. Those of one batch wait
        // usually arrive together: a run of them is filled under one lock.
        let mut items = finished.drain(..).zip(entries.drain(..)).peekable();
        while let Some(((_, result), entry)) = items.next() {
            match entry {
                None => {}
                Some(Entry::Single(Slot::Batch(batch, index))) => {
                    let mut filled = 0;
                    {
                        let mut results = batch.results.lock();
                        filled += usize::from(put(&mut results, index, result));
                        while let Some((_, Some(Entry::Single(Slot::Batch(next, _))))) = items.peek()
                            && Arc::ptr_eq(next, &batch)
                        {
                            let Some(((_, result), Some(Entry::Single(Slot::Batch(_, index))))) = items.next() else {
                                break;
                            };
                            filled += usize::from(put(&mut results, index, result));
                        }
                    }
                    batch.filled(filled);
                }
                Some(Entry::Single(slot)) => deliver(slot, result),
                Some(Entry::Many(slots)) => {
                    for slot in slots {
                        deliver(slot, result.clone());
                    }
                }
            }
        }
    }

    /// Drops the single waiters of `id` whose future is gone (their receiver was dropped),
    /// keeping every other waiter of the same request.
    pub(crate) fn prune(&self, id: RequestId) {
        let mut map = self.map.lock();
        let Some(entry) = map.remove(&id.as_u128()) else { return };
        let alive = |slot: &Slot| match slot {
            Slot::One(tx) => !tx.is_closed(),
            Slot::Batch(..) => true,
        };
        let kept: Vec<Slot> = match entry {
            Entry::Single(slot) => vec![slot],
            Entry::Many(v) => v,
        }
        .into_iter()
        .filter(alive)
        .collect();
        match kept.len() {
            0 => {}
            1 => {
                if let Some(slot) = kept.into_iter().next() {
                    map.insert(id.as_u128(), Entry::Single(slot));
                }
            }
            _ => {
                map.insert(id.as_u128(), Entry::Many(kept));
            }
        }
        self.count.store(map.len(), Ordering::Release);
    }

    /// Removes a batch's slot registered under `id` (an idempotent duplicate that was never
    /// stored under that id).
    pub(crate) fn drop_batch_slot(&self, id: RequestId) {
        let mut map = self.map.lock();
        map.remove(&id.as_u128());
        self.count.store(map.len(), Ordering::Release);
    }
}

/// Fills an empty slot; returns whether it did.
fn put(results: &mut [Option<RequestResult>], index: usize, result: RequestResult) -> bool {
    match results.get_mut(index) {
        Some(slot @ None) => {
            *slot = Some(result);
            true
        }
        _ => false,
    }
}

fn deliver(slot: Slot, result: RequestResult) {
    match slot {
        Slot::One(tx) => {
            let _ = tx.send(result);
        }
        Slot::Batch(batch, i) => batch.fill(i, result),
    }
}
