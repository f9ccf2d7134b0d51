//! The schema, its migrations, and recognising our files.
//!
//! A store file carries `PRAGMA application_id = APPLICATION_ID` (so a SQLite file written by
//! anything else is refused, never modified) and `PRAGMA user_version` = the schema version.
//! Migrations run in order, each in its own transaction with the version bump, when the store
//! opens.

use std::io::Read;
use std::path::Path;

use atmo_core::StoreError;
use rusqlite::Connection;

use crate::error::Error;

/// `PRAGMA application_id` of an Atmo Workers store: `"ATMO"` in ASCII.
pub const APPLICATION_ID: i32 = 0x4154_4D4F;

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: requests, with a column for every field the engine filters, sorts or claims by, and
    // the whole request as JSON in `body` (what `get` returns, exactly as written).
    r#"
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
    "#,
];

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuses, before SQLite touches it, a file that exists, is not empty and is not a SQLite
/// database.
pub(crate) fn check_header(path: &Path) -> Result<(), StoreError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::Backend(Box::new(e))),
    };
    let mut head = Vec::with_capacity(16);
    (&mut file).take(16).read_to_end(&mut head).map_err(|e| StoreError::Backend(Box::new(e)))?;
    if head.is_empty() || head.as_slice() == SQLITE_HEADER {
        return Ok(());
    }
    Err(StoreError::NotAStore(format!("{} is not a SQLite database", path.display())))
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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
