//! Whether the store still takes writes, and why not.
//!
//! Two failures stop a store for good (until it is reopened): an fsync of the WAL that failed
//! (what reached the disk is unknown, see `sync.rs`), and SQLite reporting the file corrupt
//! (`SQLITE_CORRUPT` or `SQLITE_NOTADB` from any connection: writing on would build on pages
//! that cannot be trusted). The first failure is logged with its cause and kept; from then on
//! every write is refused with it and [`Store::health`](atmo_core::Store::health) returns it,
//! so the service's `/readyz` answers 503. Reads still run: what can be read may help the
//! operator.

use std::sync::{Arc, OnceLock};

use atmo_core::StoreError;

use crate::error::Error;

/// Why a store stopped writing.
#[derive(Clone, Debug)]
pub(crate) enum Stop {
    /// An fsync of the WAL failed; the SQLite error that callers see.
    Fsync(Arc<rusqlite::Error>),
    /// SQLite found the file corrupt; what it said.
    Corrupt(String),
}

/// Shared by the store, its threads and its connections' callers.
#[derive(Debug, Default)]
pub(crate) struct Health {
    stop: OnceLock<Stop>,
}

impl Health {
    /// Stops the store with `why`, unless it already stopped (the first cause is kept). Logs
    /// a corruption once.
    pub(crate) fn stop(&self, why: Stop) {
        let mut first = false;
        self.stop.get_or_init(|| {
            first = true;
            why
        });
        // The sync thread logs a failed fsync itself, with the WAL's path.
        if first && let Some(Stop::Corrupt(m)) = self.stop.get() {
            tracing::error!(cause = %m, "the SQLite store file is corrupt; the store stopped writing");
        }
    }

    /// Whether the store stopped.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stop.get().is_some()
    }

    /// The error of every write once the store stopped (and of `health`).
    pub(crate) fn error(&self) -> Option<StoreError> {
        self.stop.get().map(|s| match s {
            Stop::Fsync(e) => Error::Commit(e.clone()).into(),
            Stop::Corrupt(m) => StoreError::Corrupt(format!(
                "{m}; the store stopped writing (restore the file from a backup, or run `sqlite3 <file> .recover`)"
            )),
        })
    }

    /// Stops the store if `e` says the file is corrupt.
    pub(crate) fn watch(&self, e: &Error) {
        if let Some(cause) = corruption(e) {
            self.stop(Stop::Corrupt(cause));
        }
    }
}

/// What SQLite said, if `e` says the file is corrupt.
pub(crate) fn corruption(e: &Error) -> Option<String> {
    let sqlite = match e {
        Error::Sqlite(s) => s,
        Error::Commit(s) => s.as_ref(),
        _ => return None,
    };
    crate::error::is_corrupt(sqlite).then(|| sqlite.to_string())
}
