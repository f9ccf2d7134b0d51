//! Errors: what a handler reports ([`TaskError`]), what a request records ([`RequestError`]),
//! and what the API returns ([`Error`]).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::id::RequestId;
use crate::manifest::ValidationErrors;
use crate::status::RequestStatus;
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

/// The error type of the engine's API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The parameters do not satisfy the action's schema; every problem is listed.
    #[error("invalid parameters for task `{}`: {errors}", crate::manifest::Echo(task_id))]
    Validation {
        /// The task.
        task_id: String,
        /// Every problem found.
        errors: ValidationErrors,
    },
    /// No registered task has this id.
    #[error("unknown task `{}`; known tasks: {}", crate::manifest::Echo(task_id), known.join(", "))]
    UnknownTask {
        /// What was asked for.
        task_id: String,
        /// What exists.
        known: Vec<String>,
    },
    /// No request has this id.
    #[error("request {0} not found")]
    NotFound(RequestId),
    /// The request's state forbids the operation (cancelling a finished request, ...).
    #[error("request {id} is {status}: {message}")]
    Conflict {
        /// The request.
        id: RequestId,
        /// Its current status.
        status: RequestStatus,
        /// What was refused.
        message: String,
    },
    /// The intake queue is at capacity; try again later.
    #[error("queue full: {queued} requests waiting, capacity {capacity}; retry later")]
    QueueFull {
        /// Requests currently waiting.
        queued: usize,
        /// The configured bound.
        capacity: usize,
    },
    /// The request is larger than allowed.
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Size of the serialized parameters.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A query is malformed (a cursor not produced by a previous page, an empty range).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The engine needs a runtime to run on and found none (outside a tokio runtime, with no
    /// runtime given to the builder).
    #[error("no runtime to run on: call from within a tokio runtime or give the builder one with `runtime(...)`")]
    NoRuntime,
    /// The engine was already started.
    #[error("the engine is already started")]
    AlreadyStarted,
    /// A bank with this id exists already.
    #[error("a bank with id `{bank_id}` already exists")]
    BankExists {
        /// The id asked for.
        bank_id: String,
    },
    /// No bank has this id.
    #[error("no bank with id `{bank_id}`")]
    BankNotFound {
        /// The id asked for.
        bank_id: String,
    },
    /// A bank's specification is inconsistent; every problem is listed.
    #[error("bank `{bank_id}`: {}", problems.join("; "))]
    InvalidBank {
        /// The bank.
        bank_id: String,
        /// What is wrong with it.
        problems: Vec<String>,
    },
    /// A bank's workers could not be started.
    #[error("bank `{bank_id}`: its workers could not start: {source}")]
    BankStart {
        /// The bank.
        bank_id: String,
        /// Why (an I/O error starting a thread or process, a worker refused at its handshake).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// No event matching the condition arrived within the time limit.
    #[error("no matching event arrived within {} ms", .0.as_millis())]
    EventTimeout(Duration),
    /// An invariant of the engine did not hold (a bug: please report it).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The engine is shutting down and accepts no new work.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A wait gave up before the request finished.
    #[error("timed out waiting for request {0}")]
    WaitTimeout(RequestId),
    /// One request of a batch was refused, so the batch was (all or nothing).
    #[error("request {index} of the batch: {source}")]
    Batch {
        /// Its position in the batch.
        index: usize,
        /// Why it was refused.
        #[source]
        source: Box<Error>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Error {
    /// A stable code for the error, used by the HTTP API and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation { .. } => "VALIDATION_FAILED",
            Error::UnknownTask { .. } => "UNKNOWN_TASK",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Conflict { .. } => "CONFLICT",
            Error::QueueFull { .. } => "QUEUE_FULL",
            Error::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Error::InvalidQuery(_) => "INVALID_QUERY",
            Error::NoRuntime => "NO_RUNTIME",
            Error::AlreadyStarted => "ALREADY_STARTED",
            Error::BankExists { .. } => "BANK_EXISTS",
            Error::BankNotFound { .. } => "BANK_NOT_FOUND",
            Error::InvalidBank { .. } => "INVALID_BANK",
            Error::BankStart { .. } => "BANK_START_FAILED",
            Error::EventTimeout(_) => "EVENT_TIMEOUT",
            Error::Internal(_) => "INTERNAL",
            Error::ShuttingDown => "SHUTTING_DOWN",
            Error::WaitTimeout(_) => "WAIT_TIMEOUT",
            Error::Batch { source, .. } => source.code(),
            Error::Store(_) => "STORE_ERROR",
        }
    }
}

/// The result type of the engine's API.
pub type Result<T, E = Error> = std::result::Result<T, E>;
