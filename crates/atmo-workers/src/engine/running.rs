//! Requests held by workers of this engine, by id: what the applier, the timeout timer and
//! cancel need to reach a running attempt.

use std::sync::Arc;
use std::time::Duration;

use atmo_core::{CancellationToken, RequestId, RetryPolicy, Timestamp};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

const SHARDS: usize = 16;

#[derive(Debug)]
pub(crate) struct RunningEntry {
    pub(crate) attempt: u32,
    pub(crate) token: CancellationToken,
    pub(crate) bank: u32,
    pub(crate) timeout: Duration,
    pub(crate) policy: Arc<RetryPolicy>,
    pub(crate) action_retryable: bool,
    pub(crate) deadline: Option<Timestamp>,
}

/// Sharded so the dispatcher, the applier and cancel rarely meet on one lock.
#[derive(Debug)]
pub(crate) struct RunningTable {
    shards: [Mutex<FxHashMap<u128, RunningEntry>>; SHARDS],
}

impl Default for RunningTable {
    fn default() -> Self {
        RunningTable { shards: std::array::from_fn(|_| Mutex::new(FxHashMap::default())) }
    }
}

impl RunningTable {
    fn shard_index(id: RequestId) -> usize {
        // The low bits of a v7 id are random.
        (id.as_u128() as usize) % SHARDS
    }

    fn shard(&self, id: RequestId) -> &Mutex<FxHashMap<u128, RunningEntry>> {
        &self.shards[Self::shard_index(id)]
    }

    pub(crate) fn insert(&self, id: RequestId, entry: RunningEntry) {
        self.shard(id).lock().insert(id.as_u128(), entry);
    }

    /// Inserts many entries (drained from `entries`), taking each shard's lock once.
    pub(crate) fn insert_many(&self, entries: &mut Vec<(RequestId, RunningEntry)>) {
        if entries.len() < SHARDS {
            for (id, entry) in entries.drain(..) {
                self.insert(id, entry);
            }
            return;
        }
        // Every other user takes one shard at a time, so holding all of them cannot deadlock.
        let mut shards = self.shards.each_ref().map(|s| s.lock());
        for (id, entry) in entries.drain(..) {
            if let Some(shard) = shards.get_mut(Self::shard_index(id)) {
                shard.insert(id.as_u128(), entry);
            }
        }
    }

    /// Removes the entry if it belongs to `attempt`.
    pub(crate) fn remove_attempt(&self, id: RequestId, attempt: u32) -> Option<RunningEntry> {
        let mut shard = self.shard(id).lock();
        match shard.get(&id.as_u128()) {
            Some(e) if e.attempt == attempt => shard.remove(&id.as_u128()),
            _ => None,
        }
    }

    pub(crate) fn remove(&self, id: RequestId) -> Option<RunningEntry> {
        self.shard(id).lock().remove(&id.as_u128())
    }

    pub(crate) fn with<R>(&self, id: RequestId, f: impl FnOnce(Option<&mut RunningEntry>) -> R) -> R {
        f(self.shard(id).lock().get_mut(&id.as_u128()))
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Every entry's id and attempt (shutdown).
    pub(crate) fn ids(&self) -> Vec<(RequestId, u32)> {
        self.shards
            .iter()
            .flat_map(|s| s.lock().iter().map(|(k, e)| (RequestId::from_u128(*k), e.attempt)).collect::<Vec<_>>())
            .collect()
    }
}
