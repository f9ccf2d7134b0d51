//! The crate's error type and its mapping onto [`StoreError`].

use std::sync::Arc;

use atmo_core::StoreError;

/// What can go wrong inside the SQLite store.
///
/// Callers of the [`Store`](atmo_core::Store) trait see these wrapped in
/// [`StoreError::Backend`] (or mapped onto a more specific [`StoreError`] variant).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite reported an error.
    #[error("sqlite error")]
    Sqlite(#[from] rusqlite::Error),
    /// The transaction holding this operation's batch failed to commit; nothing of the batch
    /// was stored.
    #[error("the batch could not be committed")]
    Commit(#[source] Arc<rusqlite::Error>),
    /// A stored request could not be encoded or decoded.
    #[error("request JSON could not be encoded or decoded")]
    Json(#[from] serde_json::Error),
    /// The lock file next to the database could not be opened.
    #[error("lock file i/o failed")]
    Io(#[from] std::io::Error),
    /// A backup could not be made: its source is missing, its destination exists, or writing,
    /// syncing or renaming the copy failed.
    #[error("the backup could not be made")]
    Backup(#[source] std::io::Error),
    /// A store-level failure (bad cursor, corrupt row, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(s) => s,
            Error::Json(j) => StoreError::Corrupt(j.to_string()),
            Error::Sqlite(ref s) if is_corrupt(s) => StoreError::Corrupt(s.to_string()),
            other => StoreError::Backend(Box::new(other)),
        }
    }
}

/// Whether SQLite says the file is corrupt or not a database (`SQLITE_CORRUPT`,
/// `SQLITE_NOTADB`): the file passed the header check, so either way its pages cannot be
/// trusted.
pub(crate) fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt))
}
