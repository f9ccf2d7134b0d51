//! The idempotency index: key to slot, without copies of the keys.

use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, RandomState};

use atmo_core::RequestId;
use rustc_hash::FxHashMap;

use super::slab::Slab;

/// Idempotency key → slot, without copying keys: the map is keyed by the key's 64-bit hash and
/// a hit is confirmed against the stored request's key. The rare second key with the same hash
/// goes to `collisions`, which does hold a copy.
///
/// Keys come from clients, so the hash is seeded per store (SipHash): nobody can precompute
/// colliding keys to degrade it.
#[derive(Default)]
pub(super) struct Idempotency {
    hasher: RandomState,
    by_hash: FxHashMap<u64, u32>,
    collisions: FxHashMap<Box<str>, u32>,
}

impl Idempotency {
    pub(super) fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(super) fn find(&self, hash: u64, key: &str, slab: &Slab) -> Option<RequestId> {
        let slot_key = |slot: u32| slab.get(slot).filter(|r| r.idempotency_key.as_deref() == Some(key));
        if let Some(r) = self.by_hash.get(&hash).and_then(|&s| slot_key(s)) {
            return Some(r.request_id);
        }
        if self.collisions.is_empty() {
            return None;
        }
        self.collisions.get(key).and_then(|&s| slot_key(s)).map(|r| r.request_id)
    }

    pub(super) fn insert(&mut self, hash: u64, key: &str, slot: u32) {
        match self.by_hash.entry(hash) {
            Entry::Vacant(v) => {
                v.insert(slot);
            }
            Entry::Occupied(_) => {
                self.collisions.insert(key.into(), slot);
            }
        }
    }

    pub(super) fn remove(&mut self, key: &str, slot: u32) {
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use atmo_core::{Request, Timestamp};
    use serde_json::json;

    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + ms)
    }

    fn req(task: &str, priority: u8, n: u8) -> Request {
        let id = RequestId::from_parts(t(0), [0, 0, 0, 0, 0, 0, 0, 0, 0, n]);
        Request { priority, ..Request::new(id, task, json!({}), t(0), None) }
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
