//! The read operations, answered in SQL.
//!
//! A query's page and its exact `total` are read in one repeatable-read transaction, so they
//! agree with each other while other nodes write.

use atmo_core::{
    Cursor, ErrorCount, LatencySummary, MetricsParams, QueryPage, Request, RequestId, RequestQuery, SortField,
    SortOrder, StoreError, StoreMetrics, Timestamp,
};
use deadpool_postgres::Client;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::{Json, ToSql};

use crate::error::Error;
use crate::row::{REQUEST_COLUMNS, read_request, status_code, uuid};

pub(crate) async fn get(client: &Client, id: RequestId) -> Result<Option<Request>, Error> {
    let stmt = client.prepare_cached(&format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1")).await?;
    client.query_opt(&stmt, &[&uuid(id)]).await?.as_ref().map(read_request).transpose()
}

pub(crate) async fn next_scheduled(client: &Client) -> Result<Option<Timestamp>, Error> {
    let stmt = client.prepare_cached("SELECT min(run_at) FROM requests WHERE status = 1").await?;
    let t: Option<i64> = client.query_one(&stmt, &[]).await?.get(0);
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

/// A query's arguments, numbered as they are pushed.
#[derive(Default)]
struct Args(Vec<Box<dyn ToSql + Sync + Send>>);

impl Args {
    /// Adds `v`; returns its placeholder (`$n`).
    fn push(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect()
    }
}

/// The `WHERE` clause of the query's filters, its arguments pushed onto `args`.
fn filters(q: &RequestQuery, args: &mut Args) -> String {
    let mut clauses: Vec<String> = Vec::new();
    if !q.status.is_empty() {
        let codes: Vec<i16> = q.status.iter().map(|s| status_code(*s)).collect();
        clauses.push(format!("status = ANY({}::smallint[])", args.push(codes)));
        if q.status.iter().all(|s| s.is_terminal()) {
            // Implied by the statuses (a row is finished iff terminal); lets PostgreSQL use the
            // partial index of finished requests.
            clauses.push("finished_at IS NOT NULL".into());
        }
    }
    for (column, value) in [("task_id", &q.task_id), ("client_id", &q.client_id), ("bank_id", &q.bank_id)] {
        if let Some(v) = value {
            clauses.push(format!("{column} = {}::text", args.push(v.clone())));
        }
    }
    if let Some(p) = q.priority_range {
        let (min, max) = (args.push(i16::from(p.min)), args.push(i16::from(p.max)));
        clauses.push(format!("priority BETWEEN {min}::smallint AND {max}::smallint"));
    }
    if let Some(d) = q.date_range {
        if let Some(from) = d.from {
            clauses.push(format!("created_at >= {}::bigint", args.push(from.as_micros())));
        }
        if let Some(to) = d.to {
            clauses.push(format!("created_at < {}::bigint", args.push(to.as_micros())));
        }
    }
    for (key, value) in &q.metadata {
        // Compared as jsonb: equal JSON values match whatever their spelling.
        let (k, v) = (args.push(key.clone()), args.push(Json(value.clone())));
        clauses.push(format!("(metadata -> {k}::text)::jsonb = {v}::jsonb"));
    }
    if clauses.is_empty() { String::from("true") } else { clauses.join(" AND ") }
}

pub(crate) async fn query(client: &mut Client, q: &RequestQuery) -> Result<QueryPage, Error> {
    let cursor = q.pagination.cursor.as_deref().map(Cursor::decode).transpose().map_err(StoreError::from)?;
    let mut args = Args::default();
    let where_sql = filters(q, &mut args);
    let count_sql = format!("SELECT count(*) FROM requests WHERE {where_sql}");
    let count_args = args.0.len();
    let key = sort_column(q.pagination.sort_by);
    let (dir, cmp) = match q.pagination.sort_order {
        SortOrder::Asc => ("ASC", ">"),
        SortOrder::Desc => ("DESC", "<"),
    };
    let page = q.page_size();
    let mut sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE ({where_sql})");
    if let Some(c) = cursor {
        let (k, id) = (args.push(c.key), args.push(uuid(c.id)));
        sql.push_str(&format!(" AND ({key}::bigint, id) {cmp} ({k}::bigint, {id}::uuid)"));
    }
    // One more than the page tells whether there is a next page.
    let limit = i64::try_from(page.saturating_add(1)).unwrap_or(i64::MAX);
    sql.push_str(&format!(" ORDER BY {key} {dir}, id {dir} LIMIT {}::bigint", args.push(limit)));
    if cursor.is_none() {
        let offset = i64::try_from(q.pagination.offset).unwrap_or(i64::MAX);
        sql.push_str(&format!(" OFFSET {}::bigint", args.push(offset)));
    }
    let tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
    let refs = args.refs();
    let count_stmt = tx.prepare_cached(&count_sql).await?;
    let total: i64 = tx.query_one(&count_stmt, &refs[..count_args]).await?.get(0);
    let stmt = tx.prepare_cached(&sql).await?;
    let rows = tx.query(&stmt, &refs).await?;
    tx.commit().await?;
    let mut requests = rows.iter().map(read_request).collect::<Result<Vec<_>, _>>()?;
    let more = requests.len() > page;
    requests.truncate(page);
    let next_cursor = if more { requests.last().map(|r| q.cursor_after(r).encode()) } else { None };
    Ok(QueryPage { requests, total: usize::try_from(total).unwrap_or(usize::MAX), next_cursor })
}

// ===== metrics =====

pub(crate) async fn metrics(client: &mut Client, p: &MetricsParams) -> Result<StoreMetrics, Error> {
    let tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
    let mut m = StoreMetrics::default();
    let stmt = tx.prepare_cached("SELECT status, count(*) FROM requests GROUP BY status").await?;
    for row in tx.query(&stmt, &[]).await? {
        let (status, n): (i16, i64) = (row.get(0), row.get(1));
        let slot = usize::try_from(status).ok().and_then(|s| m.by_status.get_mut(s));
        let Some(slot) = slot else {
            return Err(StoreError::Corrupt(format!("unknown status {status} in the requests table")).into());
        };
        *slot = u64::try_from(n).unwrap_or(0);
    }
    // Percentiles by nearest rank (`percentile_disc`), as the other stores compute them.
    let stmt = tx
        .prepare_cached(
            "SELECT count(*), avg(processing_us)::float8, max(processing_us),
                 percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY processing_us)
             FROM requests WHERE processing_us IS NOT NULL",
        )
        .await?;
    let row = tx.query_one(&stmt, &[]).await?;
    let count: i64 = row.get(0);
    if count > 0 {
        let mean: Option<f64> = row.get(1);
        let max: Option<i64> = row.get(2);
        let pct: Option<Vec<i64>> = row.get(3);
        let pct = pct.unwrap_or_default();
        let ms = |i: usize| pct.get(i).copied().unwrap_or(0) as f64 / 1000.0;
        m.processing = LatencySummary {
            count: u64::try_from(count).unwrap_or(0),
            mean_ms: mean.unwrap_or(0.0) / 1000.0,
            p50_ms: ms(0),
            p95_ms: ms(1),
            p99_ms: ms(2),
            max_ms: max.unwrap_or(0) as f64 / 1000.0,
        };
    }
    let stmt = tx.prepare_cached("SELECT count(*) FROM requests WHERE finished_at >= $1").await?;
    let finished: i64 = tx.query_one(&stmt, &[&p.window_start.as_micros()]).await?.get(0);
    m.finished_in_window = u64::try_from(finished).unwrap_or(0);
    let stmt = tx
        .prepare_cached(
            "SELECT code, count, last_message FROM error_counts ORDER BY count DESC, code COLLATE \"C\" LIMIT $1",
        )
        .await?;
    let limit = i64::try_from(p.top_errors).unwrap_or(i64::MAX);
    for row in tx.query(&stmt, &[&limit]).await? {
        m.top_errors.push(ErrorCount {
            code: row.get(0),
            count: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
            last_message: row.get(2),
        });
    }
    tx.commit().await?;
    Ok(m)
}
