//! # atmo-workers
//!
//! The engine of Atmo Workers.

pub use atmo_core::*;

pub mod mock;
pub mod sniffer;
pub mod store;
pub mod tracer;
