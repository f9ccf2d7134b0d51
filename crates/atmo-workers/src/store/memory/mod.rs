//! The in-memory store: [`MemoryStore`].
//!
//! Fast, and nothing survives the process: a restart loses every request. Use the SQLite store
//! when requests must outlive the process.
//!
//! See [`MemoryStore`] for how it is laid out.

mod history;
mod idempotency;
mod index;
mod ready;
mod scheduled;
mod slab;
mod state;
mod store;
#[cfg(test)]
mod tests;

pub use store::MemoryStore;
