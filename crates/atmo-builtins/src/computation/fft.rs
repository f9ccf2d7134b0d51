//! `FOURIER_TRANSFORM`: a discrete Fourier transform of any length (rustfft), with a window
//! and an inverse.

use std::f64::consts::PI;

use atmo_core::{HandlerResult, TaskContext, TaskError};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use serde_json::{Value, json};

use super::MAX_SIGNAL_LEN;
use crate::params::{Params, invalid};

/// The `windowFunction` values.
pub(super) const WINDOWS: [&str; 4] = ["none", "hamming", "hanning", "blackman"];

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let mut signal = parse_signal(p.value("signal")?)?;
    let inverse = p.bool_or("inverse", false)?;
    let window = p.choice("windowFunction", "none", &WINDOWS)?;
    ctx.cancel.check()?;
    apply_window(&mut signal, window);
    let n = signal.len();
    let mut planner = FftPlanner::<f64>::new();
    if inverse {
        planner.plan_fft_inverse(n).process(&mut signal);
        // rustfft leaves the inverse unnormalised; scale so that inverse(forward(x)) == x.
        let scale = 1.0 / n as f64;
        signal.iter_mut().for_each(|z| *z *= scale);
    } else {
        planner.plan_fft_forward(n).process(&mut signal);
    }
    ctx.cancel.check()?;
    Ok(json!({
        "type": "FFT_RESULT",
        "length": n,
        "inverse": inverse,
        "windowFunction": window,
        "real": signal.iter().map(|z| z.re).collect::<Vec<_>>(),
        "imaginary": signal.iter().map(|z| z.im).collect::<Vec<_>>(),
        "magnitude": signal.iter().map(|z| z.norm()).collect::<Vec<_>>(),
        "phase": signal.iter().map(|z| z.arg()).collect::<Vec<_>>(),
    }))
}

/// Numbers (real samples) or `[re, im]` pairs.
fn parse_signal(v: &Value) -> Result<Vec<Complex<f64>>, TaskError> {
    let items = v.as_array().ok_or_else(|| invalid("signal", "must be an array of numbers or [re, im] pairs"))?;
    if items.is_empty() {
        return Err(invalid("signal", "must not be empty"));
    }
    if items.len() > MAX_SIGNAL_LEN {
        return Err(invalid(
            "signal",
            format_args!("has {} samples; at most {MAX_SIGNAL_LEN} are allowed", items.len()),
        ));
    }
    let finite = |x: Option<f64>| x.filter(|x| x.is_finite());
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let z = match item {
                Value::Array(pair) if pair.len() == 2 => {
                    finite(pair[0].as_f64()).zip(finite(pair[1].as_f64())).map(|(re, im)| Complex::new(re, im))
                }
                other => finite(other.as_f64()).map(|re| Complex::new(re, 0.0)),
            };
            z.ok_or_else(|| invalid("signal", format_args!("sample {i} must be a finite number or a [re, im] pair")))
        })
        .collect()
}

fn apply_window(signal: &mut [Complex<f64>], window: &str) {
    let n = signal.len();
    if window == "none" || n < 2 {
        return;
    }
    let denom = (n - 1) as f64;
    for (i, z) in signal.iter_mut().enumerate() {
        let t = 2.0 * PI * i as f64 / denom;
        let w = match window {
            "hamming" => 0.54 - 0.46 * t.cos(),
            "hanning" => 0.5 * (1.0 - t.cos()),
            "blackman" => 0.42 - 0.5 * t.cos() + 0.08 * (2.0 * t).cos(),
            _ => 1.0,
        };
        *z *= w;
    }
}
