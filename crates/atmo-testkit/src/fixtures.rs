//! Fixtures: valid requests with overridable fields, fixed times, errors.
//!
//! ```
//! use atmo_testkit::fixtures::{at, request};
//! use atmo_core::RequestStatus;
//! let r = request("resize").priority(9).client("web").meta("region", "eu").created_at(at(5)).build();
//! assert_eq!(r.status, RequestStatus::Pending);
//! assert_eq!(r.history.len(), 1);
//! let later = request("resize").run_at(at(60)).build();
//! assert_eq!(later.status, RequestStatus::Scheduled);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atmo_core::{
    DEFAULT_PRIORITY, ErrorCategory, Request, RequestError, RequestId, RequestStatus, Severity, Timestamp,
};
use serde_json::{Map, Value, json};

/// The time every fixture is relative to: 2026-01-01T00:00:00Z.
pub const BASE_TIME: Timestamp = Timestamp::from_micros(1_767_225_600_000_000);

/// [`BASE_TIME`] plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    at_ms(seconds.saturating_mul(1000))
}

/// [`BASE_TIME`] plus `millis`.
pub fn at_ms(millis: i64) -> Timestamp {
    Timestamp::from_micros(BASE_TIME.as_micros().saturating_add(millis.saturating_mul(1000)))
}

/// [`BASE_TIME`] plus `micros`.
pub fn at_us(micros: i64) -> Timestamp {
    Timestamp::from_micros(BASE_TIME.as_micros().saturating_add(micros))
}

/// One microsecond after `t`: the smallest step a store must tell apart.
pub fn just_after(t: Timestamp) -> Timestamp {
    t + Duration::from_micros(1)
}

/// One microsecond before `t`.
pub fn just_before(t: Timestamp) -> Timestamp {
    t.saturating_sub(Duration::from_micros(1))
}

/// A fresh request id for `created`. Ids are unique in the process: the random part is a
/// counter, placed in bytes that UUID v7's version and variant bits leave alone.
pub fn request_id(created: Timestamp) -> RequestId {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    let mut random = [0u8; 10];
    random[2..].copy_from_slice(&n);
    // Byte 2 of the random part loses its top two bits to the variant; the counter's top
    // byte is zero for the first 2^56 ids.
    RequestId::from_parts(created, random)
}

/// A builder of a valid pending request of `task_id`; see [`RequestBuilder`].
pub fn request(task_id: &str) -> RequestBuilder {
    RequestBuilder::new(task_id)
}

/// A request with overridable fields (River's `testfactory`). Unset fields take valid defaults:
/// priority 5, `{}` parameters, created at [`BASE_TIME`], pending.
#[derive(Clone, Debug)]
pub struct RequestBuilder {
    task_id: Arc<str>,
    id: Option<RequestId>,
    parameters: Value,
    priority: u8,
    client_id: Option<Arc<str>>,
    metadata: Option<Map<String, Value>>,
    idempotency_key: Option<String>,
    created_at: Timestamp,
    run_at: Option<Timestamp>,
    timeout: Option<Duration>,
}

impl RequestBuilder {
    /// Defaults for `task_id`.
    pub fn new(task_id: impl Into<Arc<str>>) -> Self {
        RequestBuilder {
            task_id: task_id.into(),
            id: None,
            parameters: json!({}),
            priority: DEFAULT_PRIORITY,
            client_id: None,
            metadata: None,
            idempotency_key: None,
            created_at: BASE_TIME,
            run_at: None,
            timeout: None,
        }
    }

    /// Sets the id (default: a fresh one for the creation time).
    pub fn id(mut self, id: RequestId) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the parameters.
    pub fn parameters(mut self, p: Value) -> Self {
        self.parameters = p;
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, p: u8) -> Self {
        self.priority = p;
        self
    }

    /// Sets the client id.
    pub fn client(mut self, c: &str) -> Self {
        self.client_id = Some(Arc::from(c));
        self
    }

    /// Adds a metadata entry.
    pub fn meta(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.get_or_insert_with(Map::new).insert(key.to_owned(), value.into());
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, k: &str) -> Self {
        self.idempotency_key = Some(k.to_owned());
        self
    }

    /// Sets the submission time (also `updated_at` and the history entry's time).
    pub fn created_at(mut self, t: Timestamp) -> Self {
        self.created_at = t;
        self
    }

    /// Makes the request `scheduled` until `t`.
    pub fn run_at(mut self, t: Timestamp) -> Self {
        self.run_at = Some(t);
        self
    }

    /// Sets the per-request timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// The request, `pending` (or `scheduled` with a `run_at`), with its submission entry.
    pub fn build(self) -> Request {
        let id = self.id.unwrap_or_else(|| request_id(self.created_at));
        let mut request = Request::new(id, self.task_id, self.parameters, self.created_at, None);
        if let Some(run_at) = self.run_at {
            // Scheduled even when `run_at` is not later than creation: stores must cope.
            request.status = RequestStatus::Scheduled;
            request.run_at = Some(run_at);
            if let Some(first) = request.history.first_mut() {
                first.to = RequestStatus::Scheduled;
            }
        }
        Request {
            priority: self.priority,
            client_id: self.client_id,
            metadata: self.metadata.map(Box::new),
            idempotency_key: self.idempotency_key.map(String::into_boxed_str),
            timeout: self.timeout,
            ..request
        }
    }
}

/// A recorded error of `attempt` with `code`, as the engine would write it.
pub fn error(code: &str, message: &str, attempt: u32, at: Timestamp) -> RequestError {
    RequestError {
        code: code.to_owned(),
        message: message.to_owned(),
        category: ErrorCategory::Processing,
        severity: Severity::Medium,
        retryable: false,
        attempt,
        at,
        details: None,
    }
}
