//! The slab: requests in chunks that never move.

use atmo_core::{Request, RequestId, RequestStatus};

use super::history::{CompactHistory, HistoryTables};
use super::scheduled::{ScheduledItem, due_at};

/// Requests per slab chunk. A chunk of 1024 requests is a few hundred kilobytes: small enough
/// that a new store is cheap, large enough that the chunk list stays short.
const CHUNK: usize = 1024;

/// Slots are `u32` to keep index entries small; four billion requests at once is beyond any
/// memory this store could have.
pub(super) const MAX_SLOTS: usize = u32::MAX as usize;

/// Requests in chunks of [`CHUNK`] that never move; free slots are reused.
///
/// A finished request's history is kept compactly (see [`super::history`]) at the same position of
/// its chunk's `histories`, and its own `history` is empty, without capacity. Apart from the
/// requests, so that claiming a backlog and scanning for a query stride over requests only.
#[derive(Default)]
pub(super) struct Slab {
    chunks: Vec<Chunk>,
    free: Vec<u32>,
    pub(super) len: usize,
}

struct Chunk {
    requests: Vec<Option<Request>>,
    /// As long as `requests`; empty at vacant positions.
    histories: Vec<CompactHistory>,
}

impl Slab {
    /// Stores `r`. The caller ensures fewer than [`MAX_SLOTS`] requests are held.
    #[inline(always)]
    pub(super) fn insert(&mut self, r: Request) -> u32 {
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
    pub(super) fn get(&self, slot: u32) -> Option<&Request> {
        let slot = slot as usize;
        self.chunks.get(slot / CHUNK)?.requests.get(slot % CHUNK)?.as_ref()
    }

    pub(super) fn with_history(&self, slot: u32) -> Option<(&Request, &CompactHistory)> {
        let slot = slot as usize;
        let chunk = self.chunks.get(slot / CHUNK)?;
        Some((chunk.requests.get(slot % CHUNK)?.as_ref()?, chunk.histories.get(slot % CHUNK)?))
    }

    pub(super) fn get_mut(&mut self, slot: u32) -> Option<(&mut Request, &mut CompactHistory)> {
        let slot = slot as usize;
        let chunk = self.chunks.get_mut(slot / CHUNK)?;
        Some((chunk.requests.get_mut(slot % CHUNK)?.as_mut()?, chunk.histories.get_mut(slot % CHUNK)?))
    }

    /// Takes the request out of `slot`; `tables` forget its compacted history.
    pub(super) fn remove(&mut self, slot: u32, tables: &mut HistoryTables) -> Option<Request> {
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

    pub(super) fn iter(&self) -> impl Iterator<Item = (&Request, &CompactHistory)> {
        self.chunks.iter().flat_map(|c| c.requests.iter().zip(&c.histories)).filter_map(|(r, h)| Some((r.as_ref()?, h)))
    }

    /// Every compacted history (a vacant slot's is empty).
    pub(super) fn histories(&self) -> impl Iterator<Item = &CompactHistory> {
        self.chunks.iter().flat_map(|c| &c.histories)
    }

    /// Slots allocated, vacant or not (every chunk but the last is full).
    pub(super) fn slots(&self) -> usize {
        self.chunks.last().map_or(0, |c| (self.chunks.len() - 1) * CHUNK + c.requests.len())
    }

    /// Whether a ready-queue entry is live.
    pub(super) fn is_pending(&self, slot: u32, id: RequestId) -> bool {
        self.get(slot).is_some_and(|r| r.request_id == id && r.status == RequestStatus::Pending)
    }

    /// Whether a scheduled-heap entry is live. `run_at` must match too: a request promoted
    /// directly and later retried has an old entry with an earlier time.
    pub(super) fn is_scheduled(&self, i: &ScheduledItem) -> bool {
        self.get(i.slot)
            .is_some_and(|r| r.request_id == i.id && r.status == RequestStatus::Scheduled && due_at(r) == i.run_at)
    }
}
