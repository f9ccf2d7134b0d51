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
//!   joins the next batch; a batch runs in one transaction (each call in its own savepoint) and
//!   every call is answered after `COMMIT`: group commit, one fsync per batch.
//! - **Readers** (see [`SqliteOptions::readers`]) answer `get`, `query`, `metrics` and
//!   `next_scheduled` on their own connections; WAL mode lets them read while the writer
//!   writes.
//! - Each request is one row: indexed columns for what is filtered, sorted and claimed by, and
//!   the request as JSON, so it reads back exactly as written. State changes go through
//!   [`atmo_core::apply_transition`] on the row as stored, inside the writer's transaction.
//! - [`SqliteOptions`] and [`Synchronous`] choose durability against speed.

mod error;
mod options;
mod read;
mod row;
mod runtime;
mod schema;
mod store;
mod write;

pub use error::Error;
pub use options::{SqliteOptions, Synchronous};
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use store::SqliteStore;
