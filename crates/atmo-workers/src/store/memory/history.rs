//! Compact histories of finished requests.
//!
//! A [`HistoryEntry`] takes 72 bytes, most of them a reason (`Cow<str>`) and a bank and worker
//! (`Option<Arc<str>>`) that every request of a store repeats: a store holds millions of entries
//! but a few dozen distinct reasons and (bank, worker) pairs. When a request finishes, the memory
//! store moves its history into 24-byte [`CompactEntry`]s whose reason and (bank, worker) pair are
//! indices into store-wide tables ([`HistoryTables`]), up to four of them inline in the request's
//! slot (a request that succeeds at once has exactly four: submitted, claimed, started,
//! finished). It rebuilds `HistoryEntry`s only for the requests it returns.
//!
//! Only finished requests are compacted: they are the bulk of a store (every finished request
//! stays for the retention window) and never change again, whereas a running request gains an
//! entry at every step, which its own vector takes at no cost beyond the push.
//!
//! # Bounds
//!
//! Values are not counted per use, which would cost two writes per entry on the hot path; the
//! tables are swept instead (a pass over every slot's compacted history, freeing what none
//! uses) once the values they hold exceed twice the lesser of the values in use at the previous
//! sweep and the compacted entries held, plus 1024 or one per 16 slots, whichever is more. So
//! they hold the distinct reasons and (bank, worker) pairs of the histories held, plus unused
//! ones within that bound, and the cost of a sweep is paid for by that many new values or
//! deleted entries. In practice the tables hold a few dozen values and never sweep: the reasons
//! are the lifecycle's static words plus one `failed: {code}` and one
//! `retry scheduled after {code}` per error code, and the pairs one per worker.

use std::borrow::Cow;
use std::hash::Hash;
use std::sync::Arc;

use atmo_core::{HistoryEntry, RequestStatus, Timestamp};
use rustc_hash::FxHashMap;

/// Entries kept inline in a request's slot before its history moves to the heap.
const INLINE: usize = 4;

/// The index that names no table entry. Only a table holding `u32::MAX` distinct values at once
/// would hand it out, which would take hundreds of gigabytes; its entries read back with an
/// empty reason and no bank or worker.
const NONE: u32 = u32::MAX;

/// Unused values tolerated beyond twice the used ones before a sweep (at least).
const SWEEP_SLACK: usize = 1024;

/// A [`HistoryEntry`] in 24 bytes: the reason and the (bank, worker) pair are table indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CompactEntry {
    /// `HistoryEntry::at`, in microseconds.
    at: i64,
    attempt: u32,
    /// Index into [`HistoryTables::reasons`].
    reason: u32,
    /// Index into [`HistoryTables::actors`].
    actors: u32,
    from: Option<RequestStatus>,
    to: RequestStatus,
}

const _: () = assert!(size_of::<CompactEntry>() == 24);

/// Fills the unused inline places; never read.
const VACANT: CompactEntry =
    CompactEntry { at: 0, attempt: 0, reason: NONE, actors: NONE, from: None, to: RequestStatus::Pending };

/// One request's compacted history: up to [`INLINE`] entries in place (no allocation for a
/// request that succeeds at its first attempt), more in a vector.
#[derive(Clone, Debug)]
pub(super) enum CompactHistory {
    /// The first `len` entries are the history.
    Inline { len: u8, entries: [CompactEntry; INLINE] },
    /// A history longer than the inline places, in a vector of exactly its length.
    Spilled(Vec<CompactEntry>),
}

impl Default for CompactHistory {
    fn default() -> Self {
        CompactHistory::Inline { len: 0, entries: [VACANT; INLINE] }
    }
}

impl CompactHistory {
    pub(super) fn as_slice(&self) -> &[CompactEntry] {
        match self {
            CompactHistory::Inline { len, entries } => entries.get(..usize::from(*len)).unwrap_or_default(),
            CompactHistory::Spilled(v) => v,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    fn push(&mut self, e: CompactEntry) {
        match self {
            CompactHistory::Inline { len, entries } => {
                if let Some(place) = entries.get_mut(usize::from(*len)) {
                    *place = e;
                    *len += 1;
                } else {
                    let mut v = Vec::with_capacity(2 * INLINE);
                    v.extend_from_slice(entries);
                    v.push(e);
                    *self = CompactHistory::Spilled(v);
                }
            }
            CompactHistory::Spilled(v) => v.push(e),
        }
    }

    /// Empties the history (for a vacant slot).
    pub(super) fn clear(&mut self) {
        match self {
            CompactHistory::Inline { len, .. } => *len = 0,
            CompactHistory::Spilled(_) => *self = CompactHistory::default(),
        }
    }
}

/// The tables that [`CompactEntry`] indices point into, and the conversions both ways.
pub(super) struct HistoryTables {
    reasons: Interner<Cow<'static, str>>,
    actors: Interner<Actors>,
    /// Per position in a history, the identities last found there and their indices:
    /// consecutive finishing requests mostly have the same history (submitted, claimed by the
    /// same bank, started and finished by the same worker), which this finds with two compares
    /// per value.
    recent: [Recent; INLINE],
    /// Compacted entries held by the store.
    entries: usize,
    /// Values held after the last sweep (all in use then).
    used_at_sweep: usize,
}

/// Identities found by identity (so held by the tables) and their indices; [`NONE`] when unset.
#[derive(Clone, Copy)]
struct Recent {
    reason: (Identity, u32),
    actors: (Identity, u32),
}

const NO_RECENT: Recent = Recent { reason: ((0, 0), NONE), actors: ((0, 0), NONE) };

impl Default for HistoryTables {
    fn default() -> Self {
        HistoryTables {
            reasons: Interner::default(),
            actors: Interner::default(),
            recent: [NO_RECENT; INLINE],
            entries: 0,
            used_at_sweep: 0,
        }
    }
}

impl HistoryTables {
    /// Appends `entries` to `history`.
    ///
    /// `entries` are read, not consumed: the caller drops them, preferably after releasing the
    /// store's lock (dropping an entry's `Arc`s right after a transition's writes stalls on the
    /// atomic decrements). A known value is found by address without cloning it.
    pub(super) fn compact(&mut self, entries: &[HistoryEntry], history: &mut CompactHistory) {
        self.entries += entries.len();
        if let CompactHistory::Inline { len: len @ 0, entries: places } = history
            && entries.len() <= INLINE
        {
            // The usual case: written in place (a copy of the whole array would stall on
            // reading back the fields just written).
            for (k, (e, place)) in entries.iter().zip(places.iter_mut()).enumerate() {
                *place = self.compact_entry(k, e);
            }
            *len = entries.len() as u8;
            return;
        }
        let len = history.as_slice().len() + entries.len();
        if len > INLINE {
            let mut v = Vec::with_capacity(len);
            v.extend_from_slice(history.as_slice());
            *history = CompactHistory::Spilled(v);
        }
        let start = history.as_slice().len();
        for (k, e) in entries.iter().enumerate() {
            let c = self.compact_entry(start + k, e);
            history.push(c);
        }
    }

    /// Entry `e`, at position `k` of its history.
    #[inline]
    fn compact_entry(&mut self, k: usize, e: &HistoryEntry) -> CompactEntry {
        let recent = self.recent.get(k).copied().unwrap_or(NO_RECENT);
        let reason = match &e.reason {
            Cow::Borrowed(s) if recent.reason.0 == str_identity(s) && recent.reason.1 != NONE => recent.reason.1,
            _ => self.reason_index(k, &e.reason),
        };
        let actors = if recent.actors.0 == actors_identity(&e.bank_id, &e.worker_id) && recent.actors.1 != NONE {
            recent.actors.1
        } else {
            self.actors_index(k, &e.bank_id, &e.worker_id)
        };
        CompactEntry { at: e.at.as_micros(), attempt: e.attempt, reason, actors, from: e.from, to: e.to }
    }

    /// The index of `reason`, stored if new; remembered for position `k` when found by
    /// identity.
    #[cold]
    #[inline(never)]
    #[expect(clippy::ptr_arg, reason = "a static reason is found by address and stored without a copy")]
    fn reason_index(&mut self, k: usize, reason: &Cow<'static, str>) -> u32 {
        match reason {
            Cow::Borrowed(s) => {
                let id = str_identity(s);
                if let Some(i) = self.reasons.find(id) {
                    if let Some(r) = self.recent.get_mut(k) {
                        r.reason = (id, i);
                    }
                    return i;
                }
            }
            // Found by contents without copying them (`failed: {code}` of every failure).
            Cow::Owned(s) => {
                if let Some(&i) = self.reasons.by_value.get(s.as_str()) {
                    return i;
                }
            }
        }
        self.reasons.intern(reason.clone())
    }

    /// The index of (`bank`, `worker`), stored if new; remembered for position `k` when found
    /// by identity.
    #[cold]
    #[inline(never)]
    fn actors_index(&mut self, k: usize, bank: &Option<Arc<str>>, worker: &Option<Arc<str>>) -> u32 {
        let id = actors_identity(bank, worker);
        if let Some(i) = self.actors.find(id) {
            if let Some(r) = self.recent.get_mut(k) {
                r.actors = (id, i);
            }
            return i;
        }
        self.actors.intern(Actors { bank: bank.clone(), worker: worker.clone() })
    }

    /// The history as it was written: `history`, then `rest` (the entries not compacted).
    pub(super) fn expand(&self, history: &CompactHistory, rest: &[HistoryEntry]) -> Vec<HistoryEntry> {
        let mut out = Vec::with_capacity(history.as_slice().len() + rest.len());
        out.extend(history.as_slice().iter().map(|c| {
            let (bank_id, worker_id) = match self.actors.get(c.actors) {
                Some(a) => (a.bank.clone(), a.worker.clone()),
                None => (None, None),
            };
            HistoryEntry {
                from: c.from,
                to: c.to,
                at: Timestamp::from_micros(c.at),
                reason: self.reasons.get(c.reason).cloned().unwrap_or_default(),
                bank_id,
                worker_id,
                attempt: c.attempt,
            }
        }));
        out.extend_from_slice(rest);
        out
    }

    /// Empties a deleted request's history.
    pub(super) fn forget(&mut self, history: &mut CompactHistory) {
        self.entries -= history.as_slice().len().min(self.entries);
        history.clear();
    }

    /// Whether the tables should be swept, in a store of `slots` slots (what a sweep visits).
    pub(super) fn sweep_due(&self, slots: usize) -> bool {
        let used = self.used_at_sweep.min(self.entries);
        self.held() > used.saturating_mul(2).saturating_add(SWEEP_SLACK.max(slots / 16))
    }

    /// Frees the values that none of `histories` (every compacted history of the store) uses.
    pub(super) fn sweep<'a>(&mut self, histories: impl Iterator<Item = &'a CompactHistory>) {
        let mut reasons = vec![false; self.reasons.slots.len()];
        let mut actors = vec![false; self.actors.slots.len()];
        for c in histories.flat_map(CompactHistory::as_slice) {
            if let Some(used) = reasons.get_mut(c.reason as usize) {
                *used = true;
            }
            if let Some(used) = actors.get_mut(c.actors as usize) {
                *used = true;
            }
        }
        self.reasons.sweep(&reasons);
        self.actors.sweep(&actors);
        self.recent = [NO_RECENT; INLINE];
        self.used_at_sweep = self.held();
    }

    fn held(&self) -> usize {
        self.reasons.by_value.len() + self.actors.by_value.len()
    }

    /// Distinct reasons and (bank, worker) pairs held.
    #[cfg(test)]
    pub(super) fn table_sizes(&self) -> (usize, usize) {
        (self.reasons.by_value.len(), self.actors.by_value.len())
    }
}

/// The bank and worker of a history entry.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Actors {
    bank: Option<Arc<str>>,
    worker: Option<Arc<str>>,
}

/// An address and a length: see [`Interned::identity`].
type Identity = (usize, usize);

/// A value that can be found by identity (an address) without hashing its contents.
trait Interned: Clone + Eq + Hash {
    /// An identity that only this value, or an equal one, can have while the table holds it:
    /// the address of a `'static` string, or of `Arc`s the table keeps alive.
    fn identity(&self) -> Option<Identity>;
}

impl Interned for Cow<'static, str> {
    fn identity(&self) -> Option<Identity> {
        match self {
            Cow::Borrowed(s) => Some(str_identity(s)),
            // Each owned reason is a new allocation: its address identifies nothing.
            Cow::Owned(_) => None,
        }
    }
}

fn str_identity(s: &'static str) -> Identity {
    (s.as_ptr().addr(), s.len())
}

impl Interned for Actors {
    fn identity(&self) -> Option<Identity> {
        Some(actors_identity(&self.bank, &self.worker))
    }
}

fn actors_identity(bank: &Option<Arc<str>>, worker: &Option<Arc<str>>) -> Identity {
    let addr = |a: &Option<Arc<str>>| a.as_ref().map_or(0, |a| Arc::as_ptr(a).cast::<u8>().addr());
    (addr(bank), addr(worker))
}

/// Places in an interner's identity cache: far more than the values a finishing batch cycles
/// through (four reasons, three actor pairs per request), so that they rarely collide.
const CACHE: usize = 64;

/// Distinct values, each stored once.
///
/// A lookup tries, in order: a direct-mapped cache of identities, the identity map (addresses
/// only, no hashing of contents), and the value map. Only the stored value's identity is ever a
/// key: the table keeps that value alive, so its address cannot be reused by another value
/// meanwhile. An equal value at another address is found by contents.
struct Interner<T> {
    /// Indexed by the indices handed out; `None` when free.
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    by_identity: FxHashMap<Identity, u32>,
    by_value: FxHashMap<T, u32>,
    /// Identity → index of recent lookups; [`NONE`] marks an empty place.
    cache: [(Identity, u32); CACHE],
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            slots: Vec::new(),
            free: Vec::new(),
            by_identity: FxHashMap::default(),
            by_value: FxHashMap::default(),
            cache: [((0, 0), NONE); CACHE],
        }
    }
}

impl<T: Interned> Interner<T> {
    /// The index of the value with identity `id`, if the table holds it.
    fn find(&mut self, id: Identity) -> Option<u32> {
        let place = cache_place(id);
        if let Some(&(cached, i)) = self.cache.get(place)
            && cached == id
            && i != NONE
        {
            return Some(i);
        }
        let i = *self.by_identity.get(&id)?;
        if let Some(p) = self.cache.get_mut(place) {
            *p = (id, i);
        }
        Some(i)
    }

    /// The index of `value`, stored if new.
    fn intern(&mut self, value: T) -> u32 {
        let identity = value.identity();
        if let Some(i) = identity.and_then(|id| self.find(id)) {
            return i;
        }
        if let Some(&i) = self.by_value.get(&value) {
            if let (Some(id), Some(slot)) = (identity, self.slots.get_mut(i as usize))
                && slot.as_ref().is_some_and(|v| v.identity().is_none())
            {
                // The stored copy has no identity (an owned reason) and this one does (the
                // same words, static): keep this one, so that the next lookups skip hashing.
                *slot = Some(value);
                self.by_identity.insert(id, i);
            }
            return i;
        }
        let Some(i) = self.free.pop().or_else(|| u32::try_from(self.slots.len()).ok().filter(|&i| i != NONE)) else {
            return NONE;
        };
        if let Some(id) = identity {
            self.by_identity.insert(id, i);
            if let Some(p) = self.cache.get_mut(cache_place(id)) {
                *p = (id, i);
            }
        }
        self.by_value.insert(value.clone(), i);
        match self.slots.get_mut(i as usize) {
            Some(s) => *s = Some(value),
            None => self.slots.push(Some(value)),
        }
        i
    }

    fn get(&self, i: u32) -> Option<&T> {
        self.slots.get(i as usize)?.as_ref()
    }

    /// Frees every value whose index `used` does not mark.
    fn sweep(&mut self, used: &[bool]) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if used.get(i).copied().unwrap_or(false) {
                continue;
            }
            let Some(value) = slot.take() else { continue };
            if let Some(id) = value.identity()
                && self.by_identity.get(&id) == Some(&(i as u32))
            {
                self.by_identity.remove(&id);
            }
            self.by_value.remove(&value);
            self.free.push(i as u32);
        }
        // Cheaper than finding the freed indices in the cache, and a sweep is rare.
        self.cache = [((0, 0), NONE); CACHE];
    }
}

/// Where `id` goes in an interner's cache: a multiplicative hash of both words, top bits.
fn cache_place(id: Identity) -> usize {
    let h = (id.0 ^ id.1.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as usize);
    h >> (usize::BITS - CACHE.trailing_zeros())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn owned(s: &str) -> Cow<'static, str> {
        Cow::Owned(s.to_owned())
    }

    #[test]
    fn equal_values_share_an_index_and_a_sweep_frees_the_unused() {
        let mut t: Interner<Cow<'static, str>> = Interner::default();
        let a = t.intern(Cow::Borrowed("completed"));
        assert_eq!(t.intern(Cow::Borrowed("completed")), a, "found by identity");
        assert_eq!(t.intern(owned("completed")), a, "found by contents");
        let b = t.intern(owned("failed: E"));
        assert_ne!(a, b);
        assert_eq!(t.intern(owned("failed: E")), b);
        let mut used = vec![false; 2];
        used[b as usize] = true;
        t.sweep(&used);
        assert_eq!(t.get(a), None, "unused, so freed");
        assert!(t.cache.iter().all(|p| p.1 == NONE) && t.by_identity.is_empty());
        assert_eq!(t.get(b).map(|s| &**s), Some("failed: E"));
        assert_eq!(t.intern(Cow::Borrowed("x")), a, "a freed index is reused");
        t.sweep(&[]);
        assert!(t.by_value.is_empty() && t.by_identity.is_empty());
    }

    /// An owned reason stored first is replaced by the same words as a static string, which is
    /// then found by identity; what reads back is equal either way.
    #[test]
    fn a_static_string_takes_over_an_owned_copy() {
        let mut t: Interner<Cow<'static, str>> = Interner::default();
        let a = t.intern(owned("timed out"));
        assert!(t.by_identity.is_empty());
        assert_eq!(t.intern(Cow::Borrowed("timed out")), a);
        assert_eq!(t.by_identity.len(), 1);
        assert!(matches!(t.get(a), Some(Cow::Borrowed("timed out"))));
    }

    /// Equal actors in different allocations are one entry; once swept, a freed entry's
    /// address, reused by a new allocation with other contents, does not find the old entry.
    #[test]
    fn actors_are_found_by_address_then_by_contents() {
        let mut t: Interner<Actors> = Interner::default();
        let w1: Arc<str> = Arc::from("w");
        let a = t.intern(Actors { bank: None, worker: Some(w1.clone()) });
        assert_eq!(t.intern(Actors { bank: None, worker: Some(w1.clone()) }), a);
        assert_eq!(t.intern(Actors { bank: None, worker: Some(Arc::from("w")) }), a);
        let b = t.intern(Actors { bank: Some(Arc::from("b")), worker: Some(w1.clone()) });
        assert_ne!(a, b);
        t.sweep(&[]);
        drop(w1);
        assert!(t.by_identity.is_empty() && t.by_value.is_empty());
        let other = t.intern(Actors { bank: None, worker: Some(Arc::from("v")) });
        assert_eq!(t.get(other).and_then(|a| a.worker.as_deref()), Some("v"));
    }

    fn entry(attempt: u32, reason: Cow<'static, str>, worker: Option<&Arc<str>>) -> HistoryEntry {
        HistoryEntry {
            from: Some(RequestStatus::Processing),
            to: RequestStatus::Scheduled,
            at: Timestamp::from_micros(i64::from(attempt) * 1_000_001),
            reason,
            bank_id: Some(Arc::from("bank")),
            worker_id: worker.cloned(),
            attempt,
        }
    }

    /// A long history (retries) spills into an exact-size vector; compacting in two steps
    /// appends; every field reads back; a sweep keeps what a history uses.
    #[test]
    fn histories_round_trip_and_spill_in_order() {
        let mut tables = HistoryTables::default();
        let w: Arc<str> = Arc::from("w");
        let written: Vec<HistoryEntry> = (0..7u32)
            .map(|n| match n % 3 {
                0 => entry(n, Cow::Borrowed("worker started"), Some(&w)),
                1 => entry(n, Cow::Owned(format!("failed: E{n}")), None),
                _ => entry(n, Cow::Owned("retry scheduled after E".into()), Some(&Arc::from("w"))),
            })
            .collect();
        let mut h = CompactHistory::default();
        tables.compact(&written[..3], &mut h);
        assert!(matches!(h, CompactHistory::Inline { len: 3, .. }));
        tables.compact(&written[3..], &mut h);
        assert!(matches!(&h, CompactHistory::Spilled(v) if v.len() == 7 && v.capacity() == 7));
        assert_eq!(tables.expand(&h, &[]), written);
        assert_eq!(tables.expand(&h, &written[..1]).len(), 8, "the rest follows");
        assert_eq!(tables.table_sizes(), (4, 2), "equal values are stored once");

        let mut other = CompactHistory::default();
        tables.compact(&[entry(0, owned("cancelled by x"), None)], &mut other);
        assert_eq!(tables.table_sizes(), (5, 2));
        tables.forget(&mut other);
        assert_eq!(tables.entries, 7);
        tables.sweep([&h].into_iter());
        assert_eq!(tables.table_sizes(), (4, 2), "only the unused reason is freed");
        assert_eq!(tables.expand(&h, &[]), written);
        tables.forget(&mut h);
        tables.sweep(std::iter::empty());
        assert_eq!(tables.table_sizes(), (0, 0));
        assert_eq!(tables.entries, 0);
    }

    /// A sweep is due past twice the values in use (or the entries held, if fewer) plus the
    /// slack, or one per 16 slots.
    #[test]
    fn sweeps_are_due_past_the_bound() {
        let mut tables = HistoryTables::default();
        let mut held: Vec<CompactHistory> = Vec::new();
        for n in 0..2000 {
            let mut h = CompactHistory::default();
            tables.compact(&[entry(0, Cow::Owned(format!("failed: E{n}")), None)], &mut h);
            held.push(h);
        }
        assert!(tables.sweep_due(0), "2001 values, none known to be in use");
        assert!(!tables.sweep_due(16 * 2002), "a store of many slots tolerates more");
        tables.sweep(held.iter());
        assert_eq!(tables.table_sizes(), (2000, 1), "all in use");
        assert!(!tables.sweep_due(0));
        for h in &mut held[..1000] {
            tables.forget(h);
        }
        assert!(!tables.sweep_due(0), "2001 values, at most 1000 entries: within 2 × 1000 + 1024");
        for h in &mut held[1000..1600] {
            tables.forget(h);
        }
        assert!(tables.sweep_due(0), "2001 values, at most 400 entries");
        tables.sweep(held.iter());
        assert_eq!(tables.table_sizes(), (400, 1));
    }
}
