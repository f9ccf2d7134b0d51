//! How a request maps onto a row, and back.
//!
//! Every field of a [`Request`] has its own column, so a state change writes the few columns it
//! changes and nothing else:
//!
//! - what never changes after submission (task, priority, client, parameters, metadata,
//!   timeout and retry policy, idempotency key, creation time) is written once;
//! - what a transition changes (status, attempt, bank, worker, timestamps, lease, progress,
//!   result) is one column each, and an update sets only the columns whose value changed, so
//!   indexes on unchanged columns are not touched;
//! - the history and the errors only grow: each is stored as lines of JSON (one entry per
//!   line; history entries as compact arrays) and a transition appends its new entries in SQL
//!   (`history || ?`), never re-encoding the old ones.
//!
//! A transition runs on a *skeleton*: the request with its scalar fields and progress loaded
//! and its large or growing parts (parameters, metadata, result, errors, history) left empty.
//! [`atmo_core::apply_transition`] and [`atmo_core::apply_claim`] decide from the status, the
//! attempt, the bank and the worker only; whatever they append to the skeleton's history and
//! errors is exactly what the row must append.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use atmo_core::{
    HistoryEntry, Progress, Request, RequestError, RequestId, RequestStatus, RetryPolicy, StoreError, Timestamp,
};
use rusqlite::types::{FromSqlError, Type, Value as Sql};
use rusqlite::{Connection, Row};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// A request as stored, with what only the store keeps.
pub(crate) struct StoredRow {
    pub(crate) request: Request,
    /// Queue order among requests of one priority (and among scheduled requests of one time).
    pub(crate) seq: i64,
    /// Owner and expiry of the lease of an assigned or processing request.
    pub(crate) lease: Option<(Arc<str>, Timestamp)>,
}

/// A skeleton loaded for a state change: its row, and the values of its changing columns as
/// loaded (what an update compares against).
pub(crate) struct Loaded {
    pub(crate) rowid: i64,
    pub(crate) row: StoredRow,
    before: HotValues,
}

/// The columns a state change may set, in [`HOT`] order.
pub(crate) type HotValues = [Sql; HOT.len()];

/// The changing columns, in the order of [`hot_values`].
const HOT: [&str; 16] = [
    "seq",
    "status",
    "attempts",
    "bank_id",
    "worker_id",
    "updated_at",
    "run_at",
    "assigned_at",
    "started_at",
    "completed_at",
    "finished_at",
    "processing_us",
    "lease_owner",
    "lease_until",
    "progress",
    "result",
];

/// The timeout and retry policy of a request: rarely set, never changed, one JSON column
/// (NULL when neither is set). The timeout goes through the same encoding as in a request's
/// JSON, so it reads back as it always has.
#[derive(Serialize, Deserialize)]
struct Extra {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "atmo_core::time::duration_ms::option")]
    timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<Box<RetryPolicy>>,
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

fn status_from(n: i64) -> Result<RequestStatus, Error> {
    u8::try_from(n)
        .ok()
        .and_then(RequestStatus::from_index)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown status {n} in the requests table")).into())
}

fn conversion(i: usize, t: Type, e: FromSqlError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, t, Box::new(e))
}

/// Column `i` as text, without copying it.
fn text<'r>(r: &'r Row<'_>, i: usize) -> Result<&'r str, Error> {
    Ok(r.get_ref(i)?.as_str().map_err(|e| conversion(i, Type::Text, e))?)
}

/// Column `i` as text or NULL, without copying it.
fn text_or_null<'r>(r: &'r Row<'_>, i: usize) -> Result<Option<&'r str>, Error> {
    Ok(r.get_ref(i)?.as_str_or_null().map_err(|e| conversion(i, Type::Text, e))?)
}

/// Column `i` as a blob, without copying it.
fn blob<'r>(r: &'r Row<'_>, i: usize) -> Result<&'r [u8], Error> {
    Ok(r.get_ref(i)?.as_blob().map_err(|e| conversion(i, Type::Blob, e))?)
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_micros)
}

fn micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_micros)
}

fn arc(s: Option<String>) -> Option<Arc<str>> {
    s.map(Arc::from)
}

/// A history entry as one compact JSON array: `[from, to, at, reason, bank, worker, attempt]`,
/// statuses as numbers and the time in microseconds. A row holds one per state change, so
/// this is about a third of the entry's own JSON.
type HistoryLine<'a> = (Option<u8>, u8, i64, &'a str, Option<&'a str>, Option<&'a str>, u32);

/// The history column's text for `entries`: one [`HistoryLine`] per line.
fn encode_history(entries: &[HistoryEntry]) -> Result<Option<String>, Error> {
    if entries.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    for h in entries {
        let line: HistoryLine<'_> = (
            h.from.map(|s| s as u8),
            h.to as u8,
            h.at.as_micros(),
            &h.reason,
            h.bank_id.as_deref(),
            h.worker_id.as_deref(),
            h.attempt,
        );
        out.push_str(&serde_json::to_string(&line)?);
        out.push('\n');
    }
    Ok(Some(out))
}

/// The entries of a history column.
fn decode_history(text: &str) -> Result<Vec<HistoryEntry>, Error> {
    let status = |n: u8| status_from(i64::from(n));
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (from, to, at, reason, bank, worker, attempt): (
                Option<u8>,
                u8,
                i64,
                String,
                Option<String>,
                Option<String>,
                u32,
            ) = serde_json::from_str(l)?;
            Ok(HistoryEntry {
                from: from.map(status).transpose()?,
                to: status(to)?,
                at: Timestamp::from_micros(at),
                reason: reason.into(),
                bank_id: arc(bank),
                worker_id: arc(worker),
                attempt,
            })
        })
        .collect()
}

/// Parses JSON lines (the errors column).
fn decode_lines<T: DeserializeOwned>(text: Option<&str>) -> Result<Vec<T>, Error> {
    let Some(text) = text else { return Ok(Vec::new()) };
    text.lines().filter(|l| !l.is_empty()).map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// Encodes entries as JSON lines, each ending in `\n` (compact JSON never holds a raw newline).
fn encode_lines<T: Serialize>(items: &[T]) -> Result<Option<String>, Error> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    for item in items {
        out.push_str(&serde_json::to_string(item)?);
        out.push('\n');
    }
    Ok(Some(out))
}

fn json_opt<T: Serialize>(v: Option<&T>) -> Result<Option<String>, Error> {
    v.map(serde_json::to_string).transpose().map_err(Error::from)
}

// ===== whole requests =====

/// The columns [`read_request`] reads, in its order.
pub(crate) const REQUEST_COLUMNS: &str = "id, task_id, parameters, status, priority, client_id, metadata, \
     idempotency_key, attempts, bank_id, worker_id, created_at, updated_at, run_at, assigned_at, started_at, \
     completed_at, extra, progress, result, errors, history";

/// A whole request from a row of [`REQUEST_COLUMNS`].
pub(crate) fn read_request(r: &Row<'_>) -> Result<Request, Error> {
    let extra: Option<Extra> = text_or_null(r, 17)?.map(serde_json::from_str).transpose()?;
    let (timeout, retry) = extra.map_or((None, None), |e| (e.timeout, e.retry));
    Ok(Request {
        request_id: id_from_blob(blob(r, 0)?)?,
        task_id: Arc::from(text(r, 1)?),
        parameters: Arc::new(serde_json::from_str(text(r, 2)?)?),
        status: status_from(r.get(3)?)?,
        priority: r.get(4)?,
        client_id: arc(r.get(5)?),
        metadata: text_or_null(r, 6)?.map(serde_json::from_str).transpose()?,
        idempotency_key: r.get::<_, Option<String>>(7)?.map(String::into_boxed_str),
        attempts: r.get(8)?,
        bank_id: arc(r.get(9)?),
        worker_id: arc(r.get(10)?),
        created_at: Timestamp::from_micros(r.get(11)?),
        updated_at: Timestamp::from_micros(r.get(12)?),
        run_at: ts(r.get(13)?),
        assigned_at: ts(r.get(14)?),
        started_at: ts(r.get(15)?),
        completed_at: ts(r.get(16)?),
        timeout,
        retry,
        progress: text_or_null(r, 18)?.map(serde_json::from_str).transpose()?,
        result: text_or_null(r, 19)?.map(|s| serde_json::from_str(s).map(Arc::new)).transpose()?,
        errors: decode_lines::<RequestError>(text_or_null(r, 20)?)?,
        history: decode_history(text(r, 21)?)?,
    })
}

/// A request encoded for its row, before it reaches the writer thread (which then only binds
/// the values): see [`encode_insert`].
pub(crate) struct EncodedRow {
    parameters: String,
    metadata: Option<String>,
    extra: Option<String>,
    errors: Option<String>,
    history: String,
    /// The changing columns, with `seq` still 0 (the writer numbers the queue).
    hot: HotValues,
    /// The lease an imported running request gets (the rescuer returns it once expired).
    pub(crate) lease: Option<(Arc<str>, Timestamp)>,
}

/// Encodes `r` for [`insert_row`].
pub(crate) fn encode_insert(r: &Request) -> Result<EncodedRow, Error> {
    // A running request (an import) has no live worker here: an expired lease lets the
    // rescuer return it.
    let lease = r.status.is_running().then(|| (Arc::<str>::from(""), Timestamp::EPOCH));
    encode_with_lease(r, lease)
}

/// Encodes `r` for [`insert_row`], with the lease it is to hold.
pub(crate) fn encode_with_lease(r: &Request, lease: Option<(Arc<str>, Timestamp)>) -> Result<EncodedRow, Error> {
    Ok(EncodedRow {
        parameters: serde_json::to_string(&*r.parameters)?,
        metadata: json_opt(r.metadata.as_deref())?,
        extra: (r.timeout.is_some() || r.retry.is_some())
            .then(|| serde_json::to_string(&Extra { timeout: r.timeout, retry: r.retry.clone() }))
            .transpose()?,
        errors: encode_lines(&r.errors)?,
        history: encode_history(&r.history)?.unwrap_or_default(),
        hot: hot_values(r, 0, lease.as_ref())?,
        lease,
    })
}

/// Inserts `r` (encoded as `e`) as a new row with queue order `seq`; returns the values of its
/// changing columns as written.
pub(crate) fn insert_row(conn: &Connection, r: &Request, e: &EncodedRow, seq: i64) -> Result<HotValues, Error> {
    let mut hot = e.hot.clone();
    hot[0] = Sql::Integer(seq);
    let mut stmt = conn.prepare_cached(
        "INSERT OR FAIL INTO requests (id, task_id, priority, client_id, created_at, idempotency_key, parameters, metadata,
            extra, errors, history, seq, status, attempts, bank_id, worker_id, updated_at, run_at, assigned_at,
            started_at, completed_at, finished_at, processing_us, lease_owner, lease_until, progress, result)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,
            ?23, ?24, ?25, ?26, ?27)",
    )?;
    stmt.raw_bind_parameter(1, id_blob(r.request_id))?;
    stmt.raw_bind_parameter(2, &*r.task_id)?;
    stmt.raw_bind_parameter(3, r.priority)?;
    stmt.raw_bind_parameter(4, r.client_id.as_deref())?;
    stmt.raw_bind_parameter(5, r.created_at.as_micros())?;
    stmt.raw_bind_parameter(6, r.idempotency_key.as_deref())?;
    stmt.raw_bind_parameter(7, &e.parameters)?;
    stmt.raw_bind_parameter(8, &e.metadata)?;
    stmt.raw_bind_parameter(9, &e.extra)?;
    stmt.raw_bind_parameter(10, &e.errors)?;
    stmt.raw_bind_parameter(11, &e.history)?;
    for (i, v) in hot.iter().enumerate() {
        stmt.raw_bind_parameter(12 + i, v)?;
    }
    stmt.raw_execute()?;
    Ok(hot)
}

/// The skeleton of a row just inserted from `r` (what [`load_for_claim`] would read back),
/// for the writer's cache: `hot` is what [`insert_row`] returned.
pub(crate) fn inserted_skeleton(
    r: &Request,
    rowid: i64,
    seq: i64,
    lease: Option<(Arc<str>, Timestamp)>,
    hot: HotValues,
) -> Loaded {
    // As stored: a scheduled request without a time is due at once.
    let run_at = match r.status {
        RequestStatus::Scheduled => Some(r.run_at.unwrap_or(Timestamp::EPOCH)),
        _ => r.run_at,
    };
    let request = Request {
        request_id: r.request_id,
        task_id: r.task_id.clone(),
        parameters: r.parameters.clone(),
        status: r.status,
        priority: r.priority,
        client_id: None,
        metadata: None,
        idempotency_key: None,
        attempts: r.attempts,
        bank_id: r.bank_id.clone(),
        worker_id: r.worker_id.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
        run_at,
        assigned_at: r.assigned_at,
        started_at: r.started_at,
        completed_at: r.completed_at,
        timeout: r.timeout,
        retry: r.retry.clone(),
        progress: r.progress.clone(),
        result: None,
        errors: Vec::new(),
        history: Vec::new(),
    };
    Loaded { rowid, row: StoredRow { request, seq, lease }, before: hot }
}

// ===== skeletons =====

/// The columns [`read_skeleton`] reads, in its order (a macro, so that queries can be
/// `concat!`-ed at compile time).
macro_rules! skeleton_columns {
    () => {
        "rowid, id, seq, task_id, status, priority, attempts, bank_id, worker_id, created_at, updated_at, run_at, \
         assigned_at, started_at, completed_at, lease_owner, lease_until, progress"
    };
}
pub(crate) use skeleton_columns;

/// The number of columns of [`skeleton_columns`].
const SKELETON_LEN: usize = 18;

/// A skeleton from a row of [`skeleton_columns`] (see the module documentation).
pub(crate) fn read_skeleton(r: &Row<'_>) -> Result<Loaded, Error> {
    let request = Request {
        request_id: id_from_blob(blob(r, 1)?)?,
        task_id: Arc::from(text(r, 3)?),
        parameters: Arc::new(Value::Null),
        status: status_from(r.get(4)?)?,
        priority: r.get(5)?,
        client_id: None,
        metadata: None,
        idempotency_key: None,
        attempts: r.get(6)?,
        bank_id: arc(r.get(7)?),
        worker_id: arc(r.get(8)?),
        created_at: Timestamp::from_micros(r.get(9)?),
        updated_at: Timestamp::from_micros(r.get(10)?),
        run_at: ts(r.get(11)?),
        assigned_at: ts(r.get(12)?),
        started_at: ts(r.get(13)?),
        completed_at: ts(r.get(14)?),
        timeout: None,
        retry: None,
        progress: text_or_null(r, 17)?.map(serde_json::from_str::<Progress>).transpose()?.map(Box::new),
        result: None,
        errors: Vec::new(),
        history: Vec::new(),
    };
    let lease = match (r.get::<_, Option<String>>(15)?, r.get::<_, Option<i64>>(16)?) {
        (Some(o), Some(u)) => Some((Arc::from(o), Timestamp::from_micros(u))),
        _ => None,
    };
    let row = StoredRow { request, seq: r.get(2)?, lease };
    let before = hot_values(&row.request, row.seq, row.lease.as_ref())?;
    Ok(Loaded { rowid: r.get(0)?, row, before })
}

/// The skeleton of request `id`, if it exists.
pub(crate) fn load_skeleton(conn: &Connection, id: RequestId) -> Result<Option<Loaded>, Error> {
    let mut stmt = conn.prepare_cached(concat!("SELECT ", skeleton_columns!(), " FROM requests WHERE id = ?1"))?;
    let mut rows = stmt.query([id_blob(id)])?;
    rows.next()?.map(read_skeleton).transpose()
}

/// The skeleton of the request in row `rowid`, with the parameters, timeout and retry policy
/// a claim hands out.
pub(crate) fn load_for_claim(conn: &Connection, rowid: i64) -> Result<Option<Loaded>, Error> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        skeleton_columns!(),
        ", parameters, extra FROM requests WHERE rowid = ?1"
    ))?;
    let mut rows = stmt.query([rowid])?;
    let Some(r) = rows.next()? else { return Ok(None) };
    let mut loaded = read_skeleton(r)?;
    let request = &mut loaded.row.request;
    request.parameters = Arc::new(serde_json::from_str(text(r, SKELETON_LEN)?)?);
    if let Some(extra) = text_or_null(r, SKELETON_LEN + 1)? {
        let e: Extra = serde_json::from_str(extra)?;
        request.timeout = e.timeout;
        request.retry = e.retry;
    }
    Ok(Some(loaded))
}

/// Writes back a skeleton after a state change: the changing columns whose value differs from
/// what was loaded, and the history and errors the change appended. Afterwards the skeleton
/// is again as it would be read back (values as written, nothing left to append), ready for
/// the next change.
pub(crate) fn update_row(conn: &Connection, loaded: &mut Loaded) -> Result<(), Error> {
    let after = hot_values(&loaded.row.request, loaded.row.seq, loaded.row.lease.as_ref())?;
    let r = &loaded.row.request;
    let history = encode_history(&r.history)?;
    let errors = encode_lines(&r.errors)?;
    // Which columns change, as bits: HOT in order, then history, then errors.
    let mut mask = 0u32;
    let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(HOT.len() + 3);
    for (i, (new, old)) in after.iter().zip(&loaded.before).enumerate() {
        if new != old {
            mask |= 1 << i;
            args.push(new);
        }
    }
    for (i, appended) in [&history, &errors].into_iter().enumerate() {
        if let Some(text) = appended {
            mask |= 1 << (HOT.len() + i);
            args.push(text);
        }
    }
    if !args.is_empty() {
        args.push(&loaded.rowid);
        let sql = UPDATE_SQL.with_borrow_mut(|cache| cache.entry(mask).or_insert_with(|| update_sql(mask)).clone());
        conn.prepare_cached(&sql)?.execute(args.as_slice())?;
    }
    loaded.before = after;
    let r = &mut loaded.row.request;
    r.history.clear();
    r.errors.clear();
    Ok(())
}

thread_local! {
    /// The `UPDATE` of each set of changed columns, built once (only the writer thread
    /// updates, and transitions change a handful of distinct sets).
    static UPDATE_SQL: RefCell<HashMap<u32, Rc<str>>> = RefCell::new(HashMap::new());
}

/// The `UPDATE` setting the columns of `mask` (see [`update_row`]) from `?1`, `?2`, ... in
/// order, the row id last.
fn update_sql(mask: u32) -> Rc<str> {
    let mut sql = String::from("UPDATE OR FAIL requests SET ");
    let mut n = 0;
    let appended = ["history", "errors"];
    for i in 0..HOT.len() + appended.len() {
        if mask & (1 << i) == 0 {
            continue;
        }
        if n > 0 {
            sql.push_str(", ");
        }
        n += 1;
        match HOT.get(i) {
            Some(column) => {
                let _ = write!(sql, "{column} = ?{n}");
            }
            None => {
                let column = appended[i - HOT.len()];
                let _ = write!(sql, "{column} = ifnull({column}, '') || ?{n}");
            }
        }
    }
    let _ = write!(sql, " WHERE rowid = ?{}", n + 1);
    Rc::from(sql)
}

/// The values of the [`HOT`] columns for `row`.
fn hot_values(r: &Request, seq: i64, lease: Option<&(Arc<str>, Timestamp)>) -> Result<HotValues, Error> {
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
    let (owner, until) = match lease {
        Some((o, u)) => (Some(o.to_string()), Some(u.as_micros())),
        None => (None, None),
    };
    let int = |v: Option<i64>| v.map_or(Sql::Null, Sql::Integer);
    let text = |v: Option<String>| v.map_or(Sql::Null, Sql::Text);
    Ok([
        Sql::Integer(seq),
        Sql::Integer(i64::from(r.status as u8)),
        Sql::Integer(i64::from(r.attempts)),
        text(r.bank_id.as_deref().map(String::from)),
        text(r.worker_id.as_deref().map(String::from)),
        Sql::Integer(r.updated_at.as_micros()),
        int(run_at),
        int(micros(r.assigned_at)),
        int(micros(r.started_at)),
        int(micros(r.completed_at)),
        int(finished_at),
        int(processing_us),
        text(owner),
        int(until),
        text(json_opt(r.progress.as_deref())?),
        text(json_opt(r.result.as_deref())?),
    ])
}

/// Adds `?3` to the counter of status `?1` and task `?2`.
pub(crate) fn count_sql() -> &'static str {
    "INSERT INTO status_counts (status, task_id, count) VALUES (?1, ?2, ?3)
     ON CONFLICT (status, task_id) DO UPDATE SET count = count + excluded.count"
}

/// Debug builds: panics unless `cached` (from the writer's cache) equals the row as the file
/// holds it, read as a claim (`claimable`) or a transition would read it. Every test that
/// writes through the store checks the cache this way.
#[cfg(debug_assertions)]
pub(crate) fn check_cached(conn: &Connection, cached: &Loaded, claimable: bool) -> Result<(), Error> {
    let stored = if claimable {
        load_for_claim(conn, cached.rowid)?
    } else {
        load_skeleton(conn, cached.row.request.request_id)?
    };
    let Some(stored) = stored else { panic!("cached row {} is not in the file", cached.rowid) };
    assert_eq!(stored.rowid, cached.rowid, "cached row id");
    assert_eq!(stored.row.request, cached.row.request, "cached skeleton of row {}", cached.rowid);
    assert_eq!(stored.row.seq, cached.row.seq, "cached seq of row {}", cached.rowid);
    assert_eq!(stored.row.lease, cached.row.lease, "cached lease of row {}", cached.rowid);
    assert_eq!(stored.before, cached.before, "cached column values of row {}", cached.rowid);
    Ok(())
}
