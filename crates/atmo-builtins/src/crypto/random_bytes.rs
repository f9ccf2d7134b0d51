//! `RANDOM_BYTES`: bytes from the OS's secure generator, or deterministic ChaCha20 output when a
//! `seed` is given (reproducible, for tests and simulations; never for secrets). On
//! `wasm32-unknown-unknown` only the seeded form works.

use atmo_core::{HandlerResult, TaskContext};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

use super::{MAX_RANDOM_BYTES, OUTPUT_FORMATS};
use crate::params::{Params, encode};
use crate::random::os_random;

pub(super) fn handle(_ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let length = p.u64("length", 1, MAX_RANDOM_BYTES)?;
    let output = p.choice("outputFormat", "base64", &OUTPUT_FORMATS)?;
    let seed = p.opt_u64("seed", 0, u64::MAX)?;
    // `length` is at most MAX_RANDOM_BYTES, so it fits in usize everywhere.
    let mut bytes = vec![0u8; length as usize];
    match seed {
        Some(s) => ChaCha20Rng::seed_from_u64(s).fill_bytes(&mut bytes),
        None => os_random(&mut bytes)?,
    }
    Ok(json!({
        "type": "RANDOM_BYTES_RESULT",
        "bytes": encode(&bytes, output),
        "length": length,
        "outputFormat": output,
        "deterministic": seed.is_some(),
    }))
}
