//! `RANDOM_WALK`: simple random walks on a lattice.
//!
//! Each step moves `stepSize` along one axis chosen uniformly, in a uniformly chosen direction,
//! so the expected squared displacement after `n` steps is `n · stepSize²` in any dimension.

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};

use super::input::number_or;
use super::rng::{Rng, seed};
use super::{MAX_PATH_POINTS, MAX_WALK_STEPS, MAX_WALK_WORK, MAX_WALKERS};
use crate::params::{Params, invalid};

/// Steps between two cancellation checks.
const CHUNK: u64 = 1 << 16;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let steps = p.u64("steps", 1, MAX_WALK_STEPS)?;
    let dims = p.opt_u64("dimensions", 1, 3)?.unwrap_or(2) as usize;
    let step_size = number_or(p, "stepSize", 1.0, 0.0, 1e12)?;
    let walkers = p.opt_u64("walkers", 1, MAX_WALKERS)?.unwrap_or(1);
    if steps.saturating_mul(walkers) > MAX_WALK_WORK {
        return Err(invalid("walkers", format_args!("× steps must be at most {MAX_WALK_WORK}")));
    }
    let include_path = p.bool_or("includePath", false)?;
    let seed = seed(ctx, p)?;

    // Keep every `stride`-th point so the path has at most MAX_PATH_POINTS + 1 points.
    let stride = steps.div_ceil(MAX_PATH_POINTS).max(1);
    let mut path = Vec::new();
    let mut rng = Rng::new(seed);
    let (mut sum_dist, mut sum_sq, mut max_dist) = (0.0f64, 0.0f64, 0.0f64);
    let mut mean_position = [0.0f64; 3];
    let mut first_final = Vec::new();
    let mut since_check = 0u64;
    for w in 0..walkers {
        let mut pos = [0i64; 3];
        let record = include_path && w == 0;
        if record {
            path.push(json!(vec![0.0; dims]));
        }
        for s in 1..=steps {
            since_check += 1;
            if since_check >= CHUNK {
                since_check = 0;
                ctx.cancel.check()?;
            }
            let r = rng.below(2 * dims as u32) as usize;
            pos[r / 2] += if r.is_multiple_of(2) { 1 } else { -1 };
            if record && (s % stride == 0 || s == steps) {
                path.push(json!(pos[..dims].iter().map(|&c| c as f64 * step_size).collect::<Vec<_>>()));
            }
        }
        let coords: Vec<f64> = pos[..dims].iter().map(|&c| c as f64 * step_size).collect();
        let sq: f64 = coords.iter().map(|c| c * c).sum();
        sum_sq += sq;
        sum_dist += sq.sqrt();
        max_dist = max_dist.max(sq.sqrt());
        for (m, c) in mean_position.iter_mut().zip(&coords) {
            *m += c;
        }
        if w == 0 {
            first_final = coords;
        }
    }
    let n = walkers as f64;
    let mut result = json!({
        "type": "RANDOM_WALK_RESULT",
        "steps": steps,
        "dimensions": dims,
        "stepSize": step_size,
        "walkers": walkers,
        "meanDisplacement": sum_dist / n,
        "meanSquaredDisplacement": sum_sq / n,
        "expectedMeanSquaredDisplacement": steps as f64 * step_size * step_size,
        "maxDisplacement": max_dist,
        "meanFinalPosition": mean_position[..dims].iter().map(|m| m / n).collect::<Vec<_>>(),
        "firstWalkerFinalPosition": first_final,
        "seed": seed,
    });
    if include_path {
        result["path"] = Value::Array(path);
        result["pathStride"] = json!(stride);
    }
    Ok(result)
}
