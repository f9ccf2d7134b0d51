//! The crate's error type and its mapping onto [`StoreError`].

use atmo_core::StoreError;

/// What can go wrong inside the PostgreSQL store.
///
/// Callers of the [`Store`](atmo_core::Store) trait see these wrapped in
/// [`StoreError::Backend`] (or mapped onto a more specific [`StoreError`] variant: a schema
/// that is newer than this build, or one that is not ours).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection to the server could be made: nothing answers at the address, or the
    /// connection timed out.
    #[error("cannot reach PostgreSQL at {target}; is the server running and the address right?")]
    Unreachable {
        /// Where the store tried to connect (`host:port/database`, no password).
        target: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The server answered but refused the connection (authentication failed, no such
    /// database, too many connections).
    #[error("PostgreSQL at {target} refused the connection")]
    Refused {
        /// Where the store tried to connect (`host:port/database`, no password).
        target: String,
        /// The driver's error, with the server's message.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The connection string could not be parsed.
    #[error("invalid PostgreSQL connection string")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// The schema name is not one the store can use.
    #[error(
        "invalid schema name `{0}`: use 1 to 63 lowercase ASCII letters, digits and underscores, \
         starting with a letter or underscore"
    )]
    InvalidSchema(String),
    /// A statement failed.
    #[error("PostgreSQL error")]
    Postgres(#[from] tokio_postgres::Error),
    /// The pool could not hand out a connection.
    #[error("no PostgreSQL connection available from the pool")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The pool could not be built.
    #[error("the connection pool could not be built")]
    Build(#[from] deadpool_postgres::BuildError),
    /// A stored request could not be encoded or decoded.
    #[error("request JSON could not be encoded or decoded")]
    Json(#[from] serde_json::Error),
    /// A store-level failure (bad cursor, corrupt row, a schema that is not ours, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// Whether the transaction failed only because it lost a race that PostgreSQL resolves by
    /// aborting one side (a deadlock or a serialization failure): running it again is safe.
    pub(crate) fn is_retryable(&self) -> bool {
        let code = match self {
            Error::Postgres(e) => e.code(),
            Error::Pool(deadpool_postgres::PoolError::Backend(e)) => e.code(),
            _ => None,
        };
        code.is_some_and(|c| {
            *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                || *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
        })
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(s) => s,
            Error::Json(j) => StoreError::Corrupt(j.to_string()),
            other => StoreError::Backend(Box::new(other)),
        }
    }
}
