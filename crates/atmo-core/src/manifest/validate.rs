//! Validation of a request's parameters against an action's schema.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionDefinition;

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
}

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

/// Every problem found in one request's parameters.
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
        let _ = params;
        unimplemented!("validation")
    }
}
