//! The writer's cache of live rows: the skeletons (see `row.rs`) of requests that are not
//! finished, exactly as they are in the file, so that a claim or a transition does not read
//! the row it is about to write.
//!
//! A request enters the cache when it is inserted (with its parameters, timeout and retry
//! policy: what a claim hands out) and leaves it when it finishes. Every write the cache
//! cannot mirror exactly removes the rows it touches (rescues, promotions, retention) or
//! empties the cache (a lease heartbeat, any rollback), so a cached skeleton always equals
//! what [`read_skeleton`](crate::row::read_skeleton) would read. The cache holds at most
//! [`CAPACITY`] rows; rows inserted while it is full are read from the file when needed.

use atmo_core::RequestId;
use rustc_hash::FxHashMap as HashMap;

use crate::row::Loaded;

/// Most rows cached: a queue deeper than this is read from the file beyond it. A cached row
/// takes about 1 KB (the request's skeleton and its column values as written), so the cache
/// stays under ~20 MB. It held 65,536 rows before: `durable-submit` (a queue building up) was
/// 3–5% slower then, the writer growing its heap by ~60 MB per run, while `durable-throughput`
/// (a few thousand live rows) did not change.
pub(crate) const CAPACITY: usize = 16_384;

/// A cached row.
pub(crate) struct Cached {
    pub(crate) loaded: Loaded,
    /// Whether the skeleton also holds the parameters, timeout and retry policy (a claim needs
    /// them; a row cached after a transition loaded without them does not have them).
    pub(crate) claimable: bool,
}

/// Live rows by row id, and row ids by request id.
#[derive(Default)]
pub(crate) struct RowCache {
    /// Boxed: a skeleton is large, and the map moves its values as it grows.
    rows: HashMap<i64, Box<Cached>>,
    ids: HashMap<RequestId, i64>,
    /// Rows that left the cache in the current batch, to be freed off the writer thread.
    pub(crate) retired: Vec<Loaded>,
}

impl RowCache {
    /// Takes the row `rowid` out of the cache.
    pub(crate) fn take_row(&mut self, rowid: i64) -> Option<Box<Cached>> {
        let c = self.rows.remove(&rowid)?;
        self.ids.remove(&c.loaded.row.request.request_id);
        Some(c)
    }

    /// Takes the row of request `id` out of the cache.
    pub(crate) fn take_id(&mut self, id: RequestId) -> Option<Box<Cached>> {
        let rowid = self.ids.remove(&id)?;
        self.rows.remove(&rowid)
    }

    /// Caches a row as just written, unless it finished (it will not change again) or the
    /// cache is full.
    pub(crate) fn put(&mut self, loaded: Loaded, claimable: bool) {
        if loaded.row.request.status.is_terminal() || self.rows.len() >= CAPACITY {
            self.retired.push(loaded);
            return;
        }
        self.ids.insert(loaded.row.request.request_id, loaded.rowid);
        self.rows.insert(loaded.rowid, Box::new(Cached { loaded, claimable }));
    }

    /// Drops row `rowid`, which is being written without the cache.
    pub(crate) fn forget(&mut self, rowid: i64) {
        self.take_row(rowid);
    }

    /// Drops every row (after a rollback, or a write to many rows).
    pub(crate) fn clear(&mut self) {
        self.rows.clear();
        self.ids.clear();
    }
}
