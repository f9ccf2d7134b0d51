//! `JSON_TRANSFORM`: a sequence of operations, each addressing nodes with an RFC 9535 JSONPath
//! (`serde_json_path`), applied in order to a working copy of `data`:
//!
//! - `{"op": "select", "path"}`: the document becomes the array of the matched values;
//! - `{"op": "rename", "path", "to"}`: every matched object member is renamed to `to`;
//! - `{"op": "set", "path", "value"}`: every matched node is replaced by `value`;
//! - `{"op": "delete", "path"}`: every matched node is removed (the root cannot be);
//! - `{"op": "map", "path", "function"}`: every matched node goes through `function`, one of
//!   `uppercase`, `lowercase`, `trim` (strings), `toString`, `toNumber`, `round`, `abs`
//!   (numbers; values that do not fit are left as they are).
//!
//! `outputFormat` shapes the final document: `object` returns it as it is, `array` wraps a
//! non-array in a one-item array, `flat` returns an object from JSONPath-like keys
//! (`a.b[0].c`) to leaf values.

use atmo_core::{HandlerResult, TaskContext, TaskError};
use serde_json::{Map, Value, json};
use serde_json_path::JsonPath;

use super::MAX_TRANSFORMATIONS;
use super::input::array;
use crate::params::{Params, invalid};

/// The operations of a transformation.
pub(super) const OPS: [&str; 5] = ["select", "rename", "set", "delete", "map"];
/// The functions of the `map` operation.
pub(super) const FUNCTIONS: [&str; 7] = ["uppercase", "lowercase", "trim", "toString", "toNumber", "round", "abs"];
/// The output formats.
pub(super) const FORMATS: [&str; 3] = ["object", "array", "flat"];

const NAME: &str = "transformations";

enum Op {
    Select,
    Rename(String),
    Set(Value),
    Delete,
    Map(&'static str),
}

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let data = p.value("data")?;
    if !data.is_object() {
        return Err(invalid("data", "must be an object"));
    }
    let items = array(p, NAME, MAX_TRANSFORMATIONS)?;
    if items.is_empty() {
        return Err(invalid(NAME, "must not be empty"));
    }
    let steps = items.iter().enumerate().map(|(i, t)| step(i, t)).collect::<Result<Vec<_>, _>>()?;
    let format = p.choice("outputFormat", "object", &FORMATS)?;

    let mut doc = data.clone();
    let mut applied = Vec::with_capacity(steps.len());
    for (path, op) in &steps {
        ctx.cancel.check()?;
        let pointers: Vec<String> = path.query_located(&doc).locations().map(|l| l.to_json_pointer()).collect();
        let matched = pointers.len();
        match op {
            Op::Select => {
                doc = Value::Array(pointers.iter().filter_map(|ptr| doc.pointer(ptr).cloned()).collect());
            }
            Op::Set(value) => {
                for ptr in &pointers {
                    if ptr.is_empty() {
                        doc = value.clone();
                    } else if let Some(node) = doc.pointer_mut(ptr) {
                        *node = value.clone();
                    }
                }
            }
            Op::Map(function) => {
                for ptr in &pointers {
                    if let Some(node) = doc.pointer_mut(ptr) {
                        *node = map_value(function, node.take());
                    }
                }
            }
            // Reverse document order: children before parents, higher array indices first.
            Op::Delete => {
                for ptr in pointers.iter().rev() {
                    if let Some((parent, key)) = split(ptr) {
                        match doc.pointer_mut(parent) {
                            Some(Value::Object(m)) => {
                                m.remove(&key);
                            }
                            Some(Value::Array(a)) => {
                                if let Ok(i) = key.parse::<usize>()
                                    && i < a.len()
                                {
                                    a.remove(i);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            Op::Rename(to) => {
                for ptr in pointers.iter().rev() {
                    if let Some((parent, key)) = split(ptr)
                        && let Some(Value::Object(m)) = doc.pointer_mut(parent)
                        && let Some(v) = m.remove(&key)
                    {
                        m.insert(to.clone(), v);
                    }
                }
            }
        }
        applied.push(matched);
    }

    let result = match format {
        "array" => match doc {
            Value::Array(_) => doc,
            other => Value::Array(vec![other]),
        },
        "flat" => {
            let mut out = Map::new();
            flatten(&doc, String::new(), &mut out);
            Value::Object(out)
        }
        _ => doc,
    };
    Ok(json!({
        "type": "TRANSFORM_RESULT",
        "result": result,
        "outputFormat": format,
        "matchesPerTransformation": applied,
    }))
}

fn step(i: usize, t: &Value) -> Result<(JsonPath, Op), TaskError> {
    let bad = |problem: &dyn std::fmt::Display| invalid(NAME, format_args!("item {i} {problem}"));
    let t = t.as_object().ok_or_else(|| bad(&"must be an object {path, op, ...}"))?;
    let path = t.get("path").and_then(Value::as_str).ok_or_else(|| bad(&"needs a string `path`"))?;
    let path = JsonPath::parse(path).map_err(|e| bad(&format_args!("has an invalid JSONPath: {e}")))?;
    let op = t.get("op").and_then(Value::as_str).ok_or_else(|| bad(&"needs a string `op`"))?;
    let op = match op {
        "select" => Op::Select,
        "delete" => Op::Delete,
        "rename" => Op::Rename(
            t.get("to").and_then(Value::as_str).ok_or_else(|| bad(&"(rename) needs a string `to`"))?.to_owned(),
        ),
        "set" => Op::Set(t.get("value").cloned().ok_or_else(|| bad(&"(set) needs a `value`"))?),
        "map" => {
            let f = t.get("function").and_then(Value::as_str).unwrap_or_default();
            let f = FUNCTIONS
                .iter()
                .find(|name| **name == f)
                .ok_or_else(|| bad(&format_args!("(map) needs a `function` among {}", FUNCTIONS.join(", "))))?;
            Op::Map(f)
        }
        other => return Err(bad(&format_args!("has an unknown op `{other}` (one of {})", OPS.join(", ")))),
    };
    Ok((path, op))
}

/// Splits a JSON pointer into its parent pointer and its unescaped last token.
fn split(ptr: &str) -> Option<(&str, String)> {
    let (parent, last) = ptr.rsplit_once('/')?;
    Some((parent, last.replace("~1", "/").replace("~0", "~")))
}

fn map_value(function: &str, v: Value) -> Value {
    match (function, v) {
        ("uppercase", Value::String(s)) => json!(s.to_uppercase()),
        ("lowercase", Value::String(s)) => json!(s.to_lowercase()),
        ("trim", Value::String(s)) => json!(s.trim()),
        ("toString", Value::String(s)) => json!(s),
        ("toString", other) => json!(other.to_string()),
        ("toNumber", Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => json!(x),
            _ => Value::String(s),
        },
        ("round", Value::Number(n)) => n.as_f64().map_or(Value::Number(n), |x| json!(x.round())),
        ("abs", Value::Number(n)) => n.as_f64().map_or(Value::Number(n), |x| json!(x.abs())),
        (_, other) => other,
    }
}

fn flatten(v: &Value, prefix: String, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(child, key, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, child) in a.iter().enumerate() {
                flatten(child, format!("{prefix}[{i}]"), out);
            }
        }
        leaf => {
            out.insert(prefix, leaf.clone());
        }
    }
}
