//! `NUMERICAL_INTEGRATION`: composite Simpson, trapezoidal and 5-point Gauss–Legendre rules.
//!
//! The integrand is parsed by `exmex`, a mathematical-expression parser: it knows arithmetic,
//! `^`, the usual functions (`sin`, `exp`, `ln`, `sqrt`, ...) and constants (`PI`, `E`), and
//! nothing else, so no code is ever evaluated.

use atmo_core::{HandlerResult, TaskContext, TaskError};
use exmex::{Express, FlatEx};
use serde_json::{Value, json};

use super::{MAX_EXPRESSION_LEN, MAX_SUBDIVISIONS};
use crate::params::{Params, invalid};

/// The `method` values.
pub(super) const METHODS: [&str; 3] = ["simpson", "trapezoidal", "gauss"];

/// Evaluations between two cancellation checks.
const CHECK_EVERY: u64 = 4096;

/// Nodes and weights of 5-point Gauss–Legendre on `[-1, 1]`.
const GAUSS_5: [(f64, f64); 5] = [
    (0.0, 0.568_888_888_888_888_9),
    (-0.538_469_310_105_683_1, 0.478_628_670_499_366_5),
    (0.538_469_310_105_683_1, 0.478_628_670_499_366_5),
    (-0.906_179_845_938_664, 0.236_926_885_056_189_08),
    (0.906_179_845_938_664, 0.236_926_885_056_189_08),
];

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let text = p.str("function")?;
    let lower = p.f64("lowerBound")?;
    let upper = p.f64("upperBound")?;
    let method = p.choice("method", "simpson", &METHODS)?;
    let mut n = p.opt_u64("subdivisions", 1, MAX_SUBDIVISIONS)?.unwrap_or(1000);
    let f = Integrand::parse(text)?;
    let mut eval = Evaluator { f: &f, ctx, count: 0 };
    let h = |n: u64| (upper - lower) / n as f64;
    let result = match method {
        "trapezoidal" => {
            let h = h(n);
            let mut sum = 0.5 * (eval.at(lower)? + eval.at(upper)?);
            for i in 1..n {
                sum += eval.at(lower + i as f64 * h)?;
            }
            sum * h
        }
        "gauss" => {
            let h = h(n);
            let mut sum = 0.0;
            for i in 0..n {
                let mid = lower + (i as f64 + 0.5) * h;
                for (node, weight) in GAUSS_5 {
                    sum += weight * eval.at(mid + 0.5 * h * node)?;
                }
            }
            sum * 0.5 * h
        }
        _ => {
            // Simpson's rule needs an even number of panels.
            n += n % 2;
            let h = h(n);
            let mut sum = eval.at(lower)? + eval.at(upper)?;
            for i in 1..n {
                sum += if i % 2 == 1 { 4.0 } else { 2.0 } * eval.at(lower + i as f64 * h)?;
            }
            sum * h / 3.0
        }
    };
    Ok(json!({
        "type": "INTEGRATION_RESULT",
        "result": result,
        "method": method,
        "function": text,
        "lowerBound": lower,
        "upperBound": upper,
        "subdivisions": n,
        "evaluations": eval.count,
    }))
}

/// A parsed expression in (at most) the variable `x`.
struct Integrand {
    expr: FlatEx<f64>,
    uses_x: bool,
}

impl Integrand {
    fn parse(text: &str) -> Result<Self, TaskError> {
        if text.chars().count() > MAX_EXPRESSION_LEN {
            return Err(invalid("function", format_args!("is longer than {MAX_EXPRESSION_LEN} characters")));
        }
        let expr = exmex::parse::<f64>(text)
            .map_err(|e| invalid("function", format_args!("is not a valid expression in x: {e}")))?;
        let vars = expr.var_names();
        if let Some(other) = vars.iter().find(|v| v.as_str() != "x") {
            return Err(invalid("function", format_args!("may only use the variable `x`, found `{other}`")));
        }
        let uses_x = !vars.is_empty();
        Ok(Integrand { expr, uses_x })
    }
}

struct Evaluator<'a> {
    f: &'a Integrand,
    ctx: &'a TaskContext,
    count: u64,
}

impl Evaluator<'_> {
    fn at(&mut self, x: f64) -> Result<f64, TaskError> {
        self.count += 1;
        if self.count.is_multiple_of(CHECK_EVERY) {
            self.ctx.cancel.check()?;
        }
        let vars = [x];
        let args: &[f64] = if self.f.uses_x { &vars } else { &[] };
        let y = self.f.expr.eval(args).map_err(|e| invalid("function", format_args!("cannot be evaluated: {e}")))?;
        if y.is_finite() {
            Ok(y)
        } else {
            Err(invalid("function", format_args!("is not finite at x = {x} (value {y})")))
        }
    }
}
