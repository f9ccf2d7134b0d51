//! `N_BODY`: Newtonian gravity integrated by velocity Verlet (kick–drift–kick leapfrog), which
//! is symplectic: the energy error stays bounded instead of drifting.

use atmo_core::{HandlerResult, TaskContext, TaskError};
use serde_json::{Value, json};

use super::input::{number_or, positive};
use super::rng::seed;
use super::{MAX_BODIES, MAX_NBODY_STEPS, MAX_NBODY_WORK};
use crate::params::{Params, invalid};

/// Pair interactions between two cancellation checks.
const CHECK_WORK: u64 = 1 << 18;

struct System {
    dims: usize,
    mass: Vec<f64>,
    pos: Vec<[f64; 3]>,
    vel: Vec<[f64; 3]>,
}

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let mut sys = bodies(p)?;
    let dt = positive(p, "dt", 1e12)?;
    let steps = p.u64("steps", 1, MAX_NBODY_STEPS)?;
    let n = sys.mass.len() as u64;
    if (n * n).saturating_mul(steps) > MAX_NBODY_WORK {
        return Err(invalid("steps", format_args!("× bodies² must be at most {MAX_NBODY_WORK}")));
    }
    let g = number_or(p, "G", 1.0, 0.0, 1e12)?;
    let softening = number_or(p, "softening", 0.0, 0.0, 1e12)?;
    let eps2 = softening * softening;
    let seed = seed(ctx, p)?;

    let initial = energy(&sys, g, eps2);
    let mut acc = accelerations(&sys, g, eps2);
    let check_every = (CHECK_WORK / (n * n)).max(1);
    for step in 0..steps {
        if step % check_every == 0 {
            ctx.cancel.check()?;
        }
        let dims = sys.dims;
        for ((v, x), a) in sys.vel.iter_mut().zip(&mut sys.pos).zip(&acc) {
            for d in 0..dims {
                v[d] += 0.5 * dt * a[d];
                x[d] += dt * v[d];
            }
        }
        acc = accelerations(&sys, g, eps2);
        for (v, a) in sys.vel.iter_mut().zip(&acc) {
            for (vd, ad) in v.iter_mut().zip(a).take(dims) {
                *vd += 0.5 * dt * ad;
            }
        }
    }
    let fin = energy(&sys, g, eps2);
    if !initial.is_finite() || !fin.is_finite() || sys.pos.iter().flatten().any(|x| !x.is_finite()) {
        return Err(TaskError::fatal(
            "NUMERICAL_INSTABILITY",
            "the simulation diverged (bodies at the same position without softening, or dt too large)",
        ));
    }
    let drift = if initial != 0.0 { ((fin - initial) / initial).abs() } else { (fin - initial).abs() };
    let d = sys.dims;
    let states: Vec<Value> = (0..sys.mass.len())
        .map(|i| json!({"mass": sys.mass[i], "position": &sys.pos[i][..d], "velocity": &sys.vel[i][..d]}))
        .collect();
    Ok(json!({
        "type": "N_BODY_RESULT",
        "bodies": states,
        "steps": steps,
        "dt": dt,
        "time": steps as f64 * dt,
        "initialEnergy": initial,
        "finalEnergy": fin,
        "energyDrift": drift,
        "seed": seed,
    }))
}

fn bodies(p: Params<'_>) -> Result<System, TaskError> {
    const NAME: &str = "bodies";
    let items = p.value(NAME)?.as_array().ok_or_else(|| invalid(NAME, "must be an array of objects"))?;
    if items.is_empty() || items.len() > MAX_BODIES {
        return Err(invalid(NAME, format_args!("must have between 1 and {MAX_BODIES} bodies, got {}", items.len())));
    }
    let mut sys = System { dims: 0, mass: Vec::new(), pos: Vec::new(), vel: Vec::new() };
    for (i, body) in items.iter().enumerate() {
        let mass = body
            .get("mass")
            .and_then(Value::as_f64)
            .filter(|m| m.is_finite() && *m >= 0.0)
            .ok_or_else(|| invalid(NAME, format_args!("item {i}: `mass` must be a non-negative number")))?;
        let vector = |key: &str| -> Result<[f64; 3], TaskError> {
            let v = body
                .get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| invalid(NAME, format_args!("item {i}: `{key}` must be an array of 2 or 3 numbers")))?;
            let mut out = [0.0; 3];
            if !(2..=3).contains(&v.len()) {
                return Err(invalid(NAME, format_args!("item {i}: `{key}` must have 2 or 3 components")));
            }
            for (o, x) in out.iter_mut().zip(v) {
                *o = x
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| invalid(NAME, format_args!("item {i}: `{key}` must hold finite numbers")))?;
            }
            Ok(out)
        };
        let (pos, vel) = (vector("position")?, vector("velocity")?);
        let dims = body.get("position").and_then(Value::as_array).map_or(0, Vec::len);
        let vdims = body.get("velocity").and_then(Value::as_array).map_or(0, Vec::len);
        if vdims != dims || (i > 0 && dims != sys.dims) {
            return Err(invalid(NAME, format_args!("item {i}: every position and velocity must have the same length")));
        }
        sys.dims = dims;
        sys.mass.push(mass);
        sys.pos.push(pos);
        sys.vel.push(vel);
    }
    Ok(sys)
}

fn accelerations(sys: &System, g: f64, eps2: f64) -> Vec<[f64; 3]> {
    let n = sys.mass.len();
    let mut acc = vec![[0.0; 3]; n];
    for i in 0..n {
        for j in (i + 1)..n {
            let mut r = [0.0; 3];
            for (d, rd) in r.iter_mut().enumerate().take(sys.dims) {
                *rd = sys.pos[j][d] - sys.pos[i][d];
            }
            let r2 = r.iter().map(|x| x * x).sum::<f64>() + eps2;
            let inv3 = g / (r2 * r2.sqrt());
            for (d, rd) in r.iter().enumerate().take(sys.dims) {
                acc[i][d] += sys.mass[j] * inv3 * rd;
                acc[j][d] -= sys.mass[i] * inv3 * rd;
            }
        }
    }
    acc
}

/// Kinetic plus (softened) potential energy.
fn energy(sys: &System, g: f64, eps2: f64) -> f64 {
    let n = sys.mass.len();
    let mut e = 0.0;
    for i in 0..n {
        e += 0.5 * sys.mass[i] * sys.vel[i].iter().map(|v| v * v).sum::<f64>();
        for j in (i + 1)..n {
            let r2: f64 = (0..sys.dims).map(|d| (sys.pos[j][d] - sys.pos[i][d]).powi(2)).sum::<f64>() + eps2;
            e -= g * sys.mass[i] * sys.mass[j] / r2.sqrt();
        }
    }
    e
}
