//! The mutating operations. Each runs in one transaction, in as few round trips as it can:
//! rows travel as arrays (`unnest`), one statement per step of a batch, whatever its size.
//!
//! Every state change is a compare-and-set: the rows are locked (`FOR UPDATE`, in id order so
//! that two batches cannot deadlock on each other), [`apply_transition`] checks the expected
//! status and attempt on the locked row and changes it in memory, and the batch's rows are
//! written back in one `UPDATE`. A late result of an attempt that was rescued meanwhile finds
//! the row at a newer attempt (or another status) and is rejected, whichever node sends it.
//! Claims pick rows with `FOR UPDATE SKIP LOCKED`, so nodes claiming at once never wait for
//! each other and never take the same request.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use atmo_core::{
    Applied, ApplyOutcome, Change, ClaimParams, Claimed, HistoryEntry, InsertOutcome, Promoted, Request, RequestId,
    RequestStatus, RetentionParams, Timestamp, Transition, TransitionRejected, apply_transition,
};
use deadpool_postgres::{Client, Transaction};
use serde_json::Value;
use tokio_postgres::types::Json;
use uuid::Uuid;

use crate::error::Error;
use crate::row::{
    Extra, Loaded, SKELETON_COLUMNS, finished_at_column, micros, processing_column, read_skeleton, run_at_column,
    status_code, uuid,
};

/// Assigned or processing, as SQL.
const RUNNING: &str = "(2, 3)";

// ===== insert =====

const INSERT_SQL: &str = "
    INSERT INTO requests (id, task_id, priority, client_id, created_at, idempotency_key, parameters, metadata,
        extra, status, attempts, bank_id, worker_id, updated_at, run_at, assigned_at, started_at, completed_at,
        finished_at, processing_us, lease_owner, lease_until, progress, result, errors, history, seq)
    SELECT u.id, u.task_id, u.priority, u.client_id, u.created_at, u.idempotency_key, u.parameters, u.metadata,
        u.extra, u.status, u.attempts, u.bank_id, u.worker_id, u.updated_at, u.run_at, u.assigned_at,
        u.started_at, u.completed_at, u.finished_at, u.processing_us, u.lease_owner, u.lease_until, u.progress,
        u.result, u.errors, u.history,
        CASE WHEN u.status IN (0, 1) THEN nextval('requests_seq') ELSE 0 END
    FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::text[], $5::bigint[], $6::text[], $7::json[],
        $8::json[], $9::json[], $10::smallint[], $11::integer[], $12::text[], $13::text[], $14::bigint[],
        $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::text[],
        $22::bigint[], $23::json[], $24::json[], $25::jsonb[], $26::jsonb[])
        WITH ORDINALITY AS u(id, task_id, priority, client_id, created_at, idempotency_key, parameters, metadata,
        extra, status, attempts, bank_id, worker_id, updated_at, run_at, assigned_at, started_at, completed_at,
        finished_at, processing_us, lease_owner, lease_until, progress, result, errors, history, ord)
    ORDER BY u.ord
    ON CONFLICT DO NOTHING
    RETURNING id";

/// Inserts `requests` in one statement; the first of several requests with one idempotency
/// key is stored, the others (and any whose key or id is already stored) name the stored one.
pub(crate) async fn insert_many(client: &Client, requests: &[Request]) -> Result<Vec<InsertOutcome>, Error> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let n = requests.len();
    let mut ids = Vec::with_capacity(n);
    let mut task = Vec::with_capacity(n);
    let mut priority = Vec::with_capacity(n);
    let mut client_id = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut key = Vec::with_capacity(n);
    let mut params = Vec::with_capacity(n);
    let mut meta = Vec::with_capacity(n);
    let mut extra = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut bank = Vec::with_capacity(n);
    let mut worker = Vec::with_capacity(n);
    let mut updated = Vec::with_capacity(n);
    let mut run_at = Vec::with_capacity(n);
    let mut assigned = Vec::with_capacity(n);
    let mut started = Vec::with_capacity(n);
    let mut completed = Vec::with_capacity(n);
    let mut finished = Vec::with_capacity(n);
    let mut processing = Vec::with_capacity(n);
    let mut owner = Vec::with_capacity(n);
    let mut until = Vec::with_capacity(n);
    let mut progress = Vec::with_capacity(n);
    let mut result = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut history = Vec::with_capacity(n);
    for r in requests {
        ids.push(uuid(r.request_id));
        task.push(&*r.task_id);
        priority.push(i16::from(r.priority));
        client_id.push(r.client_id.as_deref());
        created.push(r.created_at.as_micros());
        key.push(r.idempotency_key.as_deref());
        params.push(Json(&*r.parameters));
        meta.push(r.metadata.as_deref().map(Json));
        extra.push(Extra::of(r).map(Json));
        status.push(status_code(r.status));
        attempts.push(i32::try_from(r.attempts).unwrap_or(i32::MAX));
        bank.push(r.bank_id.as_deref());
        worker.push(r.worker_id.as_deref());
        updated.push(r.updated_at.as_micros());
        run_at.push(run_at_column(r));
        assigned.push(micros(r.assigned_at));
        started.push(micros(r.started_at));
        completed.push(micros(r.completed_at));
        finished.push(finished_at_column(r));
        processing.push(processing_column(r));
        // A running request (an import) has no live worker here: an expired lease lets the
        // rescuer return it.
        let running = r.status.is_running();
        owner.push(running.then_some(""));
        until.push(running.then_some(0i64));
        progress.push(r.progress.as_deref().map(Json));
        result.push(r.result.as_deref().map(Json));
        errors.push(Json(&r.errors));
        history.push(Json(&r.history));
    }
    let stmt = client.prepare_cached(INSERT_SQL).await?;
    let rows = client
        .query(
            &stmt,
            &[
                &ids,
                &task,
                &priority,
                &client_id,
                &created,
                &key,
                &params,
                &meta,
                &extra,
                &status,
                &attempts,
                &bank,
                &worker,
                &updated,
                &run_at,
                &assigned,
                &started,
                &completed,
                &finished,
                &processing,
                &owner,
                &until,
                &progress,
                &result,
                &errors,
                &history,
            ],
        )
        .await?;
    let inserted: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    // Who holds the keys of the requests that were not stored.
    let missing_keys: Vec<&str> = requests
        .iter()
        .filter(|r| !inserted.contains(&uuid(r.request_id)))
        .filter_map(|r| r.idempotency_key.as_deref())
        .collect();
    let mut holders: HashMap<String, Uuid> = HashMap::new();
    if !missing_keys.is_empty() {
        let stmt =
            client.prepare_cached("SELECT idempotency_key, id FROM requests WHERE idempotency_key = ANY($1)").await?;
        for row in client.query(&stmt, &[&missing_keys]).await? {
            holders.insert(row.get(0), row.get(1));
        }
    }
    Ok(requests
        .iter()
        .map(|r| {
            let id = uuid(r.request_id);
            if inserted.contains(&id) {
                return InsertOutcome::Inserted(r.request_id);
            }
            // Refused by the key (its holder) or by the id (a client retrying a batch that
            // did reach the store: the stored request).
            let holder = r.idempotency_key.as_deref().and_then(|k| holders.get(k)).copied().unwrap_or(id);
            InsertOutcome::Duplicate(RequestId::from_uuid(holder))
        })
        .collect())
}

// ===== claim =====

const CLAIM_SQL: &str = "
    WITH picked AS (
        SELECT id FROM requests
        WHERE status = 0 AND task_id = ANY($1)
        ORDER BY priority DESC, seq
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    UPDATE requests r SET
        status = 2, attempts = r.attempts + 1, bank_id = $3, worker_id = NULL, assigned_at = $4,
        started_at = NULL, updated_at = $4, lease_owner = $5, lease_until = $6,
        history = r.history || jsonb_build_array(jsonb_set($7::jsonb, '{attempt}', to_jsonb(r.attempts + 1)))
    FROM picked WHERE r.id = picked.id
    RETURNING r.id, r.task_id, r.parameters, r.attempts, r.priority, r.extra, r.seq";

/// Claims in one statement: the rows are picked under `SKIP LOCKED` and changed as
/// [`atmo_core::apply_claim`] changes a request (pending to assigned, attempt counted, bank
/// recorded, the same history entry).
pub(crate) async fn claim(client: &Client, p: &ClaimParams) -> Result<Vec<Claimed>, Error> {
    if p.limit == 0 || p.task_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut tasks: Vec<&str> = p.task_ids.iter().map(|t| &**t).collect();
    tasks.sort_unstable();
    tasks.dedup();
    let limit = i64::try_from(p.limit).unwrap_or(i64::MAX);
    // The entry `apply_claim` appends, encoded by serde; SQL sets its attempt per row.
    let entry = serde_json::to_value(HistoryEntry {
        from: Some(RequestStatus::Pending),
        to: RequestStatus::Assigned,
        at: p.now,
        reason: "claimed by bank".into(),
        bank_id: Some(p.bank_id.clone()),
        worker_id: None,
        attempt: 0,
    })?;
    let now = p.now.as_micros();
    let stmt = client.prepare_cached(CLAIM_SQL).await?;
    let rows = client
        .query(&stmt, &[&tasks, &limit, &&*p.bank_id, &now, &&*p.owner, &p.lease_until.as_micros(), &entry])
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let extra: Option<Extra> = r.try_get::<_, Option<Value>>(5)?.map(serde_json::from_value).transpose()?;
        let (timeout, retry) = extra.map_or((None, None), |e| (e.timeout, e.retry));
        let priority: i16 = r.try_get(4)?;
        let attempts: i32 = r.try_get(3)?;
        let seq: i64 = r.try_get(6)?;
        out.push((
            seq,
            Claimed {
                request_id: RequestId::from_uuid(r.try_get(0)?),
                task_id: Arc::from(r.try_get::<_, &str>(1)?),
                parameters: Arc::new(r.try_get(2)?),
                attempt: u32::try_from(attempts).unwrap_or(0),
                priority: u8::try_from(priority).unwrap_or(0),
                timeout,
                retry,
            },
        ));
    }
    // `RETURNING` has no order: claim order is priority, then queue order.
    out.sort_unstable_by(|(sa, a), (sb, b)| b.priority.cmp(&a.priority).then(sa.cmp(sb)));
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

// ===== transitions =====

/// Applies `transitions` in order in one transaction: one statement locks and loads every row
/// they name, one writes back those that changed.
pub(crate) async fn apply(client: &mut Client, transitions: &[Transition]) -> Result<Vec<ApplyOutcome>, Error> {
    if transitions.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<Uuid> = transitions.iter().map(|t| uuid(t.id())).collect();
    ids.sort_unstable();
    ids.dedup();
    let tx = client.transaction().await?;
    let sql = format!("SELECT {SKELETON_COLUMNS} FROM requests WHERE id = ANY($1) ORDER BY id FOR UPDATE");
    let stmt = tx.prepare_cached(&sql).await?;
    let mut rows: BTreeMap<RequestId, Changed> = BTreeMap::new();
    for r in tx.query(&stmt, &[&ids]).await? {
        let loaded = read_skeleton(&r)?;
        rows.insert(loaded.request.request_id, Changed::new(loaded));
    }
    let mut out = Vec::with_capacity(transitions.len());
    let mut errors = ErrorCounts::default();
    for t in transitions {
        match rows.get_mut(&t.id()) {
            Some(row) => out.push(row.apply(t, &mut errors)),
            None => out.push(Err(TransitionRejected::NotFound)),
        }
    }
    write_back(&tx, rows.into_values().filter(|c| c.dirty).collect()).await?;
    errors.write(&tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// A loaded row and what happened to it in this batch.
struct Changed {
    loaded: Loaded,
    /// Whether a transition took effect.
    dirty: bool,
    /// Whether it (re-)entered a queue (pending or scheduled) and takes a new queue position.
    renew_seq: bool,
}

impl Changed {
    fn new(loaded: Loaded) -> Self {
        Changed { loaded, dirty: false, renew_seq: false }
    }

    fn apply(&mut self, t: &Transition, errors: &mut ErrorCounts) -> ApplyOutcome {
        let r = &mut self.loaded.request;
        let from = apply_transition(r, t)?;
        let to = r.status;
        self.dirty = true;
        if from != to && matches!(to, RequestStatus::Pending | RequestStatus::Scheduled) {
            self.renew_seq = true;
        }
        if !to.is_running() {
            self.loaded.lease = None;
        }
        if let Change::Fail { error } | Change::TimeOut { error } | Change::Retry { error, .. } = t.change() {
            errors.add(&error.code, &error.message);
        }
        Ok(Applied {
            id: r.request_id,
            from,
            to,
            attempt: r.attempts,
            task_id: r.task_id.clone(),
            bank_id: r.bank_id.clone(),
            worker_id: r.worker_id.clone(),
            started_at: r.started_at,
        })
    }
}

const WRITE_SQL: &str = "
    WITH u AS MATERIALIZED (
        SELECT u.*, CASE WHEN u.renew THEN nextval('requests_seq') END AS new_seq
        FROM unnest($1::uuid[], $2::smallint[], $3::integer[], $4::text[], $5::text[], $6::bigint[],
            $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[],
            $14::bigint[], $15::json[], $16::json[], $17::jsonb[], $18::jsonb[], $19::boolean[])
            WITH ORDINALITY AS u(id, status, attempts, bank_id, worker_id, updated_at, run_at, assigned_at,
            started_at, completed_at, finished_at, processing_us, lease_owner, lease_until, progress, result,
            errors, history, renew, ord)
        ORDER BY u.ord
    )
    UPDATE requests r SET
        status = u.status, attempts = u.attempts, bank_id = u.bank_id, worker_id = u.worker_id,
        updated_at = u.updated_at, run_at = u.run_at, assigned_at = u.assigned_at, started_at = u.started_at,
        completed_at = u.completed_at, finished_at = u.finished_at, processing_us = u.processing_us,
        lease_owner = u.lease_owner, lease_until = u.lease_until, progress = u.progress,
        result = coalesce(u.result, r.result), seq = coalesce(u.new_seq, r.seq),
        errors = r.errors || u.errors, history = r.history || u.history
    FROM u WHERE r.id = u.id";

/// Writes back the changed rows in one statement: their scalar columns as they are now, and
/// the history entries and errors their transitions appended.
async fn write_back(tx: &Transaction<'_>, rows: Vec<Changed>) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut bank = Vec::with_capacity(n);
    let mut worker = Vec::with_capacity(n);
    let mut updated = Vec::with_capacity(n);
    let mut run_at = Vec::with_capacity(n);
    let mut assigned = Vec::with_capacity(n);
    let mut started = Vec::with_capacity(n);
    let mut completed = Vec::with_capacity(n);
    let mut finished = Vec::with_capacity(n);
    let mut processing = Vec::with_capacity(n);
    let mut owner = Vec::with_capacity(n);
    let mut until = Vec::with_capacity(n);
    let mut progress = Vec::with_capacity(n);
    let mut result = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut history = Vec::with_capacity(n);
    let mut renew = Vec::with_capacity(n);
    for c in &rows {
        let r = &c.loaded.request;
        ids.push(uuid(r.request_id));
        status.push(status_code(r.status));
        attempts.push(i32::try_from(r.attempts).unwrap_or(i32::MAX));
        bank.push(r.bank_id.as_deref());
        worker.push(r.worker_id.as_deref());
        updated.push(r.updated_at.as_micros());
        run_at.push(run_at_column(r));
        assigned.push(micros(r.assigned_at));
        started.push(micros(r.started_at));
        completed.push(micros(r.completed_at));
        finished.push(finished_at_column(r));
        processing.push(processing_column(r));
        owner.push(c.loaded.lease.as_ref().map(|(o, _)| &**o));
        until.push(c.loaded.lease.as_ref().map(|(_, u)| u.as_micros()));
        progress.push(r.progress.as_deref().map(Json));
        result.push(r.result.as_deref().map(Json));
        errors.push(Json(&r.errors));
        history.push(Json(&r.history));
        renew.push(c.renew_seq);
    }
    let stmt = tx.prepare_cached(WRITE_SQL).await?;
    tx.execute(
        &stmt,
        &[
            &ids,
            &status,
            &attempts,
            &bank,
            &worker,
            &updated,
            &run_at,
            &assigned,
            &started,
            &completed,
            &finished,
            &processing,
            &owner,
            &until,
            &progress,
            &result,
            &errors,
            &history,
            &renew,
        ],
    )
    .await?;
    Ok(())
}

/// Error codes recorded by a batch: count and latest message per code.
#[derive(Default)]
struct ErrorCounts(BTreeMap<String, (i64, String)>);

impl ErrorCounts {
    fn add(&mut self, code: &str, message: &str) {
        let e = self.0.entry(code.to_owned()).or_insert((0, String::new()));
        e.0 += 1;
        message.clone_into(&mut e.1);
    }

    /// Adds the batch's counts in one statement, codes in order (so that two batches lock the
    /// counters in the same order).
    async fn write(self, tx: &Transaction<'_>) -> Result<(), Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut codes = Vec::with_capacity(self.0.len());
        let mut counts = Vec::with_capacity(self.0.len());
        let mut messages = Vec::with_capacity(self.0.len());
        for (code, (count, message)) in self.0 {
            codes.push(code);
            counts.push(count);
            messages.push(message);
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO error_counts (code, count, last_message)
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])
                 ON CONFLICT (code) DO UPDATE SET count = error_counts.count + excluded.count,
                     last_message = excluded.last_message",
            )
            .await?;
        tx.execute(&stmt, &[&codes, &counts, &messages]).await?;
        Ok(())
    }
}

/// Locks and loads the rows `where_sql` selects (with `LIMIT` and lock clause), applies the
/// transition `make` gives for each, writes them back; returns the ids and attempts of those
/// that changed, in selection order.
async fn change_selected(
    client: &mut Client,
    where_sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    make: impl Fn(&atmo_core::Request) -> Transition,
) -> Result<Vec<(RequestId, u32)>, Error> {
    let tx = client.transaction().await?;
    let sql = format!("SELECT {SKELETON_COLUMNS} FROM requests WHERE {where_sql}");
    let stmt = tx.prepare_cached(&sql).await?;
    let selected = tx.query(&stmt, params).await?;
    let mut rows = Vec::with_capacity(selected.len());
    let mut out = Vec::with_capacity(selected.len());
    let mut errors = ErrorCounts::default();
    for r in &selected {
        let mut c = Changed::new(read_skeleton(r)?);
        let t = make(&c.loaded.request);
        if c.apply(&t, &mut errors).is_ok() {
            out.push((c.loaded.request.request_id, c.loaded.request.attempts));
            rows.push(c);
        }
    }
    write_back(&tx, rows).await?;
    errors.write(&tx).await?;
    tx.commit().await?;
    Ok(out)
}

// ===== schedule =====

pub(crate) async fn promote_scheduled(
    client: &mut Client,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Promoted>, Error> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = change_selected(
        client,
        "status = 1 AND run_at <= $1 ORDER BY run_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED",
        &[&now.as_micros(), &limit],
        |r| Transition::promote(r.request_id, r.attempts, now),
    )
    .await?;
    Ok(rows.into_iter().map(|(id, attempt)| Promoted { id, attempt }).collect())
}

// ===== leases =====

pub(crate) async fn heartbeat(client: &Client, owner: &str, until: Timestamp) -> Result<usize, Error> {
    let stmt = client
        .prepare_cached(&format!("UPDATE requests SET lease_until = $1 WHERE lease_owner = $2 AND status IN {RUNNING}"))
        .await?;
    let n = client.execute(&stmt, &[&until.as_micros(), &owner]).await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

pub(crate) async fn rescue_expired(client: &mut Client, now: Timestamp, limit: usize) -> Result<Vec<RequestId>, Error> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Most overdue first, so a small `limit` rescues the oldest losses; rows being changed
    // right now (a result arriving) are left to that change.
    let sql =
        format!("lease_until < $1 AND status IN {RUNNING} ORDER BY lease_until, id LIMIT $2 FOR UPDATE SKIP LOCKED");
    let rows = change_selected(client, &sql, &[&now.as_micros(), &limit], |r| {
        Transition::rescue(r.request_id, r.attempts, "lease expired", now)
    })
    .await?;
    Ok(rows.into_iter().map(|(id, _)| id).collect())
}

pub(crate) async fn rescue_owner(
    client: &mut Client,
    owner: &str,
    now: Timestamp,
    reason: &'static str,
) -> Result<Vec<RequestId>, Error> {
    let sql = format!("lease_owner = $1 AND status IN {RUNNING} ORDER BY id FOR UPDATE");
    let rows =
        change_selected(client, &sql, &[&owner], |r| Transition::rescue(r.request_id, r.attempts, reason, now)).await?;
    Ok(rows.into_iter().map(|(id, _)| id).collect())
}

// ===== retention =====

pub(crate) async fn delete_finished(client: &mut Client, p: &RetentionParams) -> Result<usize, Error> {
    if p.batch_limit == 0 {
        return Ok(0);
    }
    let tx = client.transaction().await?;
    let excess: i64 = match p.max_finished {
        Some(max) => {
            let stmt = tx.prepare_cached("SELECT count(*) FROM requests WHERE finished_at IS NOT NULL").await?;
            let total: i64 = tx.query_one(&stmt, &[]).await?.get(0);
            total.saturating_sub(i64::try_from(max).unwrap_or(i64::MAX)).max(0)
        }
        None => 0,
    };
    // The oldest first: those finished before the horizon, and the oldest `excess` beyond the
    // count to keep, which together are a prefix of the finish order.
    let stmt = tx
        .prepare_cached(
            "WITH oldest AS (
                 SELECT id, finished_at, row_number() OVER (ORDER BY finished_at, id) AS n
                 FROM (SELECT id, finished_at FROM requests WHERE finished_at IS NOT NULL
                       ORDER BY finished_at, id LIMIT $3) f
             )
             DELETE FROM requests r USING oldest o
             WHERE r.id = o.id AND (o.finished_at < $1 OR o.n <= $2)",
        )
        .await?;
    let limit = i64::try_from(p.batch_limit).unwrap_or(i64::MAX);
    let n = tx.execute(&stmt, &[&p.finished_before.as_micros(), &excess, &limit]).await?;
    tx.commit().await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
