//! The in-memory store.

/// Requests in memory: fast, nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {}
