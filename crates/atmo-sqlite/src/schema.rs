//! The schema, its migrations, and recognising our files.
//!
//! A store file carries `PRAGMA application_id = APPLICATION_ID` (so a SQLite file written by
//! anything else is refused, never modified) and `PRAGMA user_version` = the schema version.
//! Migrations run in order, each in its own transaction with the version bump, when the store
//! opens: DDL, or Rust where rows must be rewritten (version 1 to 2 decodes each request's JSON
//! body into columns).

use std::io::Read;
use std::path::Path;

use std::sync::Arc;

use atmo_core::{Request, StoreError, Timestamp};
use rusqlite::{Connection, Transaction};

use crate::error::Error;
use crate::row;

/// `PRAGMA application_id` of an Atmo Workers store: `"ATMO"` in ASCII.
pub const APPLICATION_ID: i32 = 0x4154_4D4F;

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// One step of the schema.
enum Migration {
    /// DDL only.
    Sql(&'static str),
    /// Moves data, which SQL alone cannot decode.
    Rust(fn(&Transaction<'_>) -> Result<(), Error>),
}

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[Migration] = &[Migration::Sql(V1), Migration::Rust(v1_to_v2)];

/// Version 1: requests, with a column for every field the engine filters, sorts or claims by,
/// and the whole request as JSON in `body`, re-encoded at every state change; an index for
/// every filter and sort.
const V1: &str = r#"
    CREATE TABLE requests (
        id              BLOB PRIMARY KEY NOT NULL,  -- 16 bytes, big-endian: sorts like RequestId
        seq             INTEGER NOT NULL,           -- queue order (FIFO within a priority)
        task_id         TEXT NOT NULL,
        status          INTEGER NOT NULL,           -- RequestStatus as u8
        priority        INTEGER NOT NULL,
        client_id       TEXT,
        bank_id         TEXT,
        worker_id       TEXT,
        created_at      INTEGER NOT NULL,           -- microseconds since the epoch
        updated_at      INTEGER NOT NULL,
        run_at          INTEGER,                    -- due time of a scheduled request
        completed_at    INTEGER,
        finished_at     INTEGER,                    -- set iff terminal: retention and window order
        attempts        INTEGER NOT NULL,
        idempotency_key TEXT UNIQUE,
        lease_owner     TEXT,
        lease_until     INTEGER,
        processing_us   INTEGER,                    -- completed requests: started → completed
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
    -- Error codes of failed, timed-out and retried attempts, kept incrementally (they outlive
    -- retention, like the memory store's counts).
    CREATE TABLE error_counts (
        code         TEXT PRIMARY KEY NOT NULL,
        count        INTEGER NOT NULL,
        last_message TEXT NOT NULL
    );
    "#;

/// Version 2: one column per field, so that a state change writes only what it changes (see
/// `row.rs`); indexes only for what the hot path and the common queries need, most of them
/// partial, so a request's lifecycle touches few of them; per-status counters.
const V2: &str = r#"
    CREATE TABLE requests (
        id              BLOB PRIMARY KEY NOT NULL,  -- 16 bytes, big-endian: sorts like RequestId
        task_id         TEXT NOT NULL,              -- this column and the next seven never change
        priority        INTEGER NOT NULL,
        client_id       TEXT,
        created_at      INTEGER NOT NULL,           -- microseconds since the epoch
        idempotency_key TEXT,
        parameters      TEXT NOT NULL,              -- JSON
        metadata        TEXT,                       -- JSON object
        extra           TEXT,                       -- JSON: the request's own timeout and retry policy
        seq             INTEGER NOT NULL,           -- queue order (FIFO within a priority)
        status          INTEGER NOT NULL,           -- RequestStatus as u8
        attempts        INTEGER NOT NULL,
        bank_id         TEXT,
        worker_id       TEXT,
        updated_at      INTEGER NOT NULL,
        run_at          INTEGER,                    -- due time of a scheduled request
        assigned_at     INTEGER,
        started_at      INTEGER,
        completed_at    INTEGER,
        finished_at     INTEGER,                    -- set iff terminal: retention and window order
        processing_us   INTEGER,                    -- completed requests: started → completed
        lease_owner     TEXT,
        lease_until     INTEGER,                    -- set iff assigned or processing
        progress        TEXT,                       -- JSON
        result          TEXT,                       -- JSON
        errors          TEXT,                       -- JSON lines, appended
        history         TEXT NOT NULL               -- JSON lines, appended
    );
    -- Claims: pending requests only, in claim order.
    CREATE INDEX requests_pending ON requests (task_id, priority DESC, seq) WHERE status = 0;
    CREATE INDEX requests_scheduled ON requests (run_at, seq) WHERE status = 1;
    CREATE INDEX requests_lease ON requests (lease_until) WHERE lease_until IS NOT NULL;
    CREATE UNIQUE INDEX requests_idempotency ON requests (idempotency_key) WHERE idempotency_key IS NOT NULL;
    -- Queries. Columns that never change, or that are set once (bank at the first claim,
    -- finish time), so a state change rarely touches them.
    CREATE INDEX requests_created ON requests (created_at, id);
    CREATE INDEX requests_priority ON requests (priority, id);
    CREATE INDEX requests_client ON requests (client_id, created_at, id) WHERE client_id IS NOT NULL;
    CREATE INDEX requests_bank ON requests (bank_id, created_at, id) WHERE bank_id IS NOT NULL;
    CREATE INDEX requests_finished ON requests (finished_at, id) WHERE finished_at IS NOT NULL;
    -- A finished request's status never changes: filters on finished statuses use this one.
    CREATE INDEX requests_finished_status ON requests (status, task_id, created_at, id) WHERE finished_at IS NOT NULL;
    CREATE INDEX requests_processing ON requests (processing_us) WHERE processing_us IS NOT NULL;
    -- How many requests of each task are in each status: exact totals and status counts
    -- without scanning. The writer sums each batch's changes and writes them before COMMIT.
    CREATE TABLE status_counts (
        status  INTEGER NOT NULL,
        task_id TEXT NOT NULL,
        count   INTEGER NOT NULL,
        PRIMARY KEY (status, task_id)
    ) WITHOUT ROWID;
"#;

/// The v1 indexes, dropped before their table is.
const V1_INDEXES: &[&str] = &[
    "requests_claim",
    "requests_scheduled",
    "requests_lease",
    "requests_lease_owner",
    "requests_created",
    "requests_updated",
    "requests_priority",
    "requests_status",
    "requests_client",
    "requests_bank",
    "requests_finished",
    "requests_processing",
];

/// From one JSON body per row to one column per field: every v1 row is decoded and written
/// again, queue order and leases kept; then the counters are filled. It rewrites every row,
/// once, in one transaction.
fn v1_to_v2(tx: &Transaction<'_>) -> Result<(), Error> {
    for index in V1_INDEXES {
        tx.execute_batch(&format!("DROP INDEX IF EXISTS {index}"))?;
    }
    tx.execute_batch("ALTER TABLE requests RENAME TO requests_v1")?;
    tx.execute_batch(V2)?;
    {
        let mut stmt = tx.prepare("SELECT seq, lease_owner, lease_until, body FROM requests_v1 ORDER BY rowid")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let request: Request = serde_json::from_str(&r.get::<_, String>(3)?)?;
            let lease = match (r.get::<_, Option<String>>(1)?, r.get::<_, Option<i64>>(2)?) {
                (Some(o), Some(u)) => Some((Arc::from(o), Timestamp::from_micros(u))),
                // Version 2 finds running requests by their lease: one without gets an
                // expired one, as an imported running request does.
                _ if request.status.is_running() => Some((Arc::from(""), Timestamp::EPOCH)),
                _ => None,
            };
            let encoded = row::encode_with_lease(&request, lease)?;
            row::insert_row(tx, &request, &encoded, r.get(0)?)?;
        }
    }
    tx.execute_batch(
        "DROP TABLE requests_v1;
         INSERT INTO status_counts (status, task_id, count)
             SELECT status, task_id, count(*) FROM requests GROUP BY status, task_id;",
    )?;
    Ok(())
}

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Where `PRAGMA application_id` sits in a database file's header (4 bytes, big-endian).
const APPLICATION_ID_OFFSET: usize = 68;

/// What is at a store's path before SQLite opens it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileState {
    /// Nothing: a new store.
    Missing,
    /// A SQLite database; `ours` when its header carries [`APPLICATION_ID`].
    Sqlite {
        /// Whether the header says Atmo Workers wrote it.
        ours: bool,
    },
}

/// Refuses, before SQLite touches it, a file that exists and is not a SQLite database, or is
/// empty. An empty file is never new: a store writes its schema when it creates the file, so
/// an existing empty one was truncated (SQLite would take it for a new database and write an
/// empty store over it).
pub(crate) fn check_header(path: &Path) -> Result<FileState, StoreError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::Missing),
        Err(e) => return Err(StoreError::Backend(Box::new(e))),
    };
    let mut head = Vec::with_capacity(100);
    (&mut file).take(100).read_to_end(&mut head).map_err(|e| StoreError::Backend(Box::new(e)))?;
    if head.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "{} is empty: a store file is never empty once created, so it was truncated; restore it \
             from a backup, or delete it to start an empty store",
            path.display()
        )));
    }
    if !head.starts_with(SQLITE_HEADER) {
        return Err(StoreError::NotAStore(format!("{} is not a SQLite database", path.display())));
    }
    let ours = head
        .get(APPLICATION_ID_OFFSET..APPLICATION_ID_OFFSET + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .is_some_and(|b| i32::from_be_bytes(b) == APPLICATION_ID);
    Ok(FileState::Sqlite { ours })
}

/// Most problems `PRAGMA quick_check` lists in an error.
const MAX_PROBLEMS: usize = 5;

/// Runs `PRAGMA quick_check` (every page and index entry is well-formed, without comparing
/// the indexes with their tables, which `integrity_check` adds); a file that fails it is
/// refused: [`StoreError::Corrupt`] for a file whose header says it is ours, else
/// [`StoreError::NotAStore`]. It reads the whole file once (see the README's durability
/// section for its cost).
pub(crate) fn quick_check(conn: &Connection, path: &Path, ours: bool) -> Result<(), StoreError> {
    let problems = (|| {
        let mut stmt = conn.prepare(&format!("PRAGMA quick_check({MAX_PROBLEMS})"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<Vec<String>, _>>()
    })();
    let problems = match problems {
        Ok(p) if p.len() == 1 && p[0] == "ok" => return Ok(()),
        Ok(p) => p.join("; "),
        Err(e) if crate::error::is_corrupt(&e) => e.to_string(),
        Err(e) => return Err(Error::from(e).into()),
    };
    Err(corrupt(path, ours, &problems))
}

/// An error of the first reads and the migration at open: corruption says so (see
/// [`quick_check`]), anything else is passed on.
pub(crate) fn corrupt_at_open(e: Error, path: &Path, ours: bool) -> StoreError {
    match crate::health::corruption(&e) {
        Some(cause) => corrupt(path, ours, &cause),
        None => e.into(),
    }
}

fn corrupt(path: &Path, ours: bool, problems: &str) -> StoreError {
    if ours {
        StoreError::Corrupt(format!(
            "{} is a corrupt Atmo Workers store (SQLite: {problems}); restore it from a backup, or try \
             `sqlite3 {} .recover` into a new file",
            path.display(),
            path.display()
        ))
    } else {
        StoreError::NotAStore(format!(
            "{} is not an Atmo Workers store, and SQLite reports it corrupt ({problems})",
            path.display()
        ))
    }
}

/// Checks that `conn` is an empty database or one of ours at a version we know, then migrates
/// it to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let app_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if app_id != APPLICATION_ID {
        let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if app_id != 0 || version != 0 || objects != 0 {
            return Err(StoreError::NotAStore(format!(
                "the database has application id {app_id:#x} and {objects} schema objects; an Atmo \
                 Workers store has application id {APPLICATION_ID:#x}"
            ))
            .into());
        }
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew { found: version, supported: SCHEMA_VERSION }.into());
    }
    let start = usize::try_from(version).unwrap_or(0);
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(start) {
        let tx = conn.transaction()?;
        match migration {
            Migration::Sql(sql) => tx.execute_batch(sql)?,
            Migration::Rust(f) => f(&tx)?,
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
