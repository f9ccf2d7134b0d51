//! [`SqliteOptions`]: how a store is opened.

/// How hard SQLite works to make a commit survive a power loss (`PRAGMA synchronous`).
///
/// In WAL mode:
///
/// - [`Synchronous::Full`] (the default): a call is answered only after its commit is on
///   stable storage (an fsync of the WAL), so what returned survives a crash of the process
///   **and** a power loss or OS crash. The fsync runs on a thread of its own while the writer
///   goes on with the next batch, and one fsync answers every batch committed before it.
/// - [`Synchronous::Normal`] syncs only at checkpoints: a commit survives a crash of the process
///   (the WAL is in the OS page cache), but the last commits before a power loss or OS crash
///   may be lost. The database is never corrupted either way. It is much faster on disks with
///   slow fsync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Survives power loss (an fsync of the WAL before any call is answered).
    #[default]
    Full,
    /// Survives process crashes only; faster.
    Normal,
}

/// Options for [`SqliteStore::open`](crate::SqliteStore::open).
///
/// ```
/// use atmo_sqlite::{SqliteOptions, Synchronous};
/// let opts = SqliteOptions::default().synchronous(Synchronous::Normal).readers(4);
/// assert_eq!(opts.readers, 4);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Durability of a commit; see [`Synchronous`].
    pub synchronous: Synchronous,
    /// Read connections, each on its own thread (at least 1 for a file store), so that reads
    /// do not wait behind writes.
    pub readers: usize,
    /// Most operations the writer groups into one transaction.
    pub max_batch: usize,
    /// Milliseconds a connection waits for a lock held by another connection of this store
    /// (a checkpoint) before failing.
    pub busy_timeout_ms: u32,
    /// Whether opening an existing file runs `PRAGMA quick_check` first and refuses a corrupt
    /// file with [`StoreError::Corrupt`](atmo_core::StoreError::Corrupt) (default `true`). The
    /// check reads the whole file once: about a second per few hundred MB (see the README's
    /// durability section); turn it off to open a large file faster. Corruption met later is
    /// still caught when SQLite reads the damaged page.
    pub integrity_check: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            readers: 2,
            max_batch: 4096,
            busy_timeout_ms: 5000,
            integrity_check: true,
        }
    }
}

impl SqliteOptions {
    /// Sets [`SqliteOptions::synchronous`].
    pub fn synchronous(mut self, s: Synchronous) -> Self {
        self.synchronous = s;
        self
    }
    /// Sets [`SqliteOptions::readers`].
    pub fn readers(mut self, n: usize) -> Self {
        self.readers = n;
        self
    }
    /// Sets [`SqliteOptions::integrity_check`].
    pub fn integrity_check(mut self, on: bool) -> Self {
        self.integrity_check = on;
        self
    }
    /// Sets [`SqliteOptions::max_batch`].
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }
}
