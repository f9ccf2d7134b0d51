//! Randomness for the handlers.
//!
//! Native targets read the operating system's generator through `getrandom`.
//! `wasm32-unknown-unknown` has no such generator without JavaScript glue, which this crate does
//! not assume: there [`os_random`] returns a `RANDOMNESS_UNAVAILABLE` error and handlers that need
//! fresh secrets (`RANDOM_BYTES`, `GENERATE_KEYPAIR`, `ENCRYPT` without a nonce, `PASSWORD_HASH`
//! without a salt) ask the caller for a seed, key, nonce or salt instead. Simulations
//! (`MONTE_CARLO_PI`) fall back to a seed derived from the request id.

use atmo_core::{TaskContext, TaskError};

use crate::params::Params;

/// The `seed` parameter, or a fresh seed from the operating system, or (where there is none)
/// one derived from the request id and attempt.
///
/// # Errors
/// A validation error when `seed` is present but not a non-negative integer.
pub(crate) fn seed(ctx: &TaskContext, p: Params<'_>) -> Result<u64, TaskError> {
    Ok(match p.opt_u64("seed", 0, u64::MAX)? {
        Some(s) => s,
        None => {
            let mut buf = [0u8; 8];
            match os_random(&mut buf) {
                Ok(()) => u64::from_le_bytes(buf),
                Err(_) => (ctx.request_id.as_u128() as u64) ^ u64::from(ctx.attempt),
            }
        }
    })
}

/// Fills `buf` from the operating system's generator.
///
/// # Errors
/// `RANDOMNESS_UNAVAILABLE` (category `system`) when the platform has none.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<(), TaskError> {
    imp::fill(buf)
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
mod imp {
    use super::*;

    pub(super) fn fill(buf: &mut [u8]) -> Result<(), TaskError> {
        getrandom::getrandom(buf).map_err(|e| {
            TaskError::system("RANDOMNESS_UNAVAILABLE", format!("the operating system's random generator failed: {e}"))
        })
    }
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod imp {
    use super::*;

    pub(super) fn fill(_buf: &mut [u8]) -> Result<(), TaskError> {
        Err(TaskError::fatal(
            "RANDOMNESS_UNAVAILABLE",
            "no secure random generator on wasm32-unknown-unknown: pass the seed, key, nonce or salt explicitly",
        )
        .with_category(atmo_core::ErrorCategory::System))
    }
}
