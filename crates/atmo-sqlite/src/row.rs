//! How a request maps onto a row: indexed columns for what the engine filters, sorts and
//! claims by, and the whole request as JSON in `body`.

use std::sync::Arc;

use atmo_core::{Request, RequestId, RequestStatus, StoreError, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Error;

/// A request as stored, with what only the store keeps.
pub(crate) struct StoredRow {
    pub(crate) request: Request,
    /// Queue order among requests of one priority (and among scheduled requests of one time).
    pub(crate) seq: i64,
    /// Owner and expiry of the lease of an assigned or processing request.
    pub(crate) lease: Option<(Arc<str>, Timestamp)>,
}

/// The id as a 16-byte big-endian blob: byte order is [`RequestId`] order.
pub(crate) fn id_blob(id: RequestId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

/// The id from its blob.
pub(crate) fn id_from_blob(b: &[u8]) -> Result<RequestId, Error> {
    let bytes: [u8; 16] =
        b.try_into().map_err(|_| StoreError::Corrupt(format!("request id of {} bytes, expected 16", b.len())))?;
    Ok(RequestId::from_u128(u128::from_be_bytes(bytes)))
}

/// Decodes a row's `body`.
pub(crate) fn decode(body: &str) -> Result<Request, Error> {
    Ok(serde_json::from_str(body)?)
}

/// Loads a request with its store-only fields.
pub(crate) fn load_row(conn: &Connection, id: RequestId) -> Result<Option<StoredRow>, Error> {
    let found = conn
        .prepare_cached("SELECT body, seq, lease_owner, lease_until FROM requests WHERE id = ?1")?
        .query_row([id_blob(id)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .optional()?;
    let Some((body, seq, owner, until)) = found else { return Ok(None) };
    let lease = match (owner, until) {
        (Some(o), Some(u)) => Some((Arc::from(o), Timestamp::from_micros(u))),
        _ => None,
    };
    Ok(Some(StoredRow { request: decode(&body)?, seq, lease }))
}

fn micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_micros)
}

/// Inserts (`insert`) or updates the row of `row.request`.
pub(crate) fn write_row(conn: &Connection, row: &StoredRow, insert: bool) -> Result<(), Error> {
    let r = &row.request;
    let body = serde_json::to_string(r)?;
    // A scheduled request without a time is due at once, as in every store.
    let run_at = match r.status {
        RequestStatus::Scheduled => Some(r.run_at.unwrap_or(Timestamp::EPOCH).as_micros()),
        _ => micros(r.run_at),
    };
    let finished_at = r.status.is_terminal().then(|| r.completed_at.unwrap_or(r.updated_at).as_micros());
    let processing_us = match (r.status, r.started_at, r.completed_at) {
        (RequestStatus::Completed, Some(s), Some(c)) => Some(c.as_micros().saturating_sub(s.as_micros())),
        _ => None,
    };
    let (owner, until) = match &row.lease {
        Some((o, u)) => (Some(&**o), Some(u.as_micros())),
        None => (None, None),
    };
    let sql = if insert {
        "INSERT INTO requests (id, seq, task_id, status, priority, client_id, bank_id, worker_id, created_at,
            updated_at, run_at, completed_at, finished_at, attempts, idempotency_key, lease_owner, lease_until,
            processing_us, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
    } else {
        "UPDATE requests SET seq = ?2, task_id = ?3, status = ?4, priority = ?5, client_id = ?6, bank_id = ?7,
            worker_id = ?8, created_at = ?9, updated_at = ?10, run_at = ?11, completed_at = ?12,
            finished_at = ?13, attempts = ?14, idempotency_key = ?15, lease_owner = ?16, lease_until = ?17,
            processing_us = ?18, body = ?19
         WHERE id = ?1"
    };
    conn.prepare_cached(sql)?.execute(params![
        id_blob(r.request_id),
        row.seq,
        &*r.task_id,
        r.status as u8,
        r.priority,
        r.client_id.as_deref(),
        r.bank_id.as_deref(),
        r.worker_id.as_deref(),
        r.created_at.as_micros(),
        r.updated_at.as_micros(),
        run_at,
        micros(r.completed_at),
        finished_at,
        r.attempts,
        r.idempotency_key.as_deref(),
        owner,
        until,
        processing_us,
        body,
    ])?;
    Ok(())
}
