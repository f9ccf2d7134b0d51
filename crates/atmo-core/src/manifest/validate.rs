//! Validation of a request's parameters against an action's schema.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::{ActionDefinition, ParamType, ParameterSpec};

/// What kind of problem a parameter has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationIssueKind {
    /// The parameters are not a JSON object.
    NotAnObject,
    /// A required parameter is absent.
    Missing,
    /// The value has the wrong JSON type.
    WrongType,
    /// The value is not one of the allowed values.
    NotAllowed,
    /// A number is outside its range.
    OutOfRange,
    /// A string or array is too short or too long.
    BadLength,
    /// An array item has the wrong type.
    WrongItemType,
    /// The action does not declare this parameter.
    Undeclared,
    /// The parameters object has more entries than [`MAX_PARAMETERS`]; nothing else was
    /// checked.
    TooManyParameters,
    /// Stands for the problems beyond the first [`MAX_ISSUES`], which are counted, not listed.
    /// Always the last issue.
    Truncated,
}

/// Most problems listed one by one in [`ValidationErrors`]; the rest are counted in one final
/// [`ValidationIssueKind::Truncated`] issue, so that a request with a hundred thousand bad
/// parameters produces a short error, not a huge one.
pub const MAX_ISSUES: usize = 20;

/// Most entries a parameters object may have. One with more is refused at once (one
/// [`ValidationIssueKind::TooManyParameters`] issue), before its entries are looked at.
pub const MAX_PARAMETERS: usize = 1024;

/// Longest client-supplied text (a name, an id, a key) quoted whole in an error message; see
/// [`Echo`].
pub const MAX_ECHO_CHARS: usize = 64;

/// One problem with one parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationIssue {
    /// The parameter's name (empty for the parameters object itself).
    pub parameter: String,
    /// What kind of problem.
    pub kind: ValidationIssueKind,
    /// What is wrong and what would be right.
    pub message: String,
}

/// The problems found in one request's parameters: the first [`MAX_ISSUES`], then, if there
/// were more, one [`ValidationIssueKind::Truncated`] issue saying how many more.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<ValidationIssue>);

impl ValidationErrors {
    /// The problems.
    pub fn issues(&self) -> &[ValidationIssue] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems were found but not listed (the count of the final
    /// [`ValidationIssueKind::Truncated`] issue; 0 when every problem is listed).
    ///
    /// ```
    /// use atmo_core::manifest::{ActionDefinition, MAX_ISSUES};
    /// use serde_json::{Map, Value};
    /// let action = ActionDefinition::new("NONE"); // strict, takes no parameters
    /// let params: Map<String, Value> = (0..100).map(|i| (format!("p{i:03}"), Value::Null)).collect();
    /// let err = action.validate(Value::Object(params)).unwrap_err();
    /// assert_eq!(err.issues().len(), MAX_ISSUES + 1);
    /// assert_eq!(err.omitted(), 100 - MAX_ISSUES);
    /// assert_eq!(err.total(), 100);
    /// ```
    pub fn omitted(&self) -> usize {
        match self.0.last() {
            Some(i) if i.kind == ValidationIssueKind::Truncated => {
                i.message.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// How many problems were found, listed or not.
    pub fn total(&self) -> usize {
        let omitted = self.omitted();
        if omitted > 0 { self.0.len() - 1 + omitted } else { self.0.len() }
    }

    /// Keeps the first [`MAX_ISSUES`] of `issues` (and `more` problems counted elsewhere): the
    /// rest become one final [`ValidationIssueKind::Truncated`] issue.
    pub fn capped(mut issues: Vec<ValidationIssue>, more: usize) -> ValidationErrors {
        let mut omitted = more;
        if issues.len() > MAX_ISSUES {
            omitted += issues.len() - MAX_ISSUES;
            issues.truncate(MAX_ISSUES);
        }
        if omitted > 0 {
            issues.push(ValidationIssue {
                parameter: String::new(),
                kind: ValidationIssueKind::Truncated,
                message: format!(
                    "and {omitted} more {} (only the first {MAX_ISSUES} are listed)",
                    Plural(omitted, "problem")
                ),
            });
        }
        ValidationErrors(issues)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&issue.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl ActionDefinition {
    /// Checks `params` against the declared parameters, filling defaults for absent optional
    /// ones. `null` parameters are treated as an empty object.
    ///
    /// Rules, per declared parameter (a `null` value counts as absent unless the type is
    /// [`ParamType::Any`], because many clients serialize "not set" as `null`):
    ///
    /// - absent and required: [`ValidationIssueKind::Missing`]; absent and optional: the
    ///   default, if any, is inserted;
    /// - the JSON type must match ([`ParamType::Integer`] accepts numbers without a fractional
    ///   part); on a mismatch the other rules are skipped for that parameter;
    /// - `allowed_values`: a scalar must equal one of them, every item of an array must
    ///   (numbers compare by value, so `1` matches `1.0`);
    /// - `minimum` / `maximum` bound numbers; `min_length` / `max_length` bound strings (in
    ///   characters) and arrays (in items); `items` sets the type of every array item;
    /// - if the action is [`strict`](ActionDefinition::strict), undeclared parameters are
    ///   [`ValidationIssueKind::Undeclared`].
    ///
    /// Issues come in declaration order, then undeclared parameters sorted by name. Per
    /// parameter, at most a few bad array items are reported one by one; the rest are counted
    /// in one final issue, so that a huge bad array cannot produce a huge error.
    ///
    /// ```
    /// use atmo_core::manifest::{ActionDefinition, ParamType, ParameterSpec};
    /// use serde_json::json;
    /// let action = ActionDefinition::new("MONTE_CARLO_PI")
    ///     .param(ParameterSpec::required("iterations", ParamType::Integer).min(1.0))
    ///     .param(ParameterSpec::optional("label", ParamType::String, json!("pi")));
    /// let ok = action.validate(json!({"iterations": 1000})).unwrap();
    /// assert_eq!(ok, json!({"iterations": 1000, "label": "pi"}));
    /// let err = action.validate(json!({"iterations": 0, "extra": true})).unwrap_err();
    /// assert_eq!(err.issues().len(), 2); // out of range, and undeclared
    /// ```
    ///
    /// # Errors
    /// Every problem found, each naming its parameter.
    pub fn validate(&self, params: Value) -> Result<Value, ValidationErrors> {
        let mut map = match params {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => {
                return Err(ValidationErrors(vec![ValidationIssue {
                    parameter: String::new(),
                    kind: ValidationIssueKind::NotAnObject,
                    message: format!(
                        "the parameters of action `{}` must be a JSON object, got {}",
                        self.action_id,
                        Got(&other)
                    ),
                }]));
            }
        };

        if map.len() > MAX_PARAMETERS {
            return Err(ValidationErrors(vec![ValidationIssue {
                parameter: String::new(),
                kind: ValidationIssueKind::TooManyParameters,
                message: format!(
                    "the parameters of action `{}` have {} entries; at most {MAX_PARAMETERS} are accepted",
                    self.action_id,
                    map.len()
                ),
            }]));
        }

        // Allocated only once a problem is found, so the happy path does not pay for it.
        let mut issues = Vec::new();
        for spec in &self.parameters {
            let state = match map.get(spec.name.as_str()) {
                None => Presence::Absent,
                Some(Value::Null) if spec.param_type != ParamType::Any => Presence::Null,
                Some(value) => {
                    check_value(spec, value, Subject::Parameter(&spec.name), &mut issues);
                    Presence::Present
                }
            };
            match state {
                Presence::Present => {}
                Presence::Absent | Presence::Null if spec.required => issues.push(ValidationIssue {
                    parameter: spec.name.clone(),
                    kind: ValidationIssueKind::Missing,
                    message: format!(
                        "parameter `{}` is required ({}) but {}",
                        spec.name,
                        Article(spec.param_type),
                        if state == Presence::Null { "was null" } else { "was not given" }
                    ),
                }),
                Presence::Absent | Presence::Null => {
                    if let Some(default) = &spec.default {
                        map.insert(spec.name.clone(), default.clone());
                    }
                }
            }
        }

        let more = if self.strict { self.undeclared(&map, &mut issues) } else { 0 };

        if issues.is_empty() { Ok(Value::Object(map)) } else { Err(ValidationErrors::capped(issues, more)) }
    }

    fn is_declared(&self, name: &str) -> bool {
        self.parameters.iter().any(|p| p.name == name)
    }

    /// Lists the undeclared parameters (the first by name, as many as [`MAX_ISSUES`] leaves
    /// room for) and returns how many more there are.
    fn undeclared(&self, map: &Map<String, Value>, issues: &mut Vec<ValidationIssue>) -> usize {
        // Parameter lists are short, so a linear scan beats building a set per request.
        if map.keys().all(|k| self.is_declared(k)) {
            return 0;
        }
        let mut extra: Vec<&str> = map.keys().map(String::as_str).filter(|k| !self.is_declared(k)).collect();
        let room = MAX_ISSUES.saturating_sub(issues.len());
        let more = extra.len().saturating_sub(room);
        if more > 0 {
            // Only the listed ones need sorting.
            if room > 0 {
                extra.select_nth_unstable(room - 1);
            }
            extra.truncate(room);
        }
        // serde_json's map is only sorted without its `preserve_order` feature, which another
        // crate in the build may switch on.
        extra.sort_unstable();
        let declared = DeclaredNames(self);
        for name in extra {
            let name = Echo(name);
            let message = if self.parameters.is_empty() {
                format!("parameter `{name}` is not accepted: action `{}` takes no parameters", self.action_id)
            } else {
                format!(
                    "parameter `{name}` is not declared by action `{}`; declared parameters: {declared}",
                    self.action_id
                )
            };
            issues.push(ValidationIssue {
                parameter: name.to_string(),
                kind: ValidationIssueKind::Undeclared,
                message,
            });
        }
        more
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    Absent,
    Null,
    Present,
}

/// Bad array items reported one by one per parameter and rule; the rest are only counted.
const MAX_ITEM_ISSUES: usize = 5;

/// Whose value is checked: a request's parameter, or a parameter's declared default (when a
/// manifest is checked).
#[derive(Clone, Copy)]
pub(super) enum Subject<'a> {
    /// A request's parameter.
    Parameter(&'a str),
    /// The default of a declared parameter.
    Default(&'a str),
}

impl Subject<'_> {
    fn parameter(self) -> String {
        match self {
            Subject::Parameter(n) | Subject::Default(n) => n.to_owned(),
        }
    }
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Parameter(n) => write!(f, "parameter `{n}`"),
            Subject::Default(n) => write!(f, "the default of parameter `{n}`"),
        }
    }
}

/// Checks one present value against its spec (everything but presence), appending issues.
pub(super) fn check_value(
    spec: &ParameterSpec,
    value: &Value,
    subject: Subject<'_>,
    issues: &mut Vec<ValidationIssue>,
) {
    if !type_matches(spec.param_type, value) {
        issues.push(issue(
            subject,
            ValidationIssueKind::WrongType,
            format!("{subject} must be {}, got {}", Article(spec.param_type), Got(value)),
        ));
        // Further rules assume the right type; their complaints would only be noise.
        return;
    }

    if let Some(allowed) = &spec.allowed_values {
        check_allowed(allowed, value, subject, issues);
    }

    if let Value::Number(n) = value {
        check_range(spec, n, subject, issues);
    }

    let length = match value {
        Value::String(s) if string_length_may_violate(spec, s) => Some((s.chars().count(), "character")),
        Value::Array(items) => Some((items.len(), "item")),
        _ => None,
    };
    if let Some((len, unit)) = length {
        check_length(spec, len, unit, subject, issues);
    }

    if let (Some(item_type), Value::Array(items)) = (spec.items, value) {
        check_item_types(item_type, items, subject, issues);
    }
}

fn issue(subject: Subject<'_>, kind: ValidationIssueKind, message: String) -> ValidationIssue {
    ValidationIssue { parameter: subject.parameter(), kind, message }
}

fn type_matches(t: ParamType, v: &Value) -> bool {
    match t {
        ParamType::String => v.is_string(),
        ParamType::Number => v.is_number(),
        ParamType::Integer => is_integer(v),
        ParamType::Boolean => v.is_boolean(),
        ParamType::Object => v.is_object(),
        ParamType::Array => v.is_array(),
        ParamType::Any => true,
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// JSON equality, except that numbers compare by value: a client sending `2.0` for an allowed
/// `2` meant the same thing.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_eq(x, y),
        _ => a == b,
    }
}

fn number_eq(x: &Number, y: &Number) -> bool {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a == b;
    }
    x.as_f64() == y.as_f64()
}

fn check_allowed(allowed: &[Value], value: &Value, subject: Subject<'_>, issues: &mut Vec<ValidationIssue>) {
    let is_allowed = |v: &Value| allowed.iter().any(|a| json_eq(a, v));
    match value {
        Value::Array(items) => {
            let mut bad = items.iter().enumerate().filter(|(_, item)| !is_allowed(item));
            for (i, item) in bad.by_ref().take(MAX_ITEM_ISSUES) {
                issues.push(issue(
                    subject,
                    ValidationIssueKind::NotAllowed,
                    format!("{subject} item {i} must be one of {}, got {}", Listed(allowed), Got(item)),
                ));
            }
            push_more(
                bad.count(),
                ValidationIssueKind::NotAllowed,
                format_args!("not among the allowed values"),
                subject,
                issues,
            );
        }
        _ if !is_allowed(value) => issues.push(issue(
            subject,
            ValidationIssueKind::NotAllowed,
            format!("{subject} must be one of {}, got {}", Listed(allowed), Got(value)),
        )),
        _ => {}
    }
}

fn check_range(spec: &ParameterSpec, n: &Number, subject: Subject<'_>, issues: &mut Vec<ValidationIssue>) {
    let Some(x) = n.as_f64() else { return };
    let below = spec.minimum.is_some_and(|min| x < min);
    let above = spec.maximum.is_some_and(|max| x > max);
    if !(below || above) {
        return;
    }
    let bounds = match (spec.minimum, spec.maximum) {
        (Some(min), Some(max)) => format!("between {min} and {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => return,
    };
    issues.push(issue(subject, ValidationIssueKind::OutOfRange, format!("{subject} must be {bounds}, got {n}")));
}

/// Whether `s` may break its length bounds. Counting characters scans the string, but its
/// byte length brackets the count (`ceil(bytes / 4) <= chars <= bytes`), which settles most
/// strings without a scan.
fn string_length_may_violate(spec: &ParameterSpec, s: &str) -> bool {
    let bytes = s.len();
    spec.min_length.is_some_and(|min| bytes.div_ceil(4) < min) || spec.max_length.is_some_and(|max| bytes > max)
}

fn check_length(spec: &ParameterSpec, len: usize, unit: &str, subject: Subject<'_>, issues: &mut Vec<ValidationIssue>) {
    let short = spec.min_length.is_some_and(|min| len < min);
    let long = spec.max_length.is_some_and(|max| len > max);
    if !(short || long) {
        return;
    }
    let bounds = match (spec.min_length, spec.max_length) {
        (Some(min), Some(max)) => format!("between {min} and {max} {unit}s"),
        (Some(min), None) => format!("at least {min} {}", Plural(min, unit)),
        (None, Some(max)) => format!("at most {max} {}", Plural(max, unit)),
        (None, None) => return,
    };
    issues.push(issue(
        subject,
        ValidationIssueKind::BadLength,
        format!("{subject} must have {bounds}, got {len} {}", Plural(len, unit)),
    ));
}

fn check_item_types(item_type: ParamType, items: &[Value], subject: Subject<'_>, issues: &mut Vec<ValidationIssue>) {
    let mut bad = items.iter().enumerate().filter(|(_, item)| !type_matches(item_type, item));
    for (i, item) in bad.by_ref().take(MAX_ITEM_ISSUES) {
        issues.push(issue(
            subject,
            ValidationIssueKind::WrongItemType,
            format!("{subject} item {i} must be {}, got {}", Article(item_type), Got(item)),
        ));
    }
    push_more(
        bad.count(),
        ValidationIssueKind::WrongItemType,
        format_args!("not {}", Article(item_type)),
        subject,
        issues,
    );
}

/// Counts the bad items beyond those reported one by one, in one issue.
fn push_more(
    more: usize,
    kind: ValidationIssueKind,
    what: fmt::Arguments<'_>,
    subject: Subject<'_>,
    issues: &mut Vec<ValidationIssue>,
) {
    if more > 0 {
        issues.push(issue(subject, kind, format!("{subject}: {more} more {} {what}", Plural(more, "item"))));
    }
}

// ===== message formatting =====

/// A type with its article: "an integer", "a string".
struct Article(ParamType);

impl fmt::Display for Article {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ParamType::Any => f.write_str("any value"),
            ParamType::Integer | ParamType::Object | ParamType::Array => write!(f, "an {}", self.0.as_str()),
            ParamType::String | ParamType::Number | ParamType::Boolean => write!(f, "a {}", self.0.as_str()),
        }
    }
}

/// `unit` or `units` depending on `n`.
struct Plural<'a>(usize, &'a str);

impl fmt::Display for Plural<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)?;
        if self.0 != 1 { f.write_str("s") } else { Ok(()) }
    }
}

/// Longest string quoted in full in a message; longer ones are cut, so that a request carrying
/// megabytes of text does not produce a megabyte error.
const MAX_QUOTED_CHARS: usize = 40;

/// A short description of a received value: its type and, for scalars, the value.
struct Got<'a>(&'a Value);

impl fmt::Display for Got<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "boolean {b}"),
            Value::Number(n) => write!(f, "number {n}"),
            Value::String(s) => match s.char_indices().nth(MAX_QUOTED_CHARS) {
                Some((cut, _)) => write!(f, "string {:?}… ({} characters)", &s[..cut], s.chars().count()),
                None => write!(f, "string {s:?}"),
            },
            Value::Array(a) => write!(f, "an array of {} {}", a.len(), Plural(a.len(), "item")),
            Value::Object(m) => write!(f, "an object with {} {}", m.len(), Plural(m.len(), "key")),
        }
    }
}

/// Client-supplied text as quoted in an error message: control characters escaped (`\u{1b}`),
/// cut after [`MAX_ECHO_CHARS`] characters with the full length noted, so that an error never
/// echoes a megabyte id or terminal escape sequences back.
///
/// ```
/// use atmo_core::manifest::Echo;
/// assert_eq!(Echo("HASH").to_string(), "HASH");
/// assert_eq!(Echo("a\u{1b}]0;x\u{7}").to_string(), "a\\u{1b}]0;x\\u{7}");
/// let long = "x".repeat(100_000);
/// assert_eq!(Echo(&long).to_string(), format!("{}… (100000 characters)", "x".repeat(64)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Echo<'a>(pub &'a str);

impl fmt::Display for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, c) in self.0.chars().enumerate() {
            if shown == MAX_ECHO_CHARS {
                return write!(f, "… ({} characters)", self.0.chars().count());
            }
            if c.is_control() {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Allowed values as JSON, comma-separated.
struct Listed<'a>(&'a [Value]);

impl fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

/// The declared parameter names, back-quoted and comma-separated.
struct DeclaredNames<'a>(&'a ActionDefinition);

impl fmt::Display for DeclaredNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.parameters.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{}`", p.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    fn one(action: &ActionDefinition, params: Value) -> ValidationIssue {
        let err = action.validate(params).unwrap_err();
        assert_eq!(err.issues().len(), 1, "{err:?}");
        err.0.into_iter().next().unwrap()
    }

    fn with(spec: ParameterSpec) -> ActionDefinition {
        ActionDefinition::new("ACT").param(spec)
    }

    #[test]
    fn a_flood_of_undeclared_parameters_gives_a_short_error() {
        let action = with(ParameterSpec::required("n", ParamType::Integer));
        let params: Map<String, Value> = (0..MAX_PARAMETERS).map(|i| (format!("x{i:05}"), json!(1))).collect();
        let err = action.validate(Value::Object(params)).unwrap_err();
        // Missing `n` first, then the first undeclared names in order, then the count.
        assert_eq!(err.issues().len(), MAX_ISSUES + 1);
        assert_eq!(err.0[0].kind, ValidationIssueKind::Missing);
        assert_eq!(err.0[1].parameter, "x00000");
        assert_eq!(err.0[MAX_ISSUES - 1].parameter, format!("x{:05}", MAX_ISSUES - 2));
        let last = err.0.last().unwrap();
        assert_eq!(last.kind, ValidationIssueKind::Truncated);
        assert_eq!(err.total(), MAX_PARAMETERS + 1);
        assert_eq!(err.omitted(), MAX_PARAMETERS + 1 - MAX_ISSUES);
        assert!(err.to_string().len() < 8 * 1024, "{} bytes", err.to_string().len());
    }

    #[test]
    fn more_parameters_than_the_limit_are_refused_before_checking() {
        let action = with(ParameterSpec::required("n", ParamType::Integer)).lenient();
        let params: Map<String, Value> = (0..=MAX_PARAMETERS).map(|i| (format!("x{i}"), json!(1))).collect();
        let issue = one(&action, Value::Object(params));
        assert_eq!(issue.kind, ValidationIssueKind::TooManyParameters);
        assert!(issue.message.contains("1025 entries"), "{}", issue.message);
    }

    #[test]
    fn long_undeclared_names_are_cut_in_messages() {
        let action = with(ParameterSpec::required("n", ParamType::Integer));
        let name = "y".repeat(10_000);
        let err = action.validate(json!({"n": 1, name.clone(): 1})).unwrap_err();
        assert!(err.0[0].message.len() < 300, "{}", err.0[0].message);
        assert!(err.0[0].message.contains("10000 characters"));
    }

    #[test]
    fn params_must_be_an_object_and_null_is_empty() {
        let action = with(ParameterSpec::optional("n", ParamType::Integer, json!(1)));
        assert_eq!(action.validate(Value::Null).unwrap(), json!({"n": 1}));
        let issue = one(&action, json!([1, 2]));
        assert_eq!(issue.kind, ValidationIssueKind::NotAnObject);
        assert_eq!(issue.parameter, "");
        assert_eq!(issue.message, "the parameters of action `ACT` must be a JSON object, got an array of 2 items");
        assert_eq!(one(&action, json!("x")).kind, ValidationIssueKind::NotAnObject);
    }

    #[test]
    fn missing_required() {
        let action = with(ParameterSpec::required("iterations", ParamType::Integer));
        let issue = one(&action, json!({}));
        assert_eq!(issue.kind, ValidationIssueKind::Missing);
        assert_eq!(issue.parameter, "iterations");
        assert_eq!(issue.message, "parameter `iterations` is required (an integer) but was not given");
        let issue = one(&action, json!({"iterations": null}));
        assert_eq!(issue.kind, ValidationIssueKind::Missing);
        assert!(issue.message.ends_with("but was null"));
        assert!(action.validate(json!({"iterations": 3})).is_ok());
    }

    #[test]
    fn defaults_fill_absent_and_null_optional_parameters_only() {
        let action = ActionDefinition::new("ACT")
            .param(ParameterSpec::optional("algorithm", ParamType::String, json!("standard")))
            .param(ParameterSpec::optional_no_default("seed", ParamType::Number));
        assert_eq!(action.validate(json!({})).unwrap(), json!({"algorithm": "standard"}));
        assert_eq!(action.validate(json!({"algorithm": null})).unwrap(), json!({"algorithm": "standard"}));
        assert_eq!(action.validate(json!({"algorithm": "fast"})).unwrap(), json!({"algorithm": "fast"}));
        assert_eq!(action.validate(json!({"seed": null})).unwrap(), json!({"algorithm": "standard", "seed": null}));
    }

    #[test]
    fn null_is_a_value_for_any() {
        let action = with(ParameterSpec::required("x", ParamType::Any));
        assert_eq!(action.validate(json!({"x": null})).unwrap(), json!({"x": null}));
        let issue = one(&action, json!({}));
        assert_eq!(issue.kind, ValidationIssueKind::Missing);
        assert_eq!(issue.message, "parameter `x` is required (any value) but was not given");
    }

    #[test]
    fn types() {
        let cases = [
            (ParamType::String, json!("s"), json!(1), "a string, got number 1"),
            (ParamType::Number, json!(1.5), json!("1.5"), r#"a number, got string "1.5""#),
            (ParamType::Integer, json!(-3), json!(1.5), "an integer, got number 1.5"),
            (ParamType::Boolean, json!(false), json!("false"), r#"a boolean, got string "false""#),
            (ParamType::Object, json!({"a": 1}), json!([]), "an object, got an array of 0 items"),
            (ParamType::Array, json!([1]), json!({"a": 1}), "an array, got an object with 1 key"),
        ];
        for (t, good, bad, expected) in cases {
            let action = with(ParameterSpec::required("p", t));
            assert!(action.validate(json!({"p": good})).is_ok(), "{t:?} should accept {good}");
            let issue = one(&action, json!({"p": bad}));
            assert_eq!(issue.kind, ValidationIssueKind::WrongType);
            assert_eq!(issue.message, format!("parameter `p` must be {expected}"));
        }
        let any = with(ParameterSpec::required("p", ParamType::Any));
        for v in [json!(1), json!("s"), json!([]), json!({}), json!(true)] {
            assert!(any.validate(json!({"p": v})).is_ok());
        }
    }

    #[test]
    fn integers_may_be_written_as_whole_floats() {
        let action = with(ParameterSpec::required("n", ParamType::Integer));
        for ok in [json!(0), json!(-7), json!(u64::MAX), json!(2.0), json!(1e6)] {
            assert!(action.validate(json!({"n": ok})).is_ok(), "{ok}");
        }
        for bad in [json!(0.5), json!(-1.25), json!(true), json!("3")] {
            assert_eq!(one(&action, json!({"n": bad})).kind, ValidationIssueKind::WrongType);
        }
    }

    #[test]
    fn wrong_type_skips_the_other_rules() {
        let action = with(ParameterSpec::required("n", ParamType::Integer).range(1.0, 5.0).allowed([1, 2]));
        assert_eq!(one(&action, json!({"n": "many"})).kind, ValidationIssueKind::WrongType);
    }

    #[test]
    fn allowed_scalars() {
        let action = with(
            ParameterSpec::optional("algorithm", ParamType::String, json!("standard"))
                .allowed(["standard", "strassen", "parallel"]),
        );
        assert!(action.validate(json!({"algorithm": "strassen"})).is_ok());
        let issue = one(&action, json!({"algorithm": "fast"}));
        assert_eq!(issue.kind, ValidationIssueKind::NotAllowed);
        assert_eq!(
            issue.message,
            r#"parameter `algorithm` must be one of "standard", "strassen", "parallel", got string "fast""#
        );
    }

    #[test]
    fn allowed_numbers_compare_by_value() {
        let action = with(ParameterSpec::required("k", ParamType::Number).allowed([1, 2, 4]));
        assert!(action.validate(json!({"k": 2.0})).is_ok());
        assert!(action.validate(json!({"k": 4})).is_ok());
        assert_eq!(one(&action, json!({"k": 3})).kind, ValidationIssueKind::NotAllowed);
    }

    #[test]
    fn allowed_array_items() {
        let action =
            with(ParameterSpec::optional("analysisType", ParamType::Array, json!(["trend", "seasonality"])).allowed([
                "trend",
                "seasonality",
                "anomalies",
                "forecast",
            ]));
        assert!(action.validate(json!({"analysisType": ["forecast", "trend"]})).is_ok());
        assert!(action.validate(json!({"analysisType": []})).is_ok());
        let err = action.validate(json!({"analysisType": ["trend", "magic", "forecast", "tarot"]})).unwrap_err();
        let messages: Vec<_> = err.issues().iter().map(|i| i.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                r#"parameter `analysisType` item 1 must be one of "trend", "seasonality", "anomalies", "forecast", got string "magic""#,
                r#"parameter `analysisType` item 3 must be one of "trend", "seasonality", "anomalies", "forecast", got string "tarot""#,
            ]
        );
        assert!(err.issues().iter().all(|i| i.kind == ValidationIssueKind::NotAllowed));
    }

    #[test]
    fn many_bad_items_are_summarised() {
        let action = with(ParameterSpec::required("xs", ParamType::Array).items(ParamType::Number));
        let items: Vec<Value> = (0..1000).map(|i| json!(i.to_string())).collect();
        let err = action.validate(json!({"xs": items})).unwrap_err();
        assert_eq!(err.issues().len(), MAX_ITEM_ISSUES + 1);
        assert_eq!(err.issues()[MAX_ITEM_ISSUES].message, "parameter `xs`: 995 more items not a number");
    }

    #[test]
    fn ranges() {
        let both = with(ParameterSpec::required("topK", ParamType::Integer).range(1.0, 20.0));
        for ok in [1, 7, 20] {
            assert!(both.validate(json!({"topK": ok})).is_ok());
        }
        let issue = one(&both, json!({"topK": 21}));
        assert_eq!(issue.kind, ValidationIssueKind::OutOfRange);
        assert_eq!(issue.message, "parameter `topK` must be between 1 and 20, got 21");
        assert_eq!(one(&both, json!({"topK": 0})).message, "parameter `topK` must be between 1 and 20, got 0");

        let min = with(ParameterSpec::required("distance", ParamType::Number).min(0.5));
        assert!(min.validate(json!({"distance": 0.5})).is_ok());
        assert_eq!(one(&min, json!({"distance": 0.25})).message, "parameter `distance` must be at least 0.5, got 0.25");

        let max = with(ParameterSpec::required("temperature", ParamType::Number).max(2.0));
        assert!(max.validate(json!({"temperature": -1})).is_ok());
        assert_eq!(
            one(&max, json!({"temperature": 2.5})).message,
            "parameter `temperature` must be at most 2, got 2.5"
        );
    }

    #[test]
    fn string_lengths_count_characters() {
        let action = with(ParameterSpec::required("text", ParamType::String).length(1, 3));
        assert!(action.validate(json!({"text": "ééé"})).is_ok()); // 6 bytes, 3 characters
        assert!(action.validate(json!({"text": "a"})).is_ok());
        let issue = one(&action, json!({"text": ""}));
        assert_eq!(issue.kind, ValidationIssueKind::BadLength);
        assert_eq!(issue.message, "parameter `text` must have between 1 and 3 characters, got 0 characters");
        assert_eq!(
            one(&action, json!({"text": "éééé"})).message,
            "parameter `text` must have between 1 and 3 characters, got 4 characters"
        );

        let min = with(ParameterSpec::required("text", ParamType::String).min_len(5));
        assert!(min.validate(json!({"text": "🦀🦀🦀🦀🦀"})).is_ok());
        assert_eq!(
            one(&min, json!({"text": "🦀🦀"})).message,
            "parameter `text` must have at least 5 characters, got 2 characters"
        );
    }

    #[test]
    fn array_lengths_count_items() {
        let mut spec = ParameterSpec::required("polygon", ParamType::Array).min_len(3);
        let action = with(spec.clone());
        assert!(action.validate(json!({"polygon": [1, 2, 3]})).is_ok());
        assert_eq!(
            one(&action, json!({"polygon": [1]})).message,
            "parameter `polygon` must have at least 3 items, got 1 item"
        );
        spec.min_length = None;
        spec.max_length = Some(1);
        assert_eq!(
            one(&with(spec), json!({"polygon": [1, 2]})).message,
            "parameter `polygon` must have at most 1 item, got 2 items"
        );
    }

    #[test]
    fn item_types_name_the_index() {
        let action = with(ParameterSpec::required("groupBy", ParamType::Array).items(ParamType::String));
        assert!(action.validate(json!({"groupBy": ["a", "b"]})).is_ok());
        let issue = one(&action, json!({"groupBy": ["a", "b", 5]}));
        assert_eq!(issue.kind, ValidationIssueKind::WrongItemType);
        assert_eq!(issue.message, "parameter `groupBy` item 2 must be a string, got number 5");
    }

    #[test]
    fn undeclared_parameters_are_listed_with_the_declared_names() {
        let action = ActionDefinition::new("MONTE_CARLO_PI")
            .param(ParameterSpec::required("iterations", ParamType::Integer))
            .param(ParameterSpec::optional_no_default("seed", ParamType::Number));
        let err = action.validate(json!({"iterations": 10, "zeta": 1, "alpha": 2})).unwrap_err();
        let names: Vec<_> = err.issues().iter().map(|i| i.parameter.as_str()).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        assert!(err.issues().iter().all(|i| i.kind == ValidationIssueKind::Undeclared));
        assert_eq!(
            err.issues()[0].message,
            "parameter `alpha` is not declared by action `MONTE_CARLO_PI`; declared parameters: `iterations`, `seed`"
        );

        let bare = ActionDefinition::new("PING");
        assert_eq!(
            one(&bare, json!({"x": 1})).message,
            "parameter `x` is not accepted: action `PING` takes no parameters"
        );
        assert_eq!(bare.validate(json!({})).unwrap(), json!({}));
    }

    #[test]
    fn lenient_actions_keep_extras() {
        let action = with(ParameterSpec::optional("n", ParamType::Integer, json!(1))).lenient();
        assert_eq!(
            action.validate(json!({"extra": [1], "more": "x"})).unwrap(),
            json!({"extra": [1], "more": "x", "n": 1})
        );
        // Declared parameters are still checked.
        assert_eq!(one(&action, json!({"n": "one", "extra": 1})).kind, ValidationIssueKind::WrongType);
    }

    #[test]
    fn every_problem_is_reported_in_declaration_order_then_undeclared() {
        let action = ActionDefinition::new("RESIZE_IMAGE")
            .param(ParameterSpec::required("imageData", ParamType::String))
            .param(ParameterSpec::required("width", ParamType::Integer).range(1.0, 8192.0))
            .param(ParameterSpec::required("height", ParamType::Integer).range(1.0, 8192.0))
            .param(ParameterSpec::optional("quality", ParamType::Integer, json!(90)).range(1.0, 100.0))
            .param(ParameterSpec::optional("format", ParamType::String, json!("png")).allowed(["png", "jpeg"]));
        let err = action
            .validate(json!({"width": 0, "height": 10.5, "quality": 101, "format": "gif", "dpi": 300, "color": "red"}))
            .unwrap_err();
        let got: Vec<_> = err.issues().iter().map(|i| (i.parameter.as_str(), i.kind)).collect();
        assert_eq!(
            got,
            [
                ("imageData", ValidationIssueKind::Missing),
                ("width", ValidationIssueKind::OutOfRange),
                ("height", ValidationIssueKind::WrongType),
                ("quality", ValidationIssueKind::OutOfRange),
                ("format", ValidationIssueKind::NotAllowed),
                ("color", ValidationIssueKind::Undeclared),
                ("dpi", ValidationIssueKind::Undeclared),
            ]
        );
        let shown = err.to_string();
        assert!(err.issues().iter().all(|i| shown.contains(&i.message)), "{shown}");
    }

    #[test]
    fn one_parameter_may_break_several_rules() {
        let action = with(
            ParameterSpec::required("tags", ParamType::Array).length(1, 2).items(ParamType::String).allowed(["a", "b"]),
        );
        let err = action.validate(json!({"tags": ["a", 1, "c"]})).unwrap_err();
        let kinds: Vec<_> = err.issues().iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            [
                ValidationIssueKind::NotAllowed,
                ValidationIssueKind::NotAllowed,
                ValidationIssueKind::BadLength,
                ValidationIssueKind::WrongItemType,
            ]
        );
    }

    #[test]
    fn long_strings_are_cut_in_messages() {
        let action = with(ParameterSpec::required("n", ParamType::Integer));
        let long = "x".repeat(10_000);
        let message = one(&action, json!({"n": long})).message;
        assert!(message.len() < 200, "{message}");
        assert!(message.ends_with("… (10000 characters)"), "{message}");
    }

    #[test]
    fn issues_serialize_for_clients() {
        let action = with(ParameterSpec::required("n", ParamType::Integer));
        let err = action.validate(json!({})).unwrap_err();
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!([{"parameter": "n", "kind": "missing", "message": "parameter `n` is required (an integer) but was not given"}])
        );
    }
}
