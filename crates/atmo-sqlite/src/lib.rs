//! # atmo-sqlite
//!
//! The durable embedded store of Atmo Workers: a [`Store`](atmo_core::Store) in one SQLite
//! file.
//!
//! How the pieces relate:
//!
//! - [`SqliteStore`] is the store. [`SqliteStore::open`] takes the file's lock, checks that the
//!   file is ours, migrates the schema and starts the threads; dropping it stops them.
//! - One **writer** thread owns the write connection. Every mutating call is sent to it and
//!   joins the next batch; a batch runs in one transaction and every call is answered after
//!   `COMMIT` (group commit). A call that fails leaves no trace and does not fail the others
//!   (the batch is then run again with a savepoint per call).
//! - A **sync** thread makes commits durable: it fsyncs the WAL and only then answers the
//!   calls of the batches committed before the fsync, while the writer goes on with the next
//!   batch. One fsync covers however many batches the disk's latency lets through. A
//!   **checkpoint** thread copies the WAL into the database file in the background.
//! - The writer keeps the rows of live requests in a cache (`cache.rs`), so a claim or a
//!   transition does not read the row it is about to write; debug builds check every cached
//!   row against the file.
//! - **Readers** (see [`SqliteOptions::readers`]) answer `get`, `query`, `metrics` and
//!   `next_scheduled` on their own connections; WAL mode lets them read while the writer
//!   writes.
//! - Each request is one row with one column per field. What never changes (parameters,
//!   metadata, ...) is written once; a state change loads the few columns the state machine
//!   looks at, runs [`atmo_core::apply_claim`] or [`atmo_core::apply_transition`] on them
//!   inside the writer's transaction, and writes back only the columns that changed, appending
//!   the new history entry (and error) to the row's JSON lines instead of re-encoding the
//!   request. Indexes serve the claim path (pending requests only), the scheduler, leases and
//!   the common queries; most are partial, so a request's lifecycle touches few of them.
//! - A small table of counts per status and task, written once per batch, answers status
//!   counts and the exact `total` of queries filtered by status and task without scanning.
//! - The schema is versioned; opening an older file migrates it (see [`SCHEMA_VERSION`]).
//! - [`SqliteOptions`] and [`Synchronous`] choose durability against speed.
//! - [`backup`] and [`SqliteStore::backup`] copy a consistent snapshot of a store that is
//!   open and being written (`VACUUM INTO` in one read transaction), for `atmo backup`.

mod backup;
mod cache;
mod error;
mod health;
mod options;
mod read;
mod row;
mod runtime;
mod schema;
mod store;
mod sync;
mod write;

pub use backup::{BackupReport, Overwrite, backup};
pub use error::Error;
pub use options::{SqliteOptions, Synchronous};
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use store::SqliteStore;
