//! How a request maps onto a row, and back.
//!
//! Every field of a [`Request`] has its own column. A state change runs on a *skeleton*: the
//! request with its scalar fields and progress loaded and its large or growing parts
//! (parameters, metadata, result, errors, history) left empty; [`atmo_core::apply_transition`]
//! decides from the status, the attempt, the bank and the worker only, and whatever it
//! appends to the skeleton's history and errors is exactly what the row must append
//! (`history || $n` in SQL, never re-encoding the old entries).

use std::sync::Arc;
use std::time::Duration;

use atmo_core::{
    HistoryEntry, Progress, Request, RequestError, RequestId, RequestStatus, RetryPolicy, StoreError, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::Error;

/// The timeout and retry policy of a request: rarely set, never changed, one JSON column
/// (NULL when neither is set), encoded as in a request's JSON.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Extra {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "atmo_core::time::duration_ms::option")]
    pub(crate) timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry: Option<Box<RetryPolicy>>,
}

impl Extra {
    /// The extra column of `r`, if it has one.
    pub(crate) fn of(r: &Request) -> Option<Extra> {
        (r.timeout.is_some() || r.retry.is_some()).then(|| Extra { timeout: r.timeout, retry: r.retry.clone() })
    }
}

/// The lease of an assigned or processing request: owner and expiry.
pub(crate) type Lease = Option<(Arc<str>, Timestamp)>;

/// A skeleton loaded for a state change, with its lease.
pub(crate) struct Loaded {
    pub(crate) request: Request,
    pub(crate) lease: Lease,
}

pub(crate) fn uuid(id: RequestId) -> Uuid {
    *id.as_uuid()
}

pub(crate) fn status_from(n: i16) -> Result<RequestStatus, Error> {
    u8::try_from(n)
        .ok()
        .and_then(RequestStatus::from_index)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown status {n} in the requests table")).into())
}

pub(crate) fn status_code(s: RequestStatus) -> i16 {
    i16::from(s as u8)
}

fn priority_from(n: i16) -> Result<u8, Error> {
    u8::try_from(n).map_err(|_| StoreError::Corrupt(format!("priority {n} in the requests table")).into())
}

fn attempts_from(n: i32) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("attempt count {n} in the requests table")).into())
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_micros)
}

pub(crate) fn micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_micros)
}

fn arc(s: Option<&str>) -> Option<Arc<str>> {
    s.map(Arc::from)
}

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, Error> {
    Ok(serde_json::from_value(v)?)
}

// ===== skeletons =====

/// The columns [`read_skeleton`] reads, in its order.
pub(crate) const SKELETON_COLUMNS: &str = "id, task_id, status, priority, attempts, bank_id, worker_id, created_at, \
     updated_at, run_at, assigned_at, started_at, completed_at, progress, lease_owner, lease_until";

/// A skeleton from a row of [`SKELETON_COLUMNS`].
pub(crate) fn read_skeleton(r: &Row) -> Result<Loaded, Error> {
    let request = Request {
        request_id: RequestId::from_uuid(r.try_get(0)?),
        task_id: Arc::from(r.try_get::<_, &str>(1)?),
        parameters: Arc::new(Value::Null),
        status: status_from(r.try_get(2)?)?,
        priority: priority_from(r.try_get(3)?)?,
        client_id: None,
        metadata: None,
        idempotency_key: None,
        attempts: attempts_from(r.try_get(4)?)?,
        bank_id: arc(r.try_get(5)?),
        worker_id: arc(r.try_get(6)?),
        created_at: Timestamp::from_micros(r.try_get(7)?),
        updated_at: Timestamp::from_micros(r.try_get(8)?),
        run_at: ts(r.try_get(9)?),
        assigned_at: ts(r.try_get(10)?),
        started_at: ts(r.try_get(11)?),
        completed_at: ts(r.try_get(12)?),
        timeout: None,
        retry: None,
        progress: r.try_get::<_, Option<Value>>(13)?.map(decode::<Progress>).transpose()?.map(Box::new),
        result: None,
        errors: Vec::new(),
        history: Vec::new(),
    };
    let lease = match (r.try_get::<_, Option<&str>>(14)?, r.try_get::<_, Option<i64>>(15)?) {
        (Some(o), Some(u)) => Some((Arc::from(o), Timestamp::from_micros(u))),
        _ => None,
    };
    Ok(Loaded { request, lease })
}

// ===== whole requests =====

/// The columns [`read_request`] reads, in its order.
pub(crate) const REQUEST_COLUMNS: &str = "id, task_id, parameters, status, priority, client_id, metadata, \
     idempotency_key, attempts, bank_id, worker_id, created_at, updated_at, run_at, assigned_at, started_at, \
     completed_at, extra, progress, result, errors, history";

/// A whole request from a row of [`REQUEST_COLUMNS`].
pub(crate) fn read_request(r: &Row) -> Result<Request, Error> {
    let extra: Option<Extra> = r.try_get::<_, Option<Value>>(17)?.map(decode).transpose()?;
    let (timeout, retry) = extra.map_or((None, None), |e| (e.timeout, e.retry));
    Ok(Request {
        request_id: RequestId::from_uuid(r.try_get(0)?),
        task_id: Arc::from(r.try_get::<_, &str>(1)?),
        parameters: Arc::new(r.try_get::<_, Value>(2)?),
        status: status_from(r.try_get(3)?)?,
        priority: priority_from(r.try_get(4)?)?,
        client_id: arc(r.try_get(5)?),
        metadata: r.try_get::<_, Option<Value>>(6)?.map(decode).transpose()?,
        idempotency_key: r.try_get::<_, Option<&str>>(7)?.map(Box::from),
        attempts: attempts_from(r.try_get(8)?)?,
        bank_id: arc(r.try_get(9)?),
        worker_id: arc(r.try_get(10)?),
        created_at: Timestamp::from_micros(r.try_get(11)?),
        updated_at: Timestamp::from_micros(r.try_get(12)?),
        run_at: ts(r.try_get(13)?),
        assigned_at: ts(r.try_get(14)?),
        started_at: ts(r.try_get(15)?),
        completed_at: ts(r.try_get(16)?),
        timeout,
        retry,
        progress: r.try_get::<_, Option<Value>>(18)?.map(decode::<Progress>).transpose()?.map(Box::new),
        result: r.try_get::<_, Option<Value>>(19)?.map(Arc::new),
        errors: decode::<Vec<RequestError>>(r.try_get(20)?)?,
        history: decode::<Vec<HistoryEntry>>(r.try_get(21)?)?,
    })
}

// ===== derived columns =====

/// The `run_at` column: a scheduled request without a time is due at once, as in every store.
pub(crate) fn run_at_column(r: &Request) -> Option<i64> {
    match r.status {
        RequestStatus::Scheduled => Some(r.run_at.unwrap_or(Timestamp::EPOCH).as_micros()),
        _ => micros(r.run_at),
    }
}

/// The `finished_at` column: set iff the request is terminal.
pub(crate) fn finished_at_column(r: &Request) -> Option<i64> {
    r.status.is_terminal().then(|| r.completed_at.unwrap_or(r.updated_at).as_micros())
}

/// The `processing_us` column: completed requests only.
pub(crate) fn processing_column(r: &Request) -> Option<i64> {
    match (r.status, r.started_at, r.completed_at) {
        (RequestStatus::Completed, Some(s), Some(c)) => Some(c.as_micros().saturating_sub(s.as_micros())),
        _ => None,
    }
}
