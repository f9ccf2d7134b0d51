//! Opening a file written with the previous schema (version 1: the whole request as JSON in
//! one column) migrates it, and every request reads back as it was.

use std::sync::Arc;
use std::time::Duration;

use atmo_core::{
    ClaimParams, InsertOutcome, MetricsParams, Progress, Request, RequestQuery, RequestStatus, SortField, SortOrder,
    Store, Timestamp, Transition, apply_claim, apply_transition,
};
use atmo_sqlite::{APPLICATION_ID, SCHEMA_VERSION, SqliteOptions, SqliteStore};
use atmo_testkit::fixtures::{at, error, request};
use rusqlite::{Connection, params};
use serde_json::json;

/// The DDL of schema version 1, as that version created it.
const V1: &str = r#"
    CREATE TABLE requests (
        id              BLOB PRIMARY KEY NOT NULL,
        seq             INTEGER NOT NULL,
        task_id         TEXT NOT NULL,
        status          INTEGER NOT NULL,
        priority        INTEGER NOT NULL,
        client_id       TEXT,
        bank_id         TEXT,
        worker_id       TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        run_at          INTEGER,
        completed_at    INTEGER,
        finished_at     INTEGER,
        attempts        INTEGER NOT NULL,
        idempotency_key TEXT UNIQUE,
        lease_owner     TEXT,
        lease_until     INTEGER,
        processing_us   INTEGER,
        body            TEXT NOT NULL
    );
    CREATE INDEX requests_claim ON requests (status, task_id, priority DESC, seq);
    CREATE INDEX requests_scheduled ON requests (status, run_at, seq);
    CREATE INDEX requests_lease ON requests (lease_until) WHERE lease_until IS NOT NULL;
    CREATE INDEX requests_lease_owner ON requests (lease_owner) WHERE lease_owner IS NOT NULL;
    CREATE INDEX requests_created ON requests (created_at, id);
    CREATE INDEX requests_updated ON requests (updated_at, id);
    CREATE INDEX requests_priority ON requests (priority, id);
    CREATE INDEX requests_status ON requests (status, created_at, id);
    CREATE INDEX requests_client ON requests (client_id, created_at) WHERE client_id IS NOT NULL;
    CREATE INDEX requests_bank ON requests (bank_id, created_at) WHERE bank_id IS NOT NULL;
    CREATE INDEX requests_finished ON requests (finished_at, id) WHERE finished_at IS NOT NULL;
    CREATE INDEX requests_processing ON requests (status, processing_us) WHERE processing_us IS NOT NULL;
    CREATE TABLE error_counts (
        code         TEXT PRIMARY KEY NOT NULL,
        count        INTEGER NOT NULL,
        last_message TEXT NOT NULL
    );
"#;

/// Writes `r` as version 1 did.
fn write_v1(conn: &Connection, r: &Request, seq: i64, lease: Option<(&str, Timestamp)>) {
    let micros = |t: Option<Timestamp>| t.map(Timestamp::as_micros);
    let run_at = match r.status {
        RequestStatus::Scheduled => Some(r.run_at.unwrap_or(Timestamp::EPOCH).as_micros()),
        _ => micros(r.run_at),
    };
    let finished_at = r.status.is_terminal().then(|| r.completed_at.unwrap_or(r.updated_at).as_micros());
    let processing_us = match (r.status, r.started_at, r.completed_at) {
        (RequestStatus::Completed, Some(s), Some(c)) => Some(c.as_micros() - s.as_micros()),
        _ => None,
    };
    conn.execute(
        "INSERT INTO requests (id, seq, task_id, status, priority, client_id, bank_id, worker_id, created_at,
            updated_at, run_at, completed_at, finished_at, attempts, idempotency_key, lease_owner, lease_until,
            processing_us, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        params![
            r.request_id.as_u128().to_be_bytes(),
            seq,
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
            lease.map(|l| l.0),
            lease.map(|l| l.1.as_micros()),
            processing_us,
            serde_json::to_string(r).unwrap(),
        ],
    )
    .unwrap();
}

fn step(r: &mut Request, t: Transition) {
    apply_transition(r, &t).unwrap();
}

/// A request as version 1 stored it: the request, its queue position and its lease.
type V1Row = (Request, i64, Option<(&'static str, Timestamp)>);

/// Requests in every kind of state, each with its queue position and lease as v1 kept them.
fn requests() -> Vec<V1Row> {
    let bank: Arc<str> = Arc::from("bank");
    let w: Arc<str> = Arc::from("w1");
    let claimed = |mut r: Request| {
        apply_claim(&mut r, &bank, at(10)).unwrap();
        r
    };
    let pending_low = request("job").priority(2).client("c").meta("n", 1).build();
    let pending_high = request("job").priority(9).idempotency_key("order-7").build();
    let scheduled = request("job").run_at(at(500)).timeout(Duration::from_millis(1500)).build();
    let assigned = claimed(request("job").parameters(json!({ "x": [1, 2.5, "é"] })).build());
    let mut processing = claimed(request("job").meta("tag", "p").build());
    let id = processing.request_id;
    step(&mut processing, Transition::start(id, 1, w.clone(), at(11)));
    step(
        &mut processing,
        Transition::progress(id, 1, Progress { percent: 40.0, message: Some("m".into()), at: at(12) }),
    );
    let mut completed = claimed(request("job").client("c").build());
    let id = completed.request_id;
    step(&mut completed, Transition::start(id, 1, w.clone(), at(11)));
    step(&mut completed, Transition::complete(id, 1, Arc::new(json!({ "sum": 3 })), at(13)));
    let mut failed = claimed(request("other").build());
    let id = failed.request_id;
    step(&mut failed, Transition::start(id, 1, w.clone(), at(11)));
    step(&mut failed, Transition::fail(id, 1, error("E_BAD", "bad \"input\"\nline 2", 1, at(12)), at(12)));
    let mut retried = claimed(request("job").build());
    let id = retried.request_id;
    step(&mut retried, Transition::start(id, 1, w, at(11)));
    step(&mut retried, Transition::retry(id, 1, error("E_NET", "net", 1, at(12)), at(60), at(12)));
    vec![
        (pending_low, 1, None),
        (pending_high, 2, None),
        (scheduled, 3, None),
        (assigned, 0, Some(("node-1", at(40)))),
        (processing, 0, Some(("node-1", at(40)))),
        (completed, 0, None),
        (failed, 0, None),
        (retried, 4, None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_file_is_migrated_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let rows = requests();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        for (r, seq, lease) in &rows {
            write_v1(&conn, r, *seq, *lease);
        }
        conn.execute("INSERT INTO error_counts VALUES ('E_BAD', 1, 'bad'), ('E_NET', 1, 'net')", []).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }

    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    for (r, _, _) in &rows {
        assert_eq!(store.get(r.request_id).await.unwrap().as_ref(), Some(r), "{}", r.request_id);
    }
    let all = store.query(RequestQuery::new().sort(SortField::Created, SortOrder::Asc).limit(100)).await.unwrap();
    assert_eq!(all.total, rows.len());
    let pending = store.query(RequestQuery::new().status([RequestStatus::Pending]).task("job")).await.unwrap();
    assert_eq!(pending.total, 2);
    let by_meta = store.query(RequestQuery::new().meta("tag", "p")).await.unwrap();
    assert_eq!(by_meta.requests.len(), 1);
    let m = store.metrics(MetricsParams { now: at(100), window_start: at(0), top_errors: 10 }).await.unwrap();
    assert_eq!(
        (m.count(RequestStatus::Pending), m.count(RequestStatus::Scheduled), m.count(RequestStatus::Completed)),
        (2, 2, 1)
    );
    assert_eq!(m.top_errors.len(), 2);

    // Queue order survives: the higher priority first.
    let params = ClaimParams {
        bank_id: Arc::from("bank"),
        task_ids: vec![Arc::from("job")],
        limit: 10,
        owner: Arc::from("node-2"),
        now: at(20),
        lease_until: at(80),
    };
    let claimed: Vec<_> = store.claim(params).await.unwrap().into_iter().map(|c| c.request_id).collect();
    assert_eq!(claimed, vec![rows[1].0.request_id, rows[0].0.request_id]);
    // Leases survive: the two running ones expire and are rescued.
    let mut rescued = store.rescue_expired(at(41), 10).await.unwrap();
    rescued.sort();
    let mut running = vec![rows[3].0.request_id, rows[4].0.request_id];
    running.sort();
    assert_eq!(rescued, running);
    // Idempotency keys survive.
    let again = request("job").idempotency_key("order-7").build();
    assert_eq!(store.insert_many(vec![again]).await.unwrap(), vec![InsertOutcome::Duplicate(rows[1].0.request_id)]);
    drop(store);

    let conn = Connection::open(&path).unwrap();
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}
