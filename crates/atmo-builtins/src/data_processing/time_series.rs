//! `TIME_SERIES_ANALYSIS` of the points `(timeColumn, valueColumn)` of `timeSeries`.
//!
//! Points are ordered by time. When every time is a number it is the x axis; otherwise (dates as
//! ISO-8601 strings, which sort as text) the x axis is the position, 0, 1, 2, ...
//!
//! - `trend`: least-squares line `value = slope · x + intercept`, with r²;
//! - `seasonality`: the lag (2 to n/2, at most [`MAX_LAG`]) with the highest sample
//!   autocorrelation among its local maxima, computed on the detrended series; `detected`
//!   when that autocorrelation is above 0.3;
//! - `anomalies`: points whose z-score against the `windowSize` neighbours centred on them (the
//!   point itself excluded) exceeds 3 in absolute value;
//! - `forecast`: Holt's linear exponential smoothing, α and β chosen on a 0.1 grid by the
//!   smallest one-step-ahead squared error, `horizon` steps ahead (a step is the median time
//!   difference).

use std::cmp::Ordering;

use atmo_core::{HandlerResult, TaskContext, TaskError};
use serde_json::{Value, json};

use super::input::{as_number, field, objects};
use super::{MAX_HORIZON, MAX_SERIES_POINTS, MAX_WINDOW};
use crate::params::{Params, invalid};

/// The analyses.
pub(super) const ANALYSES: [&str; 4] = ["trend", "seasonality", "anomalies", "forecast"];
/// Largest lag tried by the seasonality search.
const MAX_LAG: usize = 1000;
/// |z| above which a point is an anomaly.
const Z_THRESHOLD: f64 = 3.0;
/// Autocorrelation above which seasonality is reported as detected.
const ACF_THRESHOLD: f64 = 0.3;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let records = objects(p, "timeSeries", MAX_SERIES_POINTS)?;
    let time_col = p.str("timeColumn")?;
    let value_col = p.str("valueColumn")?;
    let analyses = analyses(p)?;
    let window = p.opt_u64("windowSize", 2, MAX_WINDOW as u64)?.unwrap_or(30) as usize;
    let horizon = p.opt_u64("horizon", 1, MAX_HORIZON as u64)?.unwrap_or(10) as usize;

    let mut points = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let t =
            field(r, time_col).ok_or_else(|| invalid("timeSeries", format_args!("item {i} has no `{time_col}`")))?;
        let y = field(r, value_col)
            .and_then(as_number)
            .ok_or_else(|| invalid("timeSeries", format_args!("item {i} has no numeric `{value_col}`")))?;
        points.push((t.clone(), y));
    }
    if points.len() < 3 {
        return Err(invalid("timeSeries", "must have at least 3 points"));
    }
    let numeric = points.iter().all(|(t, _)| t.is_number());
    let key = |t: &Value| if numeric { (t.as_f64().unwrap_or(0.0), String::new()) } else { (0.0, as_key(t)) };
    points.sort_by(|a, b| {
        let (ka, kb) = (key(&a.0), key(&b.0));
        ka.0.partial_cmp(&kb.0).unwrap_or(Ordering::Equal).then_with(|| ka.1.cmp(&kb.1))
    });
    let xs: Vec<f64> = if numeric {
        points.iter().map(|(t, _)| t.as_f64().unwrap_or(0.0)).collect()
    } else {
        (0..points.len()).map(|i| i as f64).collect()
    };
    let ys: Vec<f64> = points.iter().map(|&(_, y)| y).collect();

    let mut out = json!({
        "type": "TIME_SERIES_RESULT",
        "points": ys.len(),
        "timeAxis": if numeric { "time" } else { "index" },
        "analysisType": analyses,
    });
    let (slope, intercept, r2) = least_squares(&xs, &ys);
    if analyses.contains(&"trend") {
        let direction = if slope > 0.0 {
            "increasing"
        } else if slope < 0.0 {
            "decreasing"
        } else {
            "flat"
        };
        out["trend"] = json!({"slope": slope, "intercept": intercept, "rSquared": r2, "direction": direction});
    }
    if analyses.contains(&"seasonality") {
        ctx.cancel.check()?;
        let residuals: Vec<f64> = xs.iter().zip(&ys).map(|(x, y)| y - (slope * x + intercept)).collect();
        out["seasonality"] = seasonality(ctx, &residuals)?;
    }
    if analyses.contains(&"anomalies") {
        ctx.cancel.check()?;
        out["anomalies"] = anomalies(&points, &ys, window);
    }
    if analyses.contains(&"forecast") {
        ctx.cancel.check()?;
        out["forecast"] = forecast(&xs, &ys, numeric, horizon);
    }
    Ok(out)
}

fn analyses(p: Params<'_>) -> Result<Vec<&'static str>, TaskError> {
    const NAME: &str = "analysisType";
    let Some(v) = p.0.get(NAME).filter(|v| !v.is_null()) else { return Ok(vec!["trend", "seasonality"]) };
    let items = v.as_array().ok_or_else(|| invalid(NAME, "must be an array"))?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let s = item.as_str().unwrap_or_default();
        let found = ANALYSES.iter().copied().find(|a| *a == s).ok_or_else(|| {
            invalid(NAME, format_args!("item {i} must be one of {}, got {item}", ANALYSES.join(", ")))
        })?;
        if !out.contains(&found) {
            out.push(found);
        }
    }
    Ok(out)
}

fn as_key(t: &Value) -> String {
    match t {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Slope, intercept and r² of the least-squares line.
fn least_squares(xs: &[f64], ys: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let r2 = if sxx > 0.0 && syy > 0.0 { sxy * sxy / (sxx * syy) } else { 1.0 };
    (slope, my - slope * mx, r2)
}

fn seasonality(ctx: &TaskContext, ys: &[f64]) -> Result<Value, TaskError> {
    let n = ys.len();
    let mean = ys.iter().sum::<f64>() / n as f64;
    let var: f64 = ys.iter().map(|y| (y - mean) * (y - mean)).sum();
    let max_lag = (n / 2).min(MAX_LAG);
    if var <= f64::EPSILON * n as f64 || max_lag < 2 {
        return Ok(json!({"detected": false, "period": null, "strength": 0.0}));
    }
    let mut acf = vec![0.0; max_lag + 2];
    for (lag, slot) in acf.iter_mut().enumerate().take(max_lag + 2).skip(1) {
        if lag % 64 == 0 {
            ctx.cancel.check()?;
        }
        if lag < n {
            *slot = (0..n - lag).map(|i| (ys[i] - mean) * (ys[i + lag] - mean)).sum::<f64>() / var;
        }
    }
    let best = (2..=max_lag)
        .filter(|&k| acf[k] >= acf[k - 1] && acf[k] >= acf[k + 1])
        .max_by(|&a, &b| acf[a].partial_cmp(&acf[b]).unwrap_or(Ordering::Equal).then(b.cmp(&a)));
    Ok(match best {
        Some(k) => json!({"detected": acf[k] > ACF_THRESHOLD, "period": k, "strength": acf[k]}),
        None => json!({"detected": false, "period": null, "strength": 0.0}),
    })
}

fn anomalies(points: &[(Value, f64)], ys: &[f64], window: usize) -> Value {
    let n = ys.len();
    let half = window / 2;
    let mut found = Vec::new();
    for i in 0..n {
        let lo = i.saturating_sub(half);
        let hi = (lo + window + 1).min(n);
        let lo = hi.saturating_sub(window + 1);
        let others: Vec<f64> = (lo..hi).filter(|&j| j != i).map(|j| ys[j]).collect();
        let m = others.len() as f64;
        if m < 2.0 {
            continue;
        }
        let mean = others.iter().sum::<f64>() / m;
        let sd = (others.iter().map(|y| (y - mean) * (y - mean)).sum::<f64>() / (m - 1.0)).sqrt();
        let dev = ys[i] - mean;
        let z = if sd > 0.0 { Some(dev / sd) } else { None };
        if z.map_or(dev.abs() > f64::EPSILON * mean.abs().max(1.0), |z| z.abs() > Z_THRESHOLD) {
            found.push(json!({"index": i, "time": points[i].0, "value": ys[i], "zScore": z, "expected": mean}));
        }
    }
    json!({"count": found.len(), "threshold": Z_THRESHOLD, "points": found})
}

fn holt(ys: &[f64], alpha: f64, beta: f64) -> (f64, f64, f64) {
    let (mut level, mut trend, mut sse) = (ys[0], ys[1] - ys[0], 0.0);
    for &y in &ys[1..] {
        let predicted = level + trend;
        sse += (y - predicted) * (y - predicted);
        let next = alpha * y + (1.0 - alpha) * predicted;
        trend = beta * (next - level) + (1.0 - beta) * trend;
        level = next;
    }
    (level, trend, sse)
}

fn forecast(xs: &[f64], ys: &[f64], numeric: bool, horizon: usize) -> Value {
    let grid = (1..=9).map(|k| f64::from(k) / 10.0);
    let mut best = (0.5, 0.5, f64::INFINITY);
    for alpha in grid.clone() {
        for beta in grid.clone() {
            let (_, _, sse) = holt(ys, alpha, beta);
            if sse < best.2 {
                best = (alpha, beta, sse);
            }
        }
    }
    let (alpha, beta, sse) = best;
    let (level, trend, _) = holt(ys, alpha, beta);
    let mut diffs: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
    diffs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    let step = if numeric { diffs[diffs.len() / 2] } else { 1.0 };
    let last = xs[xs.len() - 1];
    let values: Vec<Value> = (1..=horizon)
        .map(|h| json!({"step": h, "x": last + step * h as f64, "value": level + trend * h as f64}))
        .collect();
    json!({
        "method": "holt-linear",
        "alpha": alpha,
        "beta": beta,
        "rmse": (sse / (ys.len() - 1) as f64).sqrt(),
        "horizon": horizon,
        "values": values,
    })
}
