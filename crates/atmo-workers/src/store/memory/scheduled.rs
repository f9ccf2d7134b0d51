//! Entries of the scheduled heap.

use atmo_core::{Request, RequestId, Timestamp};

/// A scheduled request in the scheduled heap (a min-heap through `Reverse`).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ScheduledItem {
    pub(super) run_at: Timestamp,
    pub(super) seq: u64,
    pub(super) slot: u32,
    pub(super) id: RequestId,
}

/// When a scheduled request is due; one without `run_at` is due at once.
pub(super) fn due_at(r: &Request) -> Timestamp {
    r.run_at.unwrap_or(Timestamp::EPOCH)
}
