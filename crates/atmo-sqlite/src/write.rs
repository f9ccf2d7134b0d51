//! The mutating operations, run by the writer thread inside a batch transaction.
//!
//! Every state change loads the row's skeleton (see `row.rs`), runs [`apply_transition`] or
//! [`apply_claim`] on it, and writes back the columns that changed. The writer is the only
//! connection that writes and runs one batch at a time, so the compare-and-set in
//! [`apply_transition`] sees the latest state. Every change of status is also recorded in the
//! batch's counts (`status_counts`).

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use atmo_core::{
    Applied, ApplyOutcome, Change, ClaimParams, Claimed, InsertOutcome, Promoted, Request, RequestId, RequestStatus,
    RetentionParams, StoreError, Timestamp, Transition, TransitionRejected, apply_claim, apply_transition,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::cache::Cached;
use crate::error::Error;
use crate::row::{
    EncodedRow, Loaded, id_from_blob, insert_row, inserted_skeleton, load_for_claim, load_skeleton, read_skeleton,
    skeleton_columns, update_row,
};
use crate::runtime::WriteCtx;

const RUNNING: &str = "(2, 3)";
/// The first terminal status: `status >= TERMINAL` is "finished".
const TERMINAL: u8 = RequestStatus::Completed as u8;

// ===== insert =====

/// Inserts `requests`, encoded as `encoded` (one each, in order).
pub(crate) fn insert_many(
    ctx: &mut WriteCtx<'_>,
    requests: &[Request],
    encoded: &[EncodedRow],
) -> Result<Vec<InsertOutcome>, Error> {
    let mut out = Vec::with_capacity(requests.len());
    for (r, e) in requests.iter().zip(encoded) {
        if let Some(key) = r.idempotency_key.as_deref() {
            let existing: Option<Vec<u8>> = ctx
                .conn
                .prepare_cached("SELECT id FROM requests WHERE idempotency_key = ?1")?
                .query_row([key], |row| row.get(0))
                .optional()?;
            if let Some(blob) = existing {
                out.push(InsertOutcome::Duplicate(id_from_blob(&blob)?));
                continue;
            }
        }
        let seq =
            if matches!(r.status, RequestStatus::Pending | RequestStatus::Scheduled) { ctx.next_seq() } else { 0 };
        let hot = match insert_row(ctx.conn, r, e, seq) {
            Ok(hot) => hot,
            // The id is taken (the primary key refused the row, which `OR FAIL` leaves
            // unwritten): a client retrying a batch that did reach the store names the stored
            // request. Asking the primary key first would cost a lookup per insert.
            Err(Error::Sqlite(rusqlite::Error::SqliteFailure(err, _)))
                if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                out.push(InsertOutcome::Duplicate(r.request_id));
                continue;
            }
            Err(other) => return Err(other),
        };
        let rowid = ctx.conn.last_insert_rowid();
        ctx.cache.put(inserted_skeleton(r, rowid, seq, e.lease.clone(), hot), true);
        ctx.count(r.status, &r.task_id, 1);
        out.push(InsertOutcome::Inserted(r.request_id));
    }
    Ok(out)
}

// ===== claim =====

pub(crate) fn claim(ctx: &mut WriteCtx<'_>, p: &ClaimParams) -> Result<Vec<Claimed>, Error> {
    if p.limit == 0 || p.task_ids.is_empty() {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(p.limit).unwrap_or(i64::MAX);
    // One walk of the pending index per task, each in claim order and stopping at `limit`
    // (a single `task_id IN (...)` query would sort every pending request of the tasks), then
    // the best `limit` of them.
    let mut tasks: Vec<&str> = p.task_ids.iter().map(|t| &**t).collect();
    tasks.sort_unstable();
    tasks.dedup();
    let mut picked: Vec<(i64, i64, i64)> = Vec::new();
    {
        let mut stmt = ctx.conn.prepare_cached(
            "SELECT priority, seq, rowid FROM requests WHERE status = 0 AND task_id = ?1
             ORDER BY priority DESC, seq LIMIT ?2",
        )?;
        for &task in &tasks {
            let mut rows = stmt.query(params![task, limit])?;
            while let Some(r) = rows.next()? {
                picked.push((r.get(0)?, r.get(1)?, r.get(2)?));
            }
        }
    }
    if tasks.len() > 1 {
        picked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        picked.truncate(p.limit);
    }
    let mut out = Vec::with_capacity(picked.len());
    for (_, _, rowid) in picked {
        let mut loaded = match ctx.cache.take_row(rowid) {
            Some(c) if c.claimable => checked(ctx.conn, c)?.loaded,
            _ => match load_for_claim(ctx.conn, rowid)? {
                Some(l) => l,
                None => continue,
            },
        };
        let from = loaded.row.request.status;
        if apply_claim(&mut loaded.row.request, &p.bank_id, p.now).is_err() {
            continue;
        }
        loaded.row.lease = Some((p.owner.clone(), p.lease_until));
        update_row(ctx.conn, &mut loaded)?;
        count_move(ctx, &loaded.row.request, from);
        out.push(Claimed::from(&loaded.row.request));
        ctx.cache.put(loaded, true);
    }
    Ok(out)
}

// ===== transitions =====

pub(crate) fn apply(ctx: &mut WriteCtx<'_>, transitions: &[Transition]) -> Result<Vec<ApplyOutcome>, Error> {
    // A request with several transitions in the call (a start and its completion, reported
    // together) is loaded once and written once, with every change it went through.
    // Each loaded row, and whether it came from the cache with a claim's fields.
    let mut loaded: Vec<(Loaded, bool)> = Vec::new();
    let mut slot: HashMap<RequestId, usize> = HashMap::default();
    let mut out = Vec::with_capacity(transitions.len());
    for t in transitions {
        let i = match slot.get(&t.id()) {
            Some(&i) => i,
            None => {
                let l = match ctx.cache.take_id(t.id()) {
                    Some(c) => {
                        let c = checked(ctx.conn, c)?;
                        (c.loaded, c.claimable)
                    }
                    None => match load_skeleton(ctx.conn, t.id())? {
                        Some(l) => (l, false),
                        None => {
                            out.push(Err(TransitionRejected::NotFound));
                            continue;
                        }
                    },
                };
                loaded.push(l);
                slot.insert(t.id(), loaded.len() - 1);
                loaded.len() - 1
            }
        };
        out.push(transition(ctx, &mut loaded[i].0, t)?);
    }
    for (mut l, claimable) in loaded {
        update_row(ctx.conn, &mut l)?;
        ctx.cache.put(l, claimable);
    }
    Ok(out)
}

/// Applies one transition to a loaded skeleton, in memory (the caller writes the row);
/// `Ok(Err(_))` is a rejection, `Err(_)` a database failure.
fn transition(ctx: &mut WriteCtx<'_>, loaded: &mut Loaded, t: &Transition) -> Result<ApplyOutcome, Error> {
    let row = &mut loaded.row;
    let from = match apply_transition(&mut row.request, t) {
        Ok(from) => from,
        Err(rejected) => return Ok(Err(rejected)),
    };
    let to = row.request.status;
    if from != to && matches!(to, RequestStatus::Pending | RequestStatus::Scheduled) {
        row.seq = ctx.next_seq();
    }
    if !to.is_running() {
        row.lease = None;
    }
    if let Change::Fail { error } | Change::TimeOut { error } | Change::Retry { error, .. } = t.change() {
        ctx.conn
            .prepare_cached(
                "INSERT INTO error_counts (code, count, last_message) VALUES (?1, 1, ?2)
                 ON CONFLICT (code) DO UPDATE SET count = count + 1, last_message = excluded.last_message",
            )?
            .execute(params![error.code, error.message])?;
    }
    let r = &loaded.row.request;
    count_move(ctx, r, from);
    Ok(Ok(Applied {
        id: r.request_id,
        from,
        to,
        attempt: r.attempts,
        task_id: r.task_id.clone(),
        bank_id: r.bank_id.clone(),
        worker_id: r.worker_id.clone(),
        started_at: r.started_at,
    }))
}

/// Applies one transition to a loaded skeleton and writes the row.
/// The row was read from the file, so whatever the cache held of it is dropped.
fn apply_loaded(ctx: &mut WriteCtx<'_>, mut loaded: Loaded, t: &Transition) -> Result<ApplyOutcome, Error> {
    ctx.cache.forget(loaded.rowid);
    let outcome = transition(ctx, &mut loaded, t)?;
    if outcome.is_ok() {
        update_row(ctx.conn, &mut loaded)?;
    }
    Ok(outcome)
}

/// Moves `r` from `from` to its status in the counters.
fn count_move(ctx: &mut WriteCtx<'_>, r: &Request, from: RequestStatus) {
    if from != r.status {
        ctx.count(from, &r.task_id, -1);
        ctx.count(r.status, &r.task_id, 1);
    }
}

// ===== schedule =====

pub(crate) fn promote_scheduled(ctx: &mut WriteCtx<'_>, now: Timestamp, limit: usize) -> Result<Vec<Promoted>, Error> {
    let sql = format!(
        "SELECT {cols} FROM requests WHERE status = 1 AND run_at <= ?1 ORDER BY run_at, seq LIMIT {}",
        i64::try_from(limit).unwrap_or(i64::MAX),
        cols = skeleton_columns!()
    );
    let rows = select_skeletons(ctx.conn, &sql, [now.as_micros()])?;
    let mut out = Vec::with_capacity(rows.len());
    for loaded in rows {
        let (id, attempt) = (loaded.row.request.request_id, loaded.row.request.attempts);
        if apply_loaded(ctx, loaded, &Transition::promote(id, attempt, now))?.is_ok() {
            out.push(Promoted { id, attempt });
        }
    }
    Ok(out)
}

// ===== leases =====

// Every lease query says `lease_until IS NOT NULL` so that it can use the partial index of
// leases: every assigned or processing request holds a lease (a claim or an import gives it
// one; only leaving those states takes it away), and nothing else does. (`+rowid` sorts the
// few rows found instead of walking the whole table in rowid order.)

pub(crate) fn heartbeat(ctx: &mut WriteCtx<'_>, owner: &str, until: Timestamp) -> Result<usize, Error> {
    let sql = format!(
        "UPDATE requests SET lease_until = ?1
         WHERE lease_until IS NOT NULL AND lease_owner = ?2 AND status IN {RUNNING}"
    );
    // The cache holds the leases as they were.
    ctx.cache.clear();
    Ok(ctx.conn.prepare_cached(&sql)?.execute(params![until.as_micros(), owner])?)
}

pub(crate) fn rescue_expired(ctx: &mut WriteCtx<'_>, now: Timestamp, limit: usize) -> Result<Vec<RequestId>, Error> {
    // Most overdue first, so a small `limit` rescues the oldest losses.
    let sql = format!(
        "SELECT {cols} FROM requests WHERE lease_until < ?1 AND status IN {RUNNING}
         ORDER BY lease_until, id LIMIT {}",
        i64::try_from(limit).unwrap_or(i64::MAX),
        cols = skeleton_columns!()
    );
    let rows = select_skeletons(ctx.conn, &sql, [now.as_micros()])?;
    rescue(ctx, rows, "lease expired", now)
}

pub(crate) fn rescue_owner(
    ctx: &mut WriteCtx<'_>,
    owner: &str,
    now: Timestamp,
    reason: &'static str,
) -> Result<Vec<RequestId>, Error> {
    let sql = format!(
        "SELECT {cols} FROM requests
         WHERE lease_until IS NOT NULL AND lease_owner = ?1 AND status IN {RUNNING} ORDER BY +rowid",
        cols = skeleton_columns!()
    );
    let rows = select_skeletons(ctx.conn, &sql, [owner])?;
    rescue(ctx, rows, reason, now)
}

pub(crate) fn rescue_all_running(
    ctx: &mut WriteCtx<'_>,
    now: Timestamp,
    reason: &'static str,
) -> Result<Vec<RequestId>, Error> {
    let sql = format!(
        "SELECT {cols} FROM requests WHERE lease_until IS NOT NULL AND status IN {RUNNING} ORDER BY +rowid",
        cols = skeleton_columns!()
    );
    let rows = select_skeletons(ctx.conn, &sql, [])?;
    rescue(ctx, rows, reason, now)
}

fn rescue(
    ctx: &mut WriteCtx<'_>,
    rows: Vec<Loaded>,
    reason: &'static str,
    now: Timestamp,
) -> Result<Vec<RequestId>, Error> {
    let mut out = Vec::with_capacity(rows.len());
    for loaded in rows {
        let (id, attempt, rowid) = (loaded.row.request.request_id, loaded.row.request.attempts, loaded.rowid);
        if apply_loaded(ctx, loaded, &Transition::rescue(id, attempt, reason, now))?.is_ok() {
            out.push(id);
        } else {
            // A lease on a request that is not running would be rescued forever.
            ctx.conn
                .prepare_cached("UPDATE requests SET lease_owner = NULL, lease_until = NULL WHERE rowid = ?1")?
                .execute([rowid])?;
        }
    }
    Ok(out)
}

// ===== retention =====

pub(crate) fn delete_finished(ctx: &mut WriteCtx<'_>, p: &RetentionParams) -> Result<usize, Error> {
    let mut excess = match p.max_finished {
        // The counters give the number of finished requests without scanning them.
        Some(max) => {
            let total: i64 = ctx
                .conn
                .prepare_cached(&format!("SELECT ifnull(sum(count), 0) FROM status_counts WHERE status >= {TERMINAL}"))?
                .query_row([], |r| r.get(0))?;
            total.saturating_sub(i64::try_from(max).unwrap_or(i64::MAX))
        }
        None => 0,
    };
    let sql = format!(
        "SELECT rowid, finished_at, status, task_id FROM requests WHERE finished_at IS NOT NULL
         ORDER BY finished_at, id LIMIT {}",
        i64::try_from(p.batch_limit).unwrap_or(i64::MAX)
    );
    let mut stmt = ctx.conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([])?;
    let mut doomed = Vec::new();
    while let Some(r) = rows.next()? {
        let finished_at: i64 = r.get(1)?;
        if excess <= 0 && finished_at >= p.finished_before.as_micros() {
            break;
        }
        excess -= 1;
        let status = RequestStatus::from_index(r.get(2)?)
            .ok_or_else(|| StoreError::Corrupt("unknown status in the requests table".into()))?;
        doomed.push((r.get::<_, i64>(0)?, status, Arc::<str>::from(r.get::<_, String>(3)?)));
    }
    drop(rows);
    drop(stmt);
    let mut del = ctx.conn.prepare_cached("DELETE FROM requests WHERE rowid = ?1")?;
    for (rowid, status, task) in &doomed {
        ctx.cache.forget(*rowid);
        del.execute([rowid])?;
        ctx.count(*status, task, -1);
    }
    Ok(doomed.len())
}

// ===== helpers =====

/// A row taken from the writer's cache, compared with the file first in debug builds (see
/// [`crate::row::check_cached`]).
fn checked(conn: &Connection, cached: Box<Cached>) -> Result<Box<Cached>, Error> {
    #[cfg(debug_assertions)]
    crate::row::check_cached(conn, &cached.loaded, cached.claimable)?;
    #[cfg(not(debug_assertions))]
    let _ = conn;
    Ok(cached)
}

/// Loads the skeletons a query selects (all of them before any is changed).
fn select_skeletons(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Loaded>, Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(read_skeleton(r)?);
    }
    Ok(out)
}
