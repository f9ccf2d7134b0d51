//! Errors: what a handler reports ([`TaskError`]), what a request records ([`RequestError`]),
//! and what the API returns ([`Error`]).

pub use crate::failure::{ErrorCategory, RequestError, Severity, TaskError};
use crate::id::RequestId;
use crate::manifest::ValidationErrors;
use crate::status::RequestStatus;

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
    EventTimeout(std::time::Duration),
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
