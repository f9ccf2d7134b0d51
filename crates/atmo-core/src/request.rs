//! The request and the records of its lifecycle.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bank::{Bank, Capability, Task};
use crate::failure::RequestError;
use crate::id::RequestId;
use crate::retry::RetryPolicy;
use crate::status::RequestStatus;
use crate::time::Timestamp;

/// Lowest priority.
pub const MIN_PRIORITY: u8 = 1;
/// Highest priority.
pub const MAX_PRIORITY: u8 = 10;
/// Priority when none is given.
pub const DEFAULT_PRIORITY: u8 = 5;

/// Longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 256;
/// Longest client id accepted, in bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 256;
/// Longest metadata key accepted, in bytes (keys must also be free of control characters).
pub const MAX_METADATA_KEY_BYTES: usize = 128;
/// Most metadata entries a request (or a query's metadata filter) may have.
pub const MAX_METADATA_ENTRIES: usize = 64;

/// A unit of work: a task id, its parameters, and everything that happened to it.
///
/// Strings shared by many requests (task, client, bank and worker ids) are reference-counted,
/// so a million retained requests share one copy of each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Unique id (UUID v7).
    pub request_id: RequestId,
    /// The task (a manifest action's `actionId`).
    pub task_id: Arc<str>,
    /// Parameters, validated and with defaults filled in.
    pub parameters: Arc<Value>,
    /// Current status.
    pub status: RequestStatus,
    /// 1–10, 10 runs first.
    pub priority: u8,
    /// Who submitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Arc<str>>,
    /// Free-form labels, queryable by equality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Box<Map<String, Value>>>,
    /// A client's key that makes submission idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<Box<str>>,
    /// Attempts started so far (0 before the first claim).
    pub attempts: u32,
    /// The bank holding or last holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_id: Option<Arc<str>>,
    /// The worker holding or last holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<Arc<str>>,
    /// Submission time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When a `scheduled` request becomes `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<Timestamp>,
    /// When the current (or last) attempt was assigned to a bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<Timestamp>,
    /// When the current (or last) attempt started processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// Per-request timeout (overrides action and manifest).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::duration_ms::option")]
    pub timeout: Option<Duration>,
    /// Per-request retry policy (overrides action and manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Box<RetryPolicy>>,
    /// Latest progress report of the running attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Box<Progress>>,
    /// The handler's result, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Arc<Value>>,
    /// One entry per failed attempt, oldest first; the last one is the request's error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RequestError>,
    /// Every status change, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl Request {
    /// A request as submitted: status `pending` (or `scheduled` when `run_at` is later than
    /// `created_at`), priority 5, no attempt yet, and the submission as its first history entry.
    ///
    /// ```
    /// use atmo_core::{Request, RequestId, RequestStatus, Timestamp};
    /// use serde_json::json;
    /// let t = Timestamp::from_millis(1_000);
    /// let r = Request::new(RequestId::from_parts(t, [1; 10]), "add", json!({"a": 1}), t, None);
    /// assert_eq!(r.status, RequestStatus::Pending);
    /// assert_eq!(r.history.len(), 1);
    /// ```
    pub fn new(
        request_id: RequestId,
        task_id: impl Into<Arc<str>>,
        parameters: Value,
        created_at: Timestamp,
        run_at: Option<Timestamp>,
    ) -> Self {
        let run_at = run_at.filter(|t| *t > created_at);
        let status = if run_at.is_some() { RequestStatus::Scheduled } else { RequestStatus::Pending };
        Request {
            request_id,
            task_id: task_id.into(),
            parameters: Arc::new(parameters),
            status,
            priority: DEFAULT_PRIORITY,
            client_id: None,
            metadata: None,
            idempotency_key: None,
            attempts: 0,
            bank_id: None,
            worker_id: None,
            created_at,
            updated_at: created_at,
            run_at,
            assigned_at: None,
            started_at: None,
            completed_at: None,
            timeout: None,
            retry: None,
            progress: None,
            result: None,
            errors: Vec::new(),
            history: {
                // Room for the usual path (assigned, processing, finished) without growing.
                let mut history = Vec::with_capacity(4);
                history.push(HistoryEntry {
                    from: None,
                    to: status,
                    at: created_at,
                    reason: Cow::Borrowed("submitted"),
                    bank_id: None,
                    worker_id: None,
                    attempt: 0,
                });
                history
            },
        }
    }

    /// The error that ended the request, or of the last failed attempt.
    pub fn error(&self) -> Option<&RequestError> {
        self.errors.last()
    }

    /// Time spent processing in the last attempt, if it finished.
    pub fn processing_time(&self) -> Option<Duration> {
        match (self.started_at, self.completed_at) {
            (Some(s), Some(c)) if self.status.is_terminal() => Some(c.saturating_since(s)),
            _ => None,
        }
    }

    /// The result view (`getResult` in the seed): present once the request is terminal.
    pub fn to_result(&self) -> Option<RequestResult> {
        if !self.status.is_terminal() {
            return None;
        }
        Some(RequestResult {
            request_id: self.request_id,
            status: self.status,
            success: self.status == RequestStatus::Completed,
            payload: self.result.clone(),
            error: self.error().cloned(),
            processing_time_ms: self.processing_time().map(|d| d.as_secs_f64() * 1000.0),
            attempts: self.attempts,
            completed_at: self.completed_at,
        })
    }

    /// The assignment view: which bank and worker, and when.
    pub fn assignment(&self) -> Option<Assignment> {
        let bank_id = self.bank_id.clone()?;
        Some(Assignment {
            bank_id,
            worker_id: self.worker_id.clone(),
            queued_at: self.created_at,
            assigned_at: self.assigned_at,
            started_at: self.started_at,
            completed_at: self.completed_at,
            attempt: self.attempts,
        })
    }
}

/// One status change in a request's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The previous status (`None` for the submission itself).
    pub from: Option<RequestStatus>,
    /// The new status.
    pub to: RequestStatus,
    /// When.
    pub at: Timestamp,
    /// Why, in words (`"submitted"`, `"claimed by bank math"`, `"worker lost"`, ...).
    pub reason: Cow<'static, str>,
    /// The bank involved, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_id: Option<Arc<str>>,
    /// The worker involved, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<Arc<str>>,
    /// The attempt this change belongs to.
    pub attempt: u32,
}

/// A progress report from a running handler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// 0–100.
    pub percent: f32,
    /// Optional words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it was reported.
    pub at: Timestamp,
}

/// Where and when a request ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The bank.
    pub bank_id: Arc<str>,
    /// The worker, once it started.
    pub worker_id: Option<Arc<str>>,
    /// Submission time.
    pub queued_at: Timestamp,
    /// Claim time of the last attempt.
    pub assigned_at: Option<Timestamp>,
    /// Start of the last attempt.
    pub started_at: Option<Timestamp>,
    /// End.
    pub completed_at: Option<Timestamp>,
    /// Attempt number.
    pub attempt: u32,
}

/// The outcome of a finished request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestResult {
    /// The request.
    pub request_id: RequestId,
    /// Its terminal status.
    pub status: RequestStatus,
    /// `true` when completed.
    pub success: bool,
    /// The handler's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Arc<Value>>,
    /// The error, when not completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RequestError>,
    /// Processing time of the last attempt in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_time_ms: Option<f64>,
    /// Attempts used.
    pub attempts: u32,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
}

impl RequestResult {
    /// The result as a typed value.
    ///
    /// ```
    /// # use atmo_core::{RequestId, RequestResult, RequestStatus};
    /// # use std::sync::Arc;
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct Sum { result: f64 }
    /// let r = RequestResult {
    ///     request_id: RequestId::from_u128(1),
    ///     status: RequestStatus::Completed,
    ///     success: true,
    ///     payload: Some(Arc::new(serde_json::json!({"result": 8.0}))),
    ///     error: None,
    ///     processing_time_ms: None,
    ///     attempts: 1,
    ///     completed_at: None,
    /// };
    /// assert_eq!(r.decode::<Sum>().unwrap(), Sum { result: 8.0 });
    /// assert!(r.decode::<Vec<u8>>().is_err());
    /// ```
    ///
    /// # Errors
    /// [`DecodeError::NotCompleted`] (with the request's error) when it did not complete;
    /// [`DecodeError::Payload`] when the result is not a `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, DecodeError> {
        let payload = match (&self.payload, self.status) {
            (Some(p), RequestStatus::Completed) => p,
            _ => {
                return Err(DecodeError::NotCompleted {
                    id: self.request_id,
                    status: self.status,
                    error: self.error.clone().map(Box::new),
                });
            }
        };
        T::deserialize(&**payload).map_err(|source| DecodeError::Payload { id: self.request_id, source })
    }
}

/// Why [`RequestResult::decode`] gave no value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The request finished without a result.
    #[error("request {id} did not complete: it is {status}{}", error.as_ref().map(|e| format!(" ({}: {})", e.code, e.message)).unwrap_or_default())]
    NotCompleted {
        /// The request.
        id: RequestId,
        /// How it ended.
        status: RequestStatus,
        /// Its error, if it failed.
        error: Option<Box<RequestError>>,
    },
    /// The result is not of the type asked for.
    #[error("the result of request {id} does not decode: {source}")]
    Payload {
        /// The request.
        id: RequestId,
        /// What did not match.
        #[source]
        source: serde_json::Error,
    },
}

/// Everything known about a request, bundled (`getRequestLifecycle` in the seed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestLifecycle {
    /// The request with its history and errors.
    pub request: Request,
    /// The task definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// The bank that handled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank: Option<Bank>,
    /// The bank's capability for the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<Capability>,
    /// Where and when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
    /// The result, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<RequestResult>,
}

/// Options of a submission.
///
/// ```
/// use atmo_core::SubmitOptions;
/// use std::time::Duration;
/// let opts = SubmitOptions::new().priority(9).client_id("billing").delay(Duration::from_secs(5));
/// assert_eq!(opts.priority, Some(9));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubmitOptions {
    /// 1–10 (default 5).
    pub priority: Option<u8>,
    /// Who submits.
    pub client_id: Option<String>,
    /// Labels.
    pub metadata: Option<Map<String, Value>>,
    /// Makes the submission idempotent: a second submission with the same key returns the first
    /// request's id.
    pub idempotency_key: Option<String>,
    /// Run no sooner than this.
    pub run_at: Option<Timestamp>,
    /// Run no sooner than this long from now.
    #[serde(with = "crate::time::duration_ms::option")]
    pub delay: Option<Duration>,
    /// Timeout of each attempt.
    #[serde(with = "crate::time::duration_ms::option")]
    pub timeout: Option<Duration>,
    /// Retry policy for this request.
    pub retry: Option<RetryPolicy>,
}

impl SubmitOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the priority (1–10).
    pub fn priority(mut self, p: u8) -> Self {
        self.priority = Some(p);
        self
    }
    /// Sets the client id.
    pub fn client_id(mut self, c: impl Into<String>) -> Self {
        self.client_id = Some(c.into());
        self
    }
    /// Adds a metadata entry.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.get_or_insert_with(Map::new).insert(key.into(), value.into());
        self
    }
    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, k: impl Into<String>) -> Self {
        self.idempotency_key = Some(k.into());
        self
    }
    /// Runs no sooner than `t`.
    pub fn run_at(mut self, t: Timestamp) -> Self {
        self.run_at = Some(t);
        self
    }
    /// Runs no sooner than `d` from now.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }
    /// Sets the timeout of each attempt.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Sets the retry policy.
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = Some(r);
        self
    }

    /// Checks the free-text options against their documented bounds: the idempotency key (at
    /// most [`MAX_IDEMPOTENCY_KEY_BYTES`], not empty), the client id (at most
    /// [`MAX_CLIENT_ID_BYTES`]), metadata (at most [`MAX_METADATA_ENTRIES`] entries, keys of
    /// 1 to [`MAX_METADATA_KEY_BYTES`] bytes without control characters). Each issue's
    /// `parameter` names the option (`idempotencyKey`, `clientId`, `metadata`,
    /// `metadata.<key>`); the submission path runs this before storing anything.
    ///
    /// ```
    /// use atmo_core::SubmitOptions;
    /// assert!(SubmitOptions::new().client_id("billing").meta("team", "a").check().is_ok());
    /// let err = SubmitOptions::new().meta("bad\0key", 1).client_id("x".repeat(300)).check().unwrap_err();
    /// assert_eq!(err.issues().len(), 2);
    /// ```
    ///
    /// # Errors
    /// The problems found, as [`ValidationErrors`](crate::manifest::ValidationErrors).
    pub fn check(&self) -> Result<(), crate::manifest::ValidationErrors> {
        use crate::manifest::{Echo, ValidationErrors, ValidationIssue, ValidationIssueKind as Kind};
        let mut issues = Vec::new();
        let mut push = |parameter: String, kind: Kind, message: String| {
            issues.push(ValidationIssue { parameter, kind, message });
        };
        if let Some(k) = &self.idempotency_key {
            if k.is_empty() {
                push("idempotencyKey".into(), Kind::BadLength, "the idempotency key must not be empty".into());
            } else if k.len() > MAX_IDEMPOTENCY_KEY_BYTES {
                push(
                    "idempotencyKey".into(),
                    Kind::BadLength,
                    format!(
                        "the idempotency key has {} bytes; at most {MAX_IDEMPOTENCY_KEY_BYTES} are accepted",
                        k.len()
                    ),
                );
            }
        }
        if let Some(c) = &self.client_id
            && c.len() > MAX_CLIENT_ID_BYTES
        {
            push(
                "clientId".into(),
                Kind::BadLength,
                format!("the client id has {} bytes; at most {MAX_CLIENT_ID_BYTES} are accepted", c.len()),
            );
        }
        if let Some(m) = &self.metadata {
            if m.len() > MAX_METADATA_ENTRIES {
                push(
                    "metadata".into(),
                    Kind::BadLength,
                    format!("metadata has {} entries; at most {MAX_METADATA_ENTRIES} are accepted", m.len()),
                );
            } else {
                for k in m.keys() {
                    if let Some(message) = metadata_key_problem(k) {
                        push(format!("metadata.{}", Echo(k)), Kind::NotAllowed, message);
                    }
                }
            }
        }
        if issues.is_empty() { Ok(()) } else { Err(ValidationErrors::capped(issues, 0)) }
    }
}

/// What is wrong with a metadata key, if anything: empty, longer than
/// [`MAX_METADATA_KEY_BYTES`], or holding a control character (NUL included), which no store
/// could match in a query.
pub fn metadata_key_problem(key: &str) -> Option<String> {
    use crate::manifest::Echo;
    if key.is_empty() {
        Some("a metadata key must not be empty".into())
    } else if key.len() > MAX_METADATA_KEY_BYTES {
        Some(format!(
            "metadata key `{}` has {} bytes; at most {MAX_METADATA_KEY_BYTES} are accepted",
            Echo(key),
            key.len()
        ))
    } else if key.chars().any(char::is_control) {
        Some(format!("metadata key `{}` holds a control character, which keys may not", Echo(key)))
    } else {
        None
    }
}

/// One request of a batch submission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitRequest {
    /// The task.
    pub task_id: String,
    /// Its parameters.
    #[serde(default)]
    pub parameters: Value,
    /// Options.
    #[serde(default, flatten)]
    pub options: SubmitOptions,
}

impl SubmitRequest {
    /// A request with default options.
    pub fn new(task_id: impl Into<String>, parameters: Value) -> Self {
        SubmitRequest { task_id: task_id.into(), parameters, options: SubmitOptions::default() }
    }

    /// With options.
    pub fn with_options(mut self, options: SubmitOptions) -> Self {
        self.options = options;
        self
    }
}
