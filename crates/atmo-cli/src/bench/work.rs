//! The trivial task every scenario runs, identically in the engine and the baseline:
//! parameters `{"a": i, "b": 1}`, result `a + b`; and the size of the memory scenario's
//! parameters and result.

use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use crate::alloc::Counting;

/// The parameters of request number `i`.
pub(crate) fn params(i: usize) -> Value {
    json!({ "a": i, "b": 1 })
}

/// The work: `a + b`, as a JSON number (which allocates nothing).
pub(crate) fn add(params: &Value) -> Value {
    Value::from(params["a"].as_i64().unwrap_or(0) + params["b"].as_i64().unwrap_or(0))
}

/// Checks the result of request number `i`, so a benchmark never reports the speed of wrong
/// answers.
///
/// # Errors
/// When the result is missing or wrong.
pub(crate) fn check(i: usize, result: Option<&Value>) -> anyhow::Result<()> {
    let got = result.with_context(|| format!("request {i} finished without a result"))?;
    let want = i64::try_from(i).context("request number overflows i64")? + 1;
    if got.as_i64() != Some(want) {
        bail!("request {i} returned {got}, expected {want}");
    }
    Ok(())
}

/// Heap bytes of the memory scenario's parameters (`{}`) and result (`null`) as the engine
/// holds them, each in its own `Arc<Value>`: measured with the counting allocator over
/// `samples` of each, so the figure follows serde_json's and the standard library's layouts.
pub(crate) fn noop_payload_bytes(alloc: &Counting, samples: usize) -> (f64, f64) {
    let samples = samples.max(1);
    let measure = |make: &dyn Fn() -> Value| {
        // Allocated before counting starts, so only the values are counted.
        let mut held: Vec<Arc<Value>> = Vec::with_capacity(samples);
        alloc.start();
        for _ in 0..samples {
            held.push(Arc::new(make()));
        }
        let net = alloc.stop();
        drop(held);
        net as f64 / samples as f64
    };
    (measure(&|| Value::Object(Map::new())), measure(&|| Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_checks_out() -> anyhow::Result<()> {
        check(41, Some(&add(&params(41))))?;
        assert!(check(41, Some(&json!(41))).is_err());
        assert!(check(41, None).is_err());
        Ok(())
    }
}
