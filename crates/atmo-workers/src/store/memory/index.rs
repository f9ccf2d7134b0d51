//! The index from request id to slot.

use atmo_core::RequestId;
use rustc_hash::FxHashMap;

use super::slab::Slab;

/// Request id → slot, keyed by the id's two halves folded into 64 bits: entries of 16 bytes
/// instead of 32 (a map of a million requests is 35 MB instead of 70), hashed with one multiply
/// instead of two. A hit is confirmed against the slot's request. The rare id whose fold equals
/// that of another id held goes to `collisions`, keyed by the whole id.
///
/// The fold of a version 7 id mixes its timestamp and random bits, so ids of one millisecond do
/// not collide more than random ones.
#[derive(Default)]
pub(super) struct Index {
    pub(super) by_fold: FxHashMap<u64, u32>,
    pub(super) collisions: FxHashMap<u128, u32>,
}

pub(super) fn fold(id: RequestId) -> u64 {
    let v = id.as_u128();
    (v as u64) ^ ((v >> 64) as u64)
}

impl Index {
    pub(super) fn get(&self, id: RequestId, slab: &Slab) -> Option<u32> {
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
    pub(super) fn remove(&mut self, id: RequestId, slot: u32) {
        let key = fold(id);
        if self.by_fold.get(&key) == Some(&slot) {
            self.by_fold.remove(&key);
        } else {
            self.collisions.remove(&id.as_u128());
        }
    }

    /// Gives memory back after a large deletion (a rehash of the small index, not of the
    /// requests).
    pub(super) fn shrink(&mut self) {
        let len = self.by_fold.len();
        if self.by_fold.capacity() > len.saturating_mul(4).saturating_add(4096) {
            self.by_fold.shrink_to(len.saturating_mul(2));
        }
        if self.collisions.is_empty() && self.collisions.capacity() > 0 {
            self.collisions = FxHashMap::default();
        }
    }
}
