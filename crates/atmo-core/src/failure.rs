//! Failures: what a handler reports ([`TaskError`]) and what a request records
//! ([`RequestError`]), with their [`ErrorCategory`] and [`Severity`].
//!
//! Apart from the API's [`Error`](crate::Error), which names the other modules' types: every
//! module can use these without depending on the whole API.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::Timestamp;

/// What kind of failure an error is; the retry policy decides by category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// The parameters were wrong: retrying cannot help.
    Validation,
    /// The handler ran and reported a failure.
    Processing,
    /// The attempt ran out of time.
    Timeout,
    /// The worker failed: a panic, a crashed process, a lost node.
    System,
    /// A dependency over the network failed.
    Network,
    /// The request was cancelled.
    Cancelled,
}

impl ErrorCategory {
    /// The name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Validation => "validation",
            ErrorCategory::Processing => "processing",
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::System => "system",
            ErrorCategory::Network => "network",
            ErrorCategory::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad an error is, for dashboards and alerting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Expected now and then (a retryable hiccup).
    Low,
    /// A request failed.
    #[default]
    Medium,
    /// A worker or the system failed.
    High,
    /// Data may be at risk.
    Critical,
}

/// The error a handler returns. It says what should happen next: the category and the
/// `retryable` override feed the retry policy, `retry_after` overrides the backoff.
///
/// ```
/// use atmo_core::{ErrorCategory, TaskError};
/// use std::time::Duration;
/// let e = TaskError::new("UPSTREAM_DOWN", "the rates service answered 503")
///     .with_category(ErrorCategory::Network)
///     .retry_after(Duration::from_secs(5));
/// assert_eq!(e.retryable, Some(true));
/// assert!(TaskError::fatal("BAD_INPUT", "no").retryable == Some(false));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskError {
    /// A stable, machine-readable code (`"DIVIDE_BY_ZERO"`).
    pub code: String,
    /// A human-readable message.
    pub message: String,
    /// The category (default `processing`).
    #[serde(default = "default_category")]
    pub category: ErrorCategory,
    /// `Some(true)`/`Some(false)` overrides the policy's retryable categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Retry no sooner than this, instead of the policy's backoff.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::duration_ms::option")]
    pub retry_after: Option<Duration>,
    /// Anything else worth recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

fn default_category() -> ErrorCategory {
    ErrorCategory::Processing
}

impl TaskError {
    /// A processing error; retried only if the policy retries `processing`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        TaskError {
            code: code.into(),
            message: message.into(),
            category: ErrorCategory::Processing,
            retryable: None,
            retry_after: None,
            details: None,
        }
    }

    /// An error that must not be retried, whatever the policy says.
    pub fn fatal(code: impl Into<String>, message: impl Into<String>) -> Self {
        TaskError { retryable: Some(false), ..TaskError::new(code, message) }
    }

    /// An error that should be retried (if attempts remain), whatever its category.
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        TaskError { retryable: Some(true), ..TaskError::new(code, message) }
    }

    /// A validation error about the parameters (never retried).
    pub fn invalid(message: impl Into<String>) -> Self {
        TaskError { category: ErrorCategory::Validation, ..TaskError::fatal("INVALID_PARAMETERS", message) }
    }

    /// A system error (a worker failure); retryable under the default policy.
    pub fn system(code: impl Into<String>, message: impl Into<String>) -> Self {
        TaskError { category: ErrorCategory::System, ..TaskError::new(code, message) }
    }

    /// Sets the category.
    pub fn with_category(mut self, category: ErrorCategory) -> Self {
        self.category = category;
        self
    }

    /// Attaches details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Asks for a retry no sooner than `after` (and marks the error retryable).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self.retryable = Some(true);
        self
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.category, self.message)
    }
}

impl std::error::Error for TaskError {}

impl From<serde_json::Error> for TaskError {
    fn from(e: serde_json::Error) -> Self {
        TaskError::invalid(e.to_string())
    }
}

/// An error as recorded on a request: one per failed attempt, in its history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestError {
    /// Stable code.
    pub code: String,
    /// Message.
    pub message: String,
    /// Category.
    pub category: ErrorCategory,
    /// Severity.
    #[serde(default)]
    pub severity: Severity,
    /// Whether the engine considered it retryable.
    pub retryable: bool,
    /// The attempt it ended (1-based).
    pub attempt: u32,
    /// When it happened.
    pub at: Timestamp,
    /// Details from the handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl RequestError {
    /// Records a handler's error for `attempt`, with the retry decision taken.
    pub fn from_task_error(e: TaskError, retryable: bool, attempt: u32, at: Timestamp) -> Self {
        let severity = match e.category {
            ErrorCategory::System => Severity::High,
            _ if retryable => Severity::Low,
            _ => Severity::Medium,
        };
        RequestError {
            code: e.code,
            message: e.message,
            category: e.category,
            severity,
            retryable,
            attempt,
            at,
            details: e.details,
        }
    }
}
