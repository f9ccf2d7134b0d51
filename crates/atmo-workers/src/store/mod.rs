//! Stores shipped with the engine.

mod memory;

pub use memory::MemoryStore;
