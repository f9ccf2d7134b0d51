//! `DATA_AGGREGATION`: filter records, group them by the values of `groupBy` fields (in order
//! of first appearance), and aggregate numeric fields.
//!
//! `aggregations` maps a field to a list of functions (or one function name): `sum`, `mean`,
//! `min`, `max`, `count` (non-null values), and the percentiles `p50`, `p90`, `p95`, `p99`
//! (linear interpolation between closest ranks, as numpy's default). Numeric functions skip
//! values that are not numbers (numeric strings count as numbers); over no values they are null.
//! `filters` are `{field, op, value}` with `op` among `eq`, `ne`, `gt`, `gte`, `lt`, `lte`,
//! `in` (value is an array) and `contains` (substring, or array item); all must hold.

use std::cmp::Ordering;
use std::collections::HashMap;

use atmo_core::{HandlerResult, TaskContext, TaskError};
use serde_json::{Map, Value, json};

use super::input::{array_or_empty, as_number, field, json_eq, objects, strings};
use super::{MAX_FIELDS, MAX_RECORDS};
use crate::params::{Params, invalid};

/// The aggregate functions.
pub(super) const FUNCTIONS: [&str; 9] = ["sum", "mean", "min", "max", "count", "p50", "p90", "p95", "p99"];
/// The filter operators.
pub(super) const FILTER_OPS: [&str; 8] = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains"];

/// Records between two cancellation checks.
const CHUNK: usize = 1 << 12;

struct Filter<'a> {
    field: &'a str,
    op: &'a str,
    value: &'a Value,
}

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let records = objects(p, "dataset", MAX_RECORDS)?;
    let group_by = strings(p, "groupBy", false, MAX_FIELDS)?;
    let aggregations = aggregations(p)?;
    let filters = filters(p)?;

    let mut keys: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(Map<String, Value>, Vec<usize>)> = Vec::new();
    let mut kept = 0usize;
    for (i, record) in records.iter().enumerate() {
        if i.is_multiple_of(CHUNK) {
            ctx.cancel.check()?;
        }
        if !filters.iter().all(|f| matches(record, f)) {
            continue;
        }
        kept += 1;
        let key: Map<String, Value> =
            group_by.iter().map(|g| ((*g).to_owned(), field(record, g).cloned().unwrap_or(Value::Null))).collect();
        let text = Value::Object(key.clone()).to_string();
        let next = groups.len();
        let slot = *keys.entry(text).or_insert(next);
        if slot == next {
            groups.push((key, Vec::new()));
        }
        groups[slot].1.push(i);
    }

    let mut out = Vec::with_capacity(groups.len());
    for (key, members) in &groups {
        ctx.cancel.check()?;
        let mut aggs = Map::new();
        for (name, functions) in &aggregations {
            let present: Vec<&Value> = members.iter().filter_map(|&i| field(records[i], name)).collect();
            let mut xs: Vec<f64> = present.iter().filter_map(|v| as_number(v)).collect();
            xs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
            let mut values = Map::new();
            for f in functions {
                values.insert((*f).to_owned(), aggregate(f, &xs, present.len()));
            }
            aggs.insert(name.clone(), Value::Object(values));
        }
        out.push(json!({"key": key, "count": members.len(), "aggregations": aggs}));
    }
    Ok(json!({
        "type": "AGGREGATION_RESULT",
        "groups": out,
        "groupCount": groups.len(),
        "totalRecords": records.len(),
        "filteredRecords": kept,
    }))
}

fn aggregations(p: Params<'_>) -> Result<Vec<(String, Vec<&'static str>)>, TaskError> {
    const NAME: &str = "aggregations";
    let spec = p.value(NAME)?.as_object().ok_or_else(|| invalid(NAME, "must be an object {field: [functions]}"))?;
    if spec.len() > MAX_FIELDS {
        return Err(invalid(NAME, format_args!("has {} fields; at most {MAX_FIELDS} are allowed", spec.len())));
    }
    let known = |field: &str, f: &Value| {
        let name = f.as_str().unwrap_or_default();
        FUNCTIONS.iter().copied().find(|k| *k == name).ok_or_else(|| {
            invalid(NAME, format_args!("field `{field}`: unknown function {f} (one of {})", FUNCTIONS.join(", ")))
        })
    };
    spec.iter()
        .map(|(field, fs)| {
            let list = match fs {
                Value::Array(items) => items.iter().map(|f| known(field, f)).collect::<Result<Vec<_>, _>>()?,
                single => vec![known(field, single)?],
            };
            Ok((field.clone(), list))
        })
        .collect()
}

fn filters(p: Params<'_>) -> Result<Vec<Filter<'_>>, TaskError> {
    const NAME: &str = "filters";
    array_or_empty(p, NAME, MAX_FIELDS)?
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let bad = |problem: &str| invalid(NAME, format_args!("item {i} {problem}"));
            let field = f.get("field").and_then(Value::as_str).ok_or_else(|| bad("needs a string `field`"))?;
            let op = f.get("op").and_then(Value::as_str).unwrap_or_default();
            let op = FILTER_OPS
                .iter()
                .copied()
                .find(|k| *k == op)
                .ok_or_else(|| bad(&format!("needs an `op` among {}", FILTER_OPS.join(", "))))?;
            let value = f.get("value").ok_or_else(|| bad("needs a `value`"))?;
            if op == "in" && !value.is_array() {
                return Err(bad("(in) needs an array `value`"));
            }
            Ok(Filter { field, op, value })
        })
        .collect()
}

fn matches(record: &Map<String, Value>, f: &Filter<'_>) -> bool {
    let v = field(record, f.field).unwrap_or(&Value::Null);
    let order = || match (as_number(v), as_number(f.value)) {
        (Some(a), Some(b)) if !v.is_string() || !f.value.is_string() => a.partial_cmp(&b),
        _ => match (v, f.value) {
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            _ => None,
        },
    };
    match f.op {
        "eq" => json_eq(v, f.value),
        "ne" => !json_eq(v, f.value),
        "gt" => order() == Some(Ordering::Greater),
        "gte" => matches!(order(), Some(Ordering::Greater | Ordering::Equal)),
        "lt" => order() == Some(Ordering::Less),
        "lte" => matches!(order(), Some(Ordering::Less | Ordering::Equal)),
        "in" => f.value.as_array().is_some_and(|a| a.iter().any(|x| json_eq(v, x))),
        "contains" => match (v, f.value) {
            (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
            (Value::Array(a), x) => a.iter().any(|y| json_eq(x, y)),
            _ => false,
        },
        _ => false,
    }
}

/// `xs` sorted ascending; `present` counts the non-null values.
fn aggregate(function: &str, xs: &[f64], present: usize) -> Value {
    if function == "count" {
        return json!(present);
    }
    if xs.is_empty() {
        return Value::Null;
    }
    let sum: f64 = xs.iter().sum();
    let x = match function {
        "sum" => sum,
        "mean" => sum / xs.len() as f64,
        "min" => xs[0],
        "max" => xs[xs.len() - 1],
        "p50" => percentile(xs, 0.5),
        "p90" => percentile(xs, 0.9),
        "p95" => percentile(xs, 0.95),
        _ => percentile(xs, 0.99),
    };
    json!(x)
}

/// Linear interpolation between closest ranks of sorted, non-empty `xs`.
pub(super) fn percentile(xs: &[f64], q: f64) -> f64 {
    let h = q * (xs.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    xs[lo] + (h - lo as f64) * (xs[hi] - xs[lo])
}
