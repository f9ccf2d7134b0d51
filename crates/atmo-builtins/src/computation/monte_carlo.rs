//! `MONTE_CARLO_PI`: π from points sampled in the unit square.
//!
//! The generator is ChaCha8 (`rand_chacha`), whose output is fixed by its specification, so a
//! seeded run gives the same estimate on every platform and version. Without a seed one is drawn
//! from the OS (or, on `wasm32-unknown-unknown`, derived from the request id) and reported in the
//! result so that the run can be repeated.

use atmo_core::{HandlerResult, TaskContext};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

use super::MAX_ITERATIONS;
use crate::params::Params;

/// Points between two cancellation checks.
const CHUNK: u64 = 1 << 16;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let iterations = p.u64("iterations", 1, MAX_ITERATIONS)?;
    let seed = crate::random::seed(ctx, p)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut inside = 0u64;
    let mut done = 0u64;
    while done < iterations {
        ctx.cancel.check()?;
        let n = CHUNK.min(iterations - done);
        for _ in 0..n {
            let x = unit(&mut rng);
            let y = unit(&mut rng);
            if x * x + y * y <= 1.0 {
                inside += 1;
            }
        }
        done += n;
        if done.is_multiple_of(CHUNK * 256) {
            ctx.progress(100.0 * done as f32 / iterations as f32, None);
        }
    }
    let ratio = inside as f64 / iterations as f64;
    let estimate = 4.0 * ratio;
    Ok(json!({
        "type": "MONTE_CARLO_RESULT",
        "estimate": estimate,
        "iterations": iterations,
        "insideCircle": inside,
        "seed": seed,
        "error": (estimate - std::f64::consts::PI).abs(),
        "standardError": 4.0 * (ratio * (1.0 - ratio) / iterations as f64).sqrt(),
    }))
}

/// A uniform float in `[0, 1)` from the top 53 bits.
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}
