//! The read operations, answered in SQL on a read connection.
//!
//! Queries use the indexes of `schema.rs`: sorting by creation time or priority, and filtering
//! by client, bank, or finished status (with task), walk an index and stop at the page; sorting
//! by update time has no index (it would be rewritten at every state change), so it sorts the
//! matches. A page's `total` is exact: read from the counters when the query filters by status
//! and task only, counted otherwise.

use atmo_core::{
    Cursor, ErrorCount, LatencySummary, MetricsParams, QueryPage, Request, RequestId, RequestQuery, SortField,
    SortOrder, StoreError, StoreMetrics, Timestamp,
};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params_from_iter};

use crate::error::Error;
use crate::row::{REQUEST_COLUMNS, id_blob, read_request};

pub(crate) fn get(conn: &Connection, id: RequestId) -> Result<Option<Request>, Error> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1"))?;
    let mut rows = stmt.query([id_blob(id)])?;
    rows.next()?.map(read_request).transpose()
}

pub(crate) fn next_scheduled(conn: &Connection) -> Result<Option<Timestamp>, Error> {
    let t: Option<i64> =
        conn.prepare_cached("SELECT min(run_at) FROM requests WHERE status = 1")?.query_row([], |r| r.get(0))?;
    Ok(t.map(Timestamp::from_micros))
}

// ===== query =====

fn sort_column(f: SortField) -> &'static str {
    match f {
        SortField::Created => "created_at",
        SortField::Updated => "updated_at",
        SortField::Priority => "priority",
        SortField::Status => "status",
    }
}

/// The `WHERE` clause of the query's filters and its arguments.
fn filters(q: &RequestQuery) -> Result<(String, Vec<Sql>), Error> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Sql> = Vec::new();
    if !q.status.is_empty() {
        clauses.push(format!("status IN ({})", vec!["?"; q.status.len()].join(", ")));
        args.extend(q.status.iter().map(|s| Sql::Integer(i64::from(*s as u8))));
        if q.status.iter().all(|s| s.is_terminal()) {
            // Implied by the statuses (a row is finished iff terminal); lets SQLite use the
            // partial index of finished requests.
            clauses.push("finished_at IS NOT NULL".into());
        }
    }
    for (column, value) in [("task_id", &q.task_id), ("client_id", &q.client_id), ("bank_id", &q.bank_id)] {
        if let Some(v) = value {
            clauses.push(format!("{column} = ?"));
            args.push(Sql::Text(v.clone()));
        }
    }
    if let Some(p) = q.priority_range {
        clauses.push("priority BETWEEN ? AND ?".into());
        args.extend([Sql::Integer(p.min.into()), Sql::Integer(p.max.into())]);
    }
    if let Some(d) = q.date_range {
        if let Some(from) = d.from {
            clauses.push("created_at >= ?".into());
            args.push(Sql::Integer(from.as_micros()));
        }
        if let Some(to) = d.to {
            clauses.push("created_at < ?".into());
            args.push(Sql::Integer(to.as_micros()));
        }
    }
    for (key, value) in &q.metadata {
        // `->` gives the value's minified JSON text, which is how serde_json writes it: equal
        // text is equal JSON for values this store wrote. (A key containing `"` cannot be
        // expressed as a SQLite JSON path: it matches nothing.)
        if key.contains('"') {
            clauses.push("0".into());
            continue;
        }
        clauses.push("(metadata -> ?) = ?".into());
        args.push(Sql::Text(format!("$.\"{key}\"")));
        args.push(Sql::Text(serde_json::to_string(value)?));
    }
    let sql = if clauses.is_empty() { String::from("1") } else { clauses.join(" AND ") };
    Ok((sql, args))
}

pub(crate) fn query(conn: &mut Connection, q: &RequestQuery) -> Result<QueryPage, Error> {
    let cursor = q.pagination.cursor.as_deref().map(Cursor::decode).transpose().map_err(StoreError::from)?;
    let (where_sql, mut args) = filters(q)?;
    // One snapshot for the count and the page.
    let tx = conn.transaction()?;
    let total = total(&tx, q, &where_sql, &args)?;
    let key = sort_column(q.pagination.sort_by);
    let (dir, cmp) = match q.pagination.sort_order {
        SortOrder::Asc => ("ASC", ">"),
        SortOrder::Desc => ("DESC", "<"),
    };
    let page = q.page_size();
    // The page is chosen on narrow rows and only its bodies are read: sorting whole bodies of
    // every match would cost a copy of the matches.
    let mut sql = format!("SELECT rowid FROM requests WHERE ({where_sql})");
    if let Some(c) = cursor {
        sql.push_str(&format!(" AND ({key}, id) {cmp} (?, ?)"));
        args.push(Sql::Integer(c.key));
        args.push(Sql::Blob(id_blob(c.id).to_vec()));
    }
    // One more than the page tells whether there is a next page.
    sql.push_str(&format!(" ORDER BY {key} {dir}, id {dir} LIMIT {}", page.saturating_add(1)));
    if cursor.is_none() {
        sql.push_str(&format!(" OFFSET {}", i64::try_from(q.pagination.offset).unwrap_or(i64::MAX)));
    }
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE rowid IN ({sql}) ORDER BY {key} {dir}, id {dir}");
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut requests = Vec::with_capacity(page.min(usize::try_from(total).unwrap_or(0)));
    while let Some(r) = rows.next()? {
        requests.push(read_request(r)?);
    }
    drop(rows);
    drop(stmt);
    tx.finish()?;
    let more = requests.len() > page;
    requests.truncate(page);
    let next_cursor = if more { requests.last().map(|r| q.cursor_after(r).encode()) } else { None };
    Ok(QueryPage { requests, total: usize::try_from(total).unwrap_or(usize::MAX), next_cursor })
}

/// The exact number of requests matching the query: from the counters when it filters by
/// status and task only, else counted.
fn total(conn: &Connection, q: &RequestQuery, where_sql: &str, args: &[Sql]) -> Result<i64, Error> {
    let counters_suffice = q.client_id.is_none()
        && q.bank_id.is_none()
        && q.priority_range.is_none()
        && q.date_range.is_none()
        && q.metadata.is_empty();
    if !counters_suffice {
        let sql = format!("SELECT count(*) FROM requests WHERE {where_sql}");
        return Ok(conn.prepare_cached(&sql)?.query_row(params_from_iter(args.iter()), |r| r.get(0))?);
    }
    let mut clauses = vec![String::from("1")];
    let mut args: Vec<Sql> = Vec::new();
    if !q.status.is_empty() {
        clauses.push(format!("status IN ({})", vec!["?"; q.status.len()].join(", ")));
        args.extend(q.status.iter().map(|s| Sql::Integer(i64::from(*s as u8))));
    }
    if let Some(task) = &q.task_id {
        clauses.push("task_id = ?".into());
        args.push(Sql::Text(task.clone()));
    }
    let sql = format!("SELECT ifnull(sum(count), 0) FROM status_counts WHERE {}", clauses.join(" AND "));
    Ok(conn.prepare_cached(&sql)?.query_row(params_from_iter(args.iter()), |r| r.get(0))?)
}

// ===== metrics =====

pub(crate) fn metrics(conn: &mut Connection, p: &MetricsParams) -> Result<StoreMetrics, Error> {
    let tx = conn.transaction()?;
    let mut m = StoreMetrics::default();
    {
        let mut stmt = tx.prepare_cached("SELECT status, sum(count) FROM status_counts GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (status, n) = row?;
            let slot = usize::try_from(status).ok().and_then(|s| m.by_status.get_mut(s));
            let Some(slot) = slot else {
                return Err(StoreError::Corrupt(format!("unknown status {status} in the requests table")).into());
            };
            *slot = u64::try_from(n).unwrap_or(0);
        }
    }
    m.processing = processing(&tx)?;
    let finished: i64 = tx
        .prepare_cached("SELECT count(*) FROM requests WHERE finished_at >= ?1")?
        .query_row([p.window_start.as_micros()], |r| r.get(0))?;
    m.finished_in_window = u64::try_from(finished).unwrap_or(0);
    {
        let mut stmt =
            tx.prepare_cached("SELECT code, count, last_message FROM error_counts ORDER BY count DESC, code LIMIT ?1")?;
        let rows = stmt.query_map([i64::try_from(p.top_errors).unwrap_or(i64::MAX)], |r| {
            Ok(ErrorCount {
                code: r.get(0)?,
                count: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                last_message: r.get(2)?,
            })
        })?;
        m.top_errors = rows.collect::<Result<_, _>>()?;
    }
    tx.finish()?;
    Ok(m)
}

/// Processing-time summary of the completed requests held, percentiles by nearest rank, each
/// one indexed lookup.
fn processing(conn: &Connection) -> Result<LatencySummary, Error> {
    // Only completed requests have a processing time.
    const COMPLETED: &str = "FROM requests WHERE processing_us IS NOT NULL";
    let (count, mean, max): (i64, Option<f64>, Option<i64>) = conn
        .prepare_cached(&format!("SELECT count(*), avg(processing_us), max(processing_us) {COMPLETED}"))?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    if count == 0 {
        return Ok(LatencySummary::default());
    }
    let mut up =
        conn.prepare_cached(&format!("SELECT processing_us {COMPLETED} ORDER BY processing_us LIMIT 1 OFFSET ?1"))?;
    let mut down = conn
        .prepare_cached(&format!("SELECT processing_us {COMPLETED} ORDER BY processing_us DESC LIMIT 1 OFFSET ?1"))?;
    // An offset walks the index: high ranks are walked to from the top.
    let mut at = |q: f64| -> Result<f64, Error> {
        let rank = ((q * count as f64).ceil() as i64).clamp(1, count);
        let us: i64 = if rank > count / 2 {
            down.query_row([count - rank], |r| r.get(0))?
        } else {
            up.query_row([rank - 1], |r| r.get(0))?
        };
        Ok(us as f64 / 1000.0)
    };
    Ok(LatencySummary {
        count: u64::try_from(count).unwrap_or(0),
        mean_ms: mean.unwrap_or(0.0) / 1000.0,
        p50_ms: at(0.50)?,
        p95_ms: at(0.95)?,
        p99_ms: at(0.99)?,
        max_ms: max.unwrap_or(0) as f64 / 1000.0,
    })
}
