//! Record parameters (arrays of objects, lists of field names) and dotted field access.

use atmo_core::TaskError;
use serde_json::{Map, Value};

use crate::params::{Params, invalid};

/// A required array of at most `max` JSON objects.
pub(super) fn objects<'a>(p: Params<'a>, name: &str, max: usize) -> Result<Vec<&'a Map<String, Value>>, TaskError> {
    let items = array(p, name, max)?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| v.as_object().ok_or_else(|| invalid(name, format_args!("item {i} must be an object"))))
        .collect()
}

/// A required array of at most `max` items.
pub(super) fn array<'a>(p: Params<'a>, name: &str, max: usize) -> Result<&'a Vec<Value>, TaskError> {
    let items = p.value(name)?.as_array().ok_or_else(|| invalid(name, "must be an array"))?;
    if items.len() > max {
        return Err(invalid(name, format_args!("has {} items; at most {max} are allowed", items.len())));
    }
    Ok(items)
}

/// An optional array (missing means empty) of at most `max` items.
pub(super) fn array_or_empty<'a>(p: Params<'a>, name: &str, max: usize) -> Result<&'a [Value], TaskError> {
    match p.0.get(name).filter(|v| !v.is_null()) {
        None => Ok(&[]),
        Some(_) => array(p, name, max).map(Vec::as_slice),
    }
}

/// A required array of strings, at most `max` long (and non-empty if `non_empty`).
pub(super) fn strings<'a>(p: Params<'a>, name: &str, non_empty: bool, max: usize) -> Result<Vec<&'a str>, TaskError> {
    let items = array(p, name, max)?;
    if non_empty && items.is_empty() {
        return Err(invalid(name, "must not be empty"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| v.as_str().ok_or_else(|| invalid(name, format_args!("item {i} must be a string"))))
        .collect()
}

/// The value at a dotted path (`address.city`) of a record; `None` if absent or null.
pub(super) fn field<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = record.get(path) {
        return Some(v).filter(|v| !v.is_null());
    }
    let mut parts = path.split('.');
    let mut current = record.get(parts.next()?)?;
    for part in parts {
        current = match current {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current).filter(|v| !v.is_null())
}

/// A number, or a string that parses as one.
pub(super) fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|x| x.is_finite())
}

/// JSON equality, except that numbers compare by value (`2` equals `2.0`).
pub(super) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A value as text for string similarity (strings as they are, others as JSON).
pub(super) fn as_text(v: Option<&Value>) -> String {
    match v {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
