//! The mutating operations, run by the writer thread inside a batch transaction.
//!
//! Every state change loads the row, runs [`apply_transition`] or [`apply_claim`] on the request
//! as stored, and writes it back. The writer is the only connection that writes and runs one
//! batch at a time, so the compare-and-set in [`apply_transition`] sees the latest state.

use std::sync::Arc;

use atmo_core::{
    Applied, ApplyOutcome, Change, ClaimParams, Claimed, InsertOutcome, Promoted, Request, RequestId, RequestStatus,
    RetentionParams, Timestamp, Transition, TransitionRejected, apply_claim, apply_transition,
};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::error::Error;
use crate::row::{StoredRow, id_blob, id_from_blob, load_row, write_row};
use crate::runtime::WriteCtx;

const RUNNING: &str = "(2, 3)";

// ===== insert =====

pub(crate) fn insert_many(ctx: &mut WriteCtx<'_>, requests: Vec<Request>) -> Result<Vec<InsertOutcome>, Error> {
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
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
        let exists =
            ctx.conn.prepare_cached("SELECT 1 FROM requests WHERE id = ?1")?.exists([id_blob(r.request_id)])?;
        if exists {
            // A client retrying a batch that did reach the store names the stored request.
            out.push(InsertOutcome::Duplicate(r.request_id));
            continue;
        }
        let seq =
            if matches!(r.status, RequestStatus::Pending | RequestStatus::Scheduled) { ctx.next_seq() } else { 0 };
        // A running request (an import) has no live worker here: an expired lease lets the
        // rescuer return it.
        let lease = r.status.is_running().then(|| (Arc::<str>::from(""), Timestamp::EPOCH));
        let row = StoredRow { request: r, seq, lease };
        write_row(ctx.conn, &row, true)?;
        out.push(InsertOutcome::Inserted(row.request.request_id));
    }
    Ok(out)
}

// ===== claim =====

pub(crate) fn claim(ctx: &mut WriteCtx<'_>, p: &ClaimParams) -> Result<Vec<Claimed>, Error> {
    if p.limit == 0 || p.task_ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; p.task_ids.len()].join(", ");
    let sql = format!(
        "SELECT id FROM requests WHERE status = 0 AND task_id IN ({marks}) ORDER BY priority DESC, seq LIMIT {}",
        i64::try_from(p.limit).unwrap_or(i64::MAX)
    );
    let ids = select_ids(ctx.conn, &sql, params_from_iter(p.task_ids.iter().map(|t| &**t)))?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(mut row) = load_row(ctx.conn, id)? else { continue };
        if apply_claim(&mut row.request, &p.bank_id, p.now).is_err() {
            continue;
        }
        row.lease = Some((p.owner.clone(), p.lease_until));
        write_row(ctx.conn, &row, false)?;
        out.push(Claimed::from(&row.request));
    }
    Ok(out)
}

// ===== transitions =====

pub(crate) fn apply(ctx: &mut WriteCtx<'_>, transitions: &[Transition]) -> Result<Vec<ApplyOutcome>, Error> {
    transitions.iter().map(|t| apply_one(ctx, t)).collect()
}

/// Applies one transition; `Ok(Err(_))` is a rejection, `Err(_)` a database failure.
fn apply_one(ctx: &mut WriteCtx<'_>, t: &Transition) -> Result<ApplyOutcome, Error> {
    let Some(mut row) = load_row(ctx.conn, t.id())? else {
        return Ok(Err(TransitionRejected::NotFound));
    };
    let from = match apply_transition(&mut row.request, t) {
        Ok(from) => from,
        Err(rejected) => return Ok(Err(rejected)),
    };
    let r = &row.request;
    let to = r.status;
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
    write_row(ctx.conn, &row, false)?;
    let r = &row.request;
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

// ===== schedule =====

pub(crate) fn promote_scheduled(ctx: &mut WriteCtx<'_>, now: Timestamp, limit: usize) -> Result<Vec<Promoted>, Error> {
    let sql = format!(
        "SELECT id FROM requests WHERE status = 1 AND run_at <= ?1 ORDER BY run_at, seq LIMIT {}",
        i64::try_from(limit).unwrap_or(i64::MAX)
    );
    let ids = select_ids(ctx.conn, &sql, [now.as_micros()])?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(attempt) = attempts_of(ctx.conn, id)? else { continue };
        if apply_one(ctx, &Transition::promote(id, attempt, now))?.is_ok() {
            out.push(Promoted { id, attempt });
        }
    }
    Ok(out)
}

// ===== leases =====

pub(crate) fn heartbeat(ctx: &mut WriteCtx<'_>, owner: &str, until: Timestamp) -> Result<usize, Error> {
    let sql = format!("UPDATE requests SET lease_until = ?1 WHERE lease_owner = ?2 AND status IN {RUNNING}");
    Ok(ctx.conn.prepare_cached(&sql)?.execute(params![until.as_micros(), owner])?)
}

pub(crate) fn rescue_expired(ctx: &mut WriteCtx<'_>, now: Timestamp, limit: usize) -> Result<Vec<RequestId>, Error> {
    // Most overdue first, so a small `limit` rescues the oldest losses.
    let sql = format!(
        "SELECT id FROM requests WHERE lease_until < ?1 AND status IN {RUNNING} ORDER BY lease_until, id LIMIT {}",
        i64::try_from(limit).unwrap_or(i64::MAX)
    );
    let ids = select_ids(ctx.conn, &sql, [now.as_micros()])?;
    rescue(ctx, ids, "lease expired", now)
}

pub(crate) fn rescue_owner(
    ctx: &mut WriteCtx<'_>,
    owner: &str,
    now: Timestamp,
    reason: &'static str,
) -> Result<Vec<RequestId>, Error> {
    let sql = format!("SELECT id FROM requests WHERE lease_owner = ?1 AND status IN {RUNNING} ORDER BY rowid");
    let ids = select_ids(ctx.conn, &sql, [owner])?;
    rescue(ctx, ids, reason, now)
}

pub(crate) fn rescue_all_running(
    ctx: &mut WriteCtx<'_>,
    now: Timestamp,
    reason: &'static str,
) -> Result<Vec<RequestId>, Error> {
    let sql = format!("SELECT id FROM requests WHERE status IN {RUNNING} ORDER BY rowid");
    let ids = select_ids(ctx.conn, &sql, [])?;
    rescue(ctx, ids, reason, now)
}

fn rescue(
    ctx: &mut WriteCtx<'_>,
    ids: Vec<RequestId>,
    reason: &'static str,
    now: Timestamp,
) -> Result<Vec<RequestId>, Error> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(attempt) = attempts_of(ctx.conn, id)? else { continue };
        if apply_one(ctx, &Transition::rescue(id, attempt, reason, now))?.is_ok() {
            out.push(id);
        } else {
            // A lease on a request that is not running would be rescued forever.
            ctx.conn
                .prepare_cached("UPDATE requests SET lease_owner = NULL, lease_until = NULL WHERE id = ?1")?
                .execute([id_blob(id)])?;
        }
    }
    Ok(out)
}

// ===== retention =====

pub(crate) fn delete_finished(ctx: &mut WriteCtx<'_>, p: &RetentionParams) -> Result<usize, Error> {
    let total: i64 =
        ctx.conn.query_row("SELECT count(*) FROM requests WHERE finished_at IS NOT NULL", [], |r| r.get(0))?;
    let mut excess = p.max_finished.map_or(0, |max| total.saturating_sub(i64::try_from(max).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT id, finished_at FROM requests WHERE finished_at IS NOT NULL ORDER BY finished_at, id LIMIT {}",
        i64::try_from(p.batch_limit).unwrap_or(i64::MAX)
    );
    let mut stmt = ctx.conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
    let mut doomed = Vec::new();
    for row in rows {
        let (blob, finished_at) = row?;
        if excess <= 0 && finished_at >= p.finished_before.as_micros() {
            break;
        }
        excess -= 1;
        doomed.push(blob);
    }
    drop(stmt);
    let mut del = ctx.conn.prepare_cached("DELETE FROM requests WHERE id = ?1")?;
    for blob in &doomed {
        del.execute([blob])?;
    }
    Ok(doomed.len())
}

// ===== helpers =====

fn select_ids(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<RequestId>, Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let blobs = stmt.query_map(params, |r| r.get::<_, Vec<u8>>(0))?.collect::<Result<Vec<_>, _>>()?;
    blobs.iter().map(|b| id_from_blob(b)).collect()
}

fn attempts_of(conn: &Connection, id: RequestId) -> Result<Option<u32>, Error> {
    Ok(conn
        .prepare_cached("SELECT attempts FROM requests WHERE id = ?1")?
        .query_row([id_blob(id)], |r| r.get::<_, u32>(0))
        .optional()?)
}
