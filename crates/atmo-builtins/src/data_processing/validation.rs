//! `DATA_VALIDATION`: every record of `data` against a JSON Schema (drafts 4 to 2020-12, by
//! the `jsonschema` crate, without remote references) and against business rules.
//!
//! A business rule is `{field, rule, value?, message?}` with `rule` among `required` (present
//! and not null), `notEmpty` (not null, `""`, `[]` or `{}`), `min` / `max` (a number at least /
//! at most `value`), `minLength` / `maxLength` (string or array length), `oneOf` (`value` is the
//! array of allowed values) and `unique` (no two records share the value). Rules other than
//! `required` and `notEmpty` pass when the field is absent.
//!
//! With `strictMode` the request fails (a validation error listing the first problems) when a
//! record is invalid; otherwise every problem is reported in the result.

use std::collections::HashMap;

use atmo_core::{HandlerResult, TaskContext, TaskError};
use serde_json::{Map, Value, json};

use super::input::{array, array_or_empty, as_number, field, json_eq};
use super::{MAX_FIELDS, MAX_RECORDS, MAX_REPORTED_ERRORS};
use crate::params::{Params, invalid};

/// The business rules.
pub(super) const RULES: [&str; 8] = ["required", "notEmpty", "min", "max", "minLength", "maxLength", "oneOf", "unique"];

/// Records between two cancellation checks.
const CHUNK: usize = 1 << 10;

struct Rule<'a> {
    field: &'a str,
    rule: &'static str,
    value: Option<&'a Value>,
    message: Option<&'a str>,
}

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let data = array(p, "data", MAX_RECORDS)?;
    let schema = p.value("schema")?;
    if !schema.is_object() {
        return Err(invalid("schema", "must be an object (a JSON Schema)"));
    }
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| invalid("schema", format_args!("is not a valid JSON Schema: {e}")))?;
    let rules = rules(p)?;
    let strict = p.bool_or("strictMode", false)?;

    let mut errors: Vec<Value> = Vec::new();
    let mut error_count = 0usize;
    let mut invalid_records = 0usize;
    let mut seen: Vec<HashMap<String, usize>> = rules.iter().map(|_| HashMap::new()).collect();
    for (i, record) in data.iter().enumerate() {
        if i.is_multiple_of(CHUNK) {
            ctx.cancel.check()?;
        }
        let mut problems: Vec<Value> = validator
            .iter_errors(record)
            .map(|e| {
                json!({"record": i, "field": e.instance_path().to_string(), "rule": "schema", "message": e.to_string()})
            })
            .collect();
        let empty = Map::new();
        let obj = record.as_object().unwrap_or(&empty);
        for (r, rule) in rules.iter().enumerate() {
            let v = field(obj, rule.field);
            let failure = match (rule.rule, v) {
                ("required", None) => Some("is required".to_owned()),
                ("notEmpty", v) if v.is_none_or(is_empty) => Some("must not be empty".to_owned()),
                (_, None) | ("required" | "notEmpty", _) => None,
                ("unique", Some(v)) => {
                    let first = *seen[r].entry(v.to_string()).or_insert(i);
                    (first != i).then(|| format!("duplicates record {first}"))
                }
                (name, Some(v)) => check(name, v, rule.value),
            };
            if let Some(text) = failure {
                let message = rule.message.map_or_else(|| format!("`{}` {text}", rule.field), str::to_owned);
                problems.push(json!({"record": i, "field": rule.field, "rule": rule.rule, "message": message}));
            }
        }
        if !problems.is_empty() {
            invalid_records += 1;
            error_count += problems.len();
            let room = MAX_REPORTED_ERRORS.saturating_sub(errors.len());
            errors.extend(problems.into_iter().take(room));
        }
    }

    if strict && invalid_records > 0 {
        let shown: Vec<&Value> = errors.iter().take(10).collect();
        let first = errors.first().and_then(|e| e["message"].as_str()).unwrap_or_default();
        return Err(TaskError::invalid(format!(
            "parameter `data` has {invalid_records} invalid records (strict mode); first: {first}"
        ))
        .with_details(json!({"parameter": "data", "invalidRecords": invalid_records, "errors": shown})));
    }
    Ok(json!({
        "type": "VALIDATION_RESULT",
        "valid": invalid_records == 0,
        "totalRecords": data.len(),
        "validRecords": data.len() - invalid_records,
        "invalidRecords": invalid_records,
        "errorCount": error_count,
        "errors": errors,
        "truncated": error_count > errors.len(),
    }))
}

fn rules(p: Params<'_>) -> Result<Vec<Rule<'_>>, TaskError> {
    const NAME: &str = "businessRules";
    array_or_empty(p, NAME, MAX_FIELDS)?
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let bad = |problem: &str| invalid(NAME, format_args!("item {i} {problem}"));
            let field = r.get("field").and_then(Value::as_str).ok_or_else(|| bad("needs a string `field`"))?;
            let name = r.get("rule").and_then(Value::as_str).unwrap_or_default();
            let rule = RULES
                .iter()
                .copied()
                .find(|k| *k == name)
                .ok_or_else(|| bad(&format!("needs a `rule` among {}", RULES.join(", "))))?;
            let value = r.get("value").filter(|v| !v.is_null());
            let ok = match rule {
                "min" | "max" => value.and_then(Value::as_f64).is_some(),
                "minLength" | "maxLength" => value.and_then(Value::as_u64).is_some(),
                "oneOf" => value.is_some_and(Value::is_array),
                _ => true,
            };
            if !ok {
                return Err(bad(&format!("({rule}) needs a suitable `value`")));
            }
            let message = r.get("message").and_then(Value::as_str);
            Ok(Rule { field, rule, value, message })
        })
        .collect()
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

fn check(rule: &str, v: &Value, bound: Option<&Value>) -> Option<String> {
    let bound = bound?;
    let len = || match v {
        Value::String(s) => Some(s.chars().count() as u64),
        Value::Array(a) => Some(a.len() as u64),
        _ => None,
    };
    match rule {
        "min" | "max" => {
            let b = bound.as_f64()?;
            match as_number(v) {
                None => Some("must be a number".to_owned()),
                Some(x) if rule == "min" && x < b => Some(format!("must be at least {b}, got {x}")),
                Some(x) if rule == "max" && x > b => Some(format!("must be at most {b}, got {x}")),
                Some(_) => None,
            }
        }
        "minLength" | "maxLength" => {
            let b = bound.as_u64()?;
            match len() {
                None => Some("must be a string or an array".to_owned()),
                Some(n) if rule == "minLength" && n < b => Some(format!("must have at least {b} items or characters")),
                Some(n) if rule == "maxLength" && n > b => Some(format!("must have at most {b} items or characters")),
                Some(_) => None,
            }
        }
        "oneOf" => {
            let allowed = bound.as_array()?;
            (!allowed.iter().any(|a| json_eq(a, v))).then(|| format!("must be one of {bound}, got {v}"))
        }
        _ => None,
    }
}
