//! `SIR_MODEL`: the Kermack–McKendrick model
//! `S' = −βSI/N`, `I' = βSI/N − γI`, `R' = γI`, integrated by classical Runge–Kutta (RK4).
//!
//! The step is rounded down to a whole fraction of a day so that the per-day series falls on
//! integration points.

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};

use super::input::{number, number_or, positive};
use super::rng::seed;
use super::{MAX_DAYS, MAX_SIR_STEPS};
use crate::params::{Params, invalid};

/// Integration steps between two cancellation checks.
const CHUNK: u64 = 1 << 14;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let n = positive(p, "population", 1e15)?;
    let i0 = number(p, "initialInfected", 0.0, n)?;
    let beta = number(p, "beta", 0.0, 1e6)?;
    let gamma = number(p, "gamma", 0.0, 1e6)?;
    let days = p.u64("days", 1, MAX_DAYS)?;
    let dt = number_or(p, "dt", 0.1, f64::MIN_POSITIVE, 1.0)?;
    let per_day = (1.0 / dt).ceil() as u64;
    if days.saturating_mul(per_day) > MAX_SIR_STEPS {
        return Err(invalid("dt", format_args!("gives more than {MAX_SIR_STEPS} steps over {days} days")));
    }
    let seed = seed(ctx, p)?;
    let h = 1.0 / per_day as f64;

    let deriv = |[s, i, _]: [f64; 3]| {
        let infection = beta * s * i / n;
        let recovery = gamma * i;
        [-infection, infection - recovery, recovery]
    };
    let axpy = |y: [f64; 3], k: [f64; 3], a: f64| [y[0] + a * k[0], y[1] + a * k[1], y[2] + a * k[2]];

    let mut y = [n - i0, i0, 0.0];
    let point = |day: u64, y: [f64; 3]| json!({"day": day, "susceptible": y[0], "infected": y[1], "recovered": y[2]});
    let mut series = vec![point(0, y)];
    let (mut peak, mut peak_day) = (i0, 0.0);
    let mut done = 0u64;
    for day in 1..=days {
        for k in 0..per_day {
            if done.is_multiple_of(CHUNK) {
                ctx.cancel.check()?;
            }
            done += 1;
            let k1 = deriv(y);
            let k2 = deriv(axpy(y, k1, h / 2.0));
            let k3 = deriv(axpy(y, k2, h / 2.0));
            let k4 = deriv(axpy(y, k3, h));
            for c in 0..3 {
                y[c] += h / 6.0 * (k1[c] + 2.0 * k2[c] + 2.0 * k3[c] + k4[c]);
            }
            if y[1] > peak {
                peak = y[1];
                peak_day = (day - 1) as f64 + (k + 1) as f64 * h;
            }
        }
        series.push(point(day, y));
    }
    Ok(json!({
        "type": "SIR_RESULT",
        "peakInfected": peak,
        "peakDay": peak_day,
        "finalSusceptible": y[0],
        "finalInfected": y[1],
        "finalRecovered": y[2],
        "basicReproductionNumber": if gamma > 0.0 { json!(beta / gamma) } else { Value::Null },
        "dt": h,
        "days": days,
        "series": series,
        "seed": seed,
    }))
}
