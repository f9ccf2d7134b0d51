//! # atmo-postgres
//!
//! The cluster store of Atmo Workers: a [`Store`](atmo_core::Store) in one PostgreSQL schema,
//! shared by any number of engine nodes.
//!
//! How the pieces relate:
//!
//! - [`PostgresStore`] is the store. [`PostgresStore::connect`] builds a small connection pool
//!   (`tokio-postgres` under `deadpool-postgres`), checks that the schema is new, empty or
//!   ours, and migrates it ([`SCHEMA_VERSION`]); [`PostgresConfig`] says where.
//! - Every operation takes a batch and costs a fixed number of round trips whatever the batch
//!   size: rows travel as arrays (`unnest`) with binary parameters, and prepared statements
//!   are cached per connection.
//! - Claims pick pending requests with `FOR UPDATE SKIP LOCKED` and change them in the same
//!   statement, so nodes claiming at once neither wait for nor duplicate each other. Each
//!   claimed request holds a lease (owner and expiry) that [`Store::heartbeat`] extends for
//!   all of an owner's requests at once and the rescuer returns once it expires.
//! - Every other state change is a compare-and-set: the rows are locked, checked and changed
//!   by [`atmo_core::apply_transition`] (the one place where the lifecycle is decided), and
//!   written back in one statement. A late result of an attempt that was rescued finds the
//!   request at a newer attempt and is rejected.
//! - A transaction that loses a deadlock or serialization race is run again.
//!
//! [`Store::heartbeat`]: atmo_core::Store::heartbeat

mod error;
mod read;
mod row;
mod schema;
mod store;
mod write;

pub use error::Error;
pub use schema::{MARKER, SCHEMA_VERSION};
pub use store::{PostgresConfig, PostgresStore};
