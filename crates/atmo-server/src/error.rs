//! Errors: [`ApiError`], the JSON error every route answers with, and [`ServerError`], the
//! error of the library's own API.
//!
//! The HTTP status of every engine error is decided here, in [`ApiError::from_engine`], and
//! nowhere else.

use std::net::SocketAddr;

use atmo_workers::Error;
use atmo_workers::manifest::ValidationErrors;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

/// An error answered over HTTP: `{code, message, details}` with a status.
///
/// Codes are stable: the engine's [`Error::code`] for engine errors, and for the server's own
/// errors `MALFORMED_JSON`, `JSON_TOO_DEEP`, `INVALID_PARAMETER`, `INVALID_REQUEST_ID`,
/// `UNAUTHORIZED`, `ROUTE_NOT_FOUND`, `METHOD_NOT_ALLOWED`, `PAYLOAD_TOO_LARGE`,
/// `UNSUPPORTED_MEDIA_TYPE` (415: a body that is not JSON), `HOST_NOT_ALLOWED` and
/// `ORIGIN_NOT_ALLOWED` (403: a `Host` that does not name the service, a write from another
/// site's page), `SHUTTING_DOWN` (503 for writes during the drain), `STORE_FAILED`,
/// `CRON_NOT_FOUND`, `INVALID_SCHEDULE`, `INTERNAL`.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// What went wrong and what would be right.
    pub message: String,
    /// Structured details (every validation problem, the known tasks, ...).
    pub details: Value,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

/// The JSON body of an error.
#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    details: &'a Value,
}

impl ApiError {
    /// An error with a status, code and message, no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: Value::Null, retry_after: None }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Adds a `Retry-After` header.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 400 with code `INVALID_PARAMETER` (a bad query or path parameter).
    pub fn bad_param(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER", message)
    }

    /// 500 with code `INTERNAL`.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message)
    }

    /// Maps an engine error to its status, code and details. `retry_after` is the
    /// `Retry-After` (seconds) for errors that pass with time (queue full, shutting down);
    /// `store_failed` is whether the store stopped taking writes (`Store::health`), which turns
    /// a store error into 503 `STORE_FAILED` instead of a 500 of this one request.
    ///
    /// | engine error | status |
    /// |---|---|
    /// | `Validation` | 400, `details.errors` lists the problems (`field`, `parameter`, `kind`, `message`) |
    /// | `InvalidQuery` | 400 |
    /// | `NotFound` | 404 |
    /// | `Conflict` | 409, `details.status` is the request's status |
    /// | `PayloadTooLarge` | 413 |
    /// | `UnknownTask` | 422, `details.knownTasks` lists the registered tasks |
    /// | `QueueFull` | 429 with `Retry-After` |
    /// | `ShuttingDown` | 503 with `Retry-After` |
    /// | `Store` while the store stopped taking writes | 503 `STORE_FAILED` (no `Retry-After`: it does not pass by itself) |
    /// | `WaitTimeout` | 504 (routes that wait answer 202 instead) |
    /// | `Batch` | the status of the refused request's error; `details.index` names it |
    /// | `Store`, `Config`, others | 500 |
    pub fn from_engine(e: &Error, retry_after: u64, store_failed: bool) -> Self {
        let mut message = e.to_string();
        let code = e.code();
        let (status, details, retry) = match e {
            Error::Validation { task_id, errors } => {
                // The problems are in `details.errors`; the message only counts them, so that a
                // client printing both does not show every problem twice.
                let n = errors.total();
                message = format!(
                    "invalid parameters for task `{}`: {n} problem{}",
                    echo(task_id),
                    if n == 1 { "" } else { "s" }
                );
                (StatusCode::BAD_REQUEST, json!({"taskId": echo(task_id), "errors": parameter_issues(errors)}), None)
            }
            Error::InvalidQuery(_) => (StatusCode::BAD_REQUEST, Value::Null, None),
            Error::NotFound(id) => (StatusCode::NOT_FOUND, json!({"requestId": id}), None),
            Error::Conflict { id, status, .. } => {
                (StatusCode::CONFLICT, json!({"requestId": id, "status": status}), None)
            }
            Error::PayloadTooLarge { size, limit } => {
                (StatusCode::PAYLOAD_TOO_LARGE, json!({"size": size, "limit": limit}), None)
            }
            Error::UnknownTask { task_id, known } => {
                (StatusCode::UNPROCESSABLE_ENTITY, json!({"taskId": echo(task_id), "knownTasks": known}), None)
            }
            Error::QueueFull { queued, capacity } => {
                (StatusCode::TOO_MANY_REQUESTS, json!({"queued": queued, "capacity": capacity}), Some(retry_after))
            }
            Error::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, Value::Null, Some(retry_after)),
            Error::Store(_) if store_failed => {
                return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "STORE_FAILED", error_chain(e));
            }
            Error::WaitTimeout(id) => (StatusCode::GATEWAY_TIMEOUT, json!({"requestId": id}), None),
            Error::Batch { index, source } => {
                let inner = ApiError::from_engine(source, retry_after, store_failed);
                if inner.code == "STORE_FAILED" {
                    return inner;
                }
                message = format!("request {index} of the batch: {}", inner.message);
                let mut details = json!({"index": index});
                if !inner.details.is_null() {
                    details["error"] = inner.details;
                }
                (inner.status, details, inner.retry_after)
            }
            Error::BankNotFound { bank_id } => (StatusCode::NOT_FOUND, json!({"bankId": bank_id}), None),
            Error::BankExists { bank_id } => (StatusCode::CONFLICT, json!({"bankId": bank_id}), None),
            Error::InvalidBank { bank_id, problems } => {
                (StatusCode::BAD_REQUEST, json!({"bankId": bank_id, "problems": problems}), None)
            }
            Error::EventTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, Value::Null, None),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, Value::Null, None),
        };
        ApiError { status, code, message, details, retry_after: retry }
    }
}

/// The engine's parameter problems as `details.errors` entries: `field` is
/// `parameters.<name>` (or `parameters` for the object itself), beside the engine's
/// `parameter`, `kind` and `message`.
pub(crate) fn parameter_issues(errors: &ValidationErrors) -> Vec<Value> {
    errors
        .issues()
        .iter()
        .map(|i| {
            let field = if i.parameter.is_empty() {
                "parameters".to_owned()
            } else {
                format!("parameters.{}", echo(&i.parameter))
            };
            json!({"field": field, "parameter": echo(&i.parameter), "kind": i.kind, "message": i.message})
        })
        .collect()
}

/// A client-supplied string as echoed in an error: cut to a few dozen characters, so that a
/// megabyte id is not sent back whole.
pub(crate) fn echo(s: &str) -> String {
    atmo_workers::manifest::Echo(s).to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body { code: self.code, message: &self.message, details: &self.details };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The error of the server library's own API (starting, binding, serving).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Binding a non-loopback address without a bearer token is refused: anyone on the
    /// network could submit work.
    #[error("refusing to listen on {addr} without an auth token: set a token, or bind 127.0.0.1 / ::1")]
    InsecureBind {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The server was created outside a tokio runtime.
    #[error("the server needs a tokio runtime for its background tasks")]
    NoRuntime,
    /// The persisted cron state could not be read or parsed.
    #[error(transparent)]
    Cron(#[from] crate::cron::CronError),
    /// Serving failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The engine's shutdown at the end of the drain failed.
    #[error("the engine's shutdown failed")]
    Shutdown(#[source] atmo_workers::Error),
}

/// An error and its sources, as one line (a source whose text its error already ends with is
/// not repeated).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}
