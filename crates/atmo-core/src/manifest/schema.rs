//! Parameter schemas.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The JSON type a parameter must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// A string.
    String,
    /// Any JSON number.
    Number,
    /// A number without a fractional part.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
    /// Anything.
    Any,
}

impl ParamType {
    /// The name used in manifests and error messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Number => "number",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
            ParamType::Object => "object",
            ParamType::Array => "array",
            ParamType::Any => "any",
        }
    }
}

/// One declared parameter of an action.
///
/// ```
/// use atmo_core::manifest::{ParamType, ParameterSpec};
/// use serde_json::json;
/// let p = ParameterSpec::optional("algorithm", ParamType::String, json!("standard"))
///     .allowed(["standard", "strassen", "parallel"]);
/// assert_eq!(p.default, Some(json!("standard")));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterSpec {
    /// The name in the parameters object.
    pub name: String,
    /// Its JSON type.
    #[serde(rename = "type")]
    pub param_type: ParamType,
    /// Whether it must be present.
    #[serde(default)]
    pub required: bool,
    /// The value used when it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// What it means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The only values allowed (for an array: the values its items may take).
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "enum")]
    pub allowed_values: Option<Vec<Value>>,
    /// Smallest number allowed (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "min")]
    pub minimum: Option<f64>,
    /// Largest number allowed (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "max")]
    pub maximum: Option<f64>,
    /// Shortest string (in characters) or array (in items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    /// Longest string (in characters) or array (in items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// For arrays: the type every item must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<ParamType>,
}

impl ParameterSpec {
    /// A required parameter.
    pub fn required(name: impl Into<String>, param_type: ParamType) -> Self {
        ParameterSpec {
            name: name.into(),
            param_type,
            required: true,
            default: None,
            description: None,
            allowed_values: None,
            minimum: None,
            maximum: None,
            min_length: None,
            max_length: None,
            items: None,
        }
    }

    /// An optional parameter with a default.
    pub fn optional(name: impl Into<String>, param_type: ParamType, default: Value) -> Self {
        ParameterSpec { required: false, default: Some(default), ..ParameterSpec::required(name, param_type) }
    }

    /// An optional parameter without a default (absent stays absent).
    pub fn optional_no_default(name: impl Into<String>, param_type: ParamType) -> Self {
        ParameterSpec { required: false, ..ParameterSpec::required(name, param_type) }
    }

    /// Restricts the values.
    pub fn allowed<I, V>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.allowed_values = Some(values.into_iter().map(Into::into).collect());
        self
    }

    /// Restricts a number to `[min, max]`.
    pub fn range(mut self, min: f64, max: f64) -> Self {
        self.minimum = Some(min);
        self.maximum = Some(max);
        self
    }

    /// Sets a lower bound.
    pub fn min(mut self, min: f64) -> Self {
        self.minimum = Some(min);
        self
    }

    /// Sets an upper bound.
    pub fn max(mut self, max: f64) -> Self {
        self.maximum = Some(max);
        self
    }

    /// Restricts a string's or array's length.
    pub fn length(mut self, min: usize, max: usize) -> Self {
        self.min_length = Some(min);
        self.max_length = Some(max);
        self
    }

    /// Sets the minimal length only.
    pub fn min_len(mut self, min: usize) -> Self {
        self.min_length = Some(min);
        self
    }

    /// Requires every array item to have this type.
    pub fn items(mut self, t: ParamType) -> Self {
        self.items = Some(t);
        self
    }

    /// Sets the description.
    pub fn describe(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
}
