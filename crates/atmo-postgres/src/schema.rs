//! The schema, its migrations, and recognising our schemas.
//!
//! A store lives in one PostgreSQL schema (`atmo` unless configured). Its table
//! `atmo_migrations` lists the migrations applied, one row each, and carries a comment that
//! marks the schema as ours: a schema that holds other objects and no such table is refused,
//! never modified. Migrations run when a store connects, all of them in one transaction
//! under an advisory lock, so that nodes starting together migrate once and none sees a half
//! migrated schema.

use deadpool_postgres::Client;

use atmo_core::StoreError;

use crate::error::Error;

/// The comment on `atmo_migrations` that says the schema is an Atmo Workers store.
pub const MARKER: &str = "atmo-workers store: applied schema migrations";

/// One step of the schema: version `i + 1` is `MIGRATIONS[i]`.
struct Migration {
    description: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first.
const MIGRATIONS: &[Migration] = &[Migration { description: "requests and error counts", sql: V1 }];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1. Times are microseconds since the epoch (`bigint`), statuses `RequestStatus as
/// smallint`. What the client sent (parameters, metadata, result, progress) is `json`, kept
/// as serde wrote it; history and errors are `jsonb` arrays that transitions append to.
const V1: &str = r#"
    CREATE SEQUENCE requests_seq;
    CREATE TABLE requests (
        id              uuid PRIMARY KEY,
        task_id         text NOT NULL,      -- this column and the next seven never change
        priority        smallint NOT NULL,
        client_id       text,
        created_at      bigint NOT NULL,
        idempotency_key text,
        parameters      json NOT NULL,
        metadata        json,
        extra           json,               -- the request's own timeout and retry policy
        seq             bigint NOT NULL,    -- queue order (FIFO within a priority)
        status          smallint NOT NULL,
        attempts        integer NOT NULL,
        bank_id         text,
        worker_id       text,
        updated_at      bigint NOT NULL,
        run_at          bigint,             -- due time of a scheduled request
        assigned_at     bigint,
        started_at      bigint,
        completed_at    bigint,
        finished_at     bigint,             -- set iff terminal: retention and window order
        processing_us   bigint,             -- completed requests: started to completed
        lease_owner     text,               -- set iff assigned or processing
        lease_until     bigint,
        progress        json,
        result          json,
        errors          jsonb NOT NULL,
        history         jsonb NOT NULL
    );
    -- Claims: pending requests only, in claim order.
    CREATE INDEX requests_pending ON requests (task_id, priority DESC, seq) WHERE status = 0;
    CREATE INDEX requests_scheduled ON requests (run_at, seq) WHERE status = 1;
    CREATE INDEX requests_lease ON requests (lease_until) WHERE lease_until IS NOT NULL;
    CREATE INDEX requests_lease_owner ON requests (lease_owner) WHERE lease_owner IS NOT NULL;
    CREATE UNIQUE INDEX requests_idempotency ON requests (idempotency_key) WHERE idempotency_key IS NOT NULL;
    -- Queries and retention.
    CREATE INDEX requests_created ON requests (created_at, id);
    CREATE INDEX requests_client ON requests (client_id, created_at, id) WHERE client_id IS NOT NULL;
    CREATE INDEX requests_bank ON requests (bank_id, created_at, id) WHERE bank_id IS NOT NULL;
    CREATE INDEX requests_finished ON requests (finished_at, id) WHERE finished_at IS NOT NULL;
    CREATE INDEX requests_processing ON requests (processing_us) WHERE processing_us IS NOT NULL;
    -- Error codes of failed, timed-out and retried attempts (they outlive retention).
    CREATE TABLE error_counts (
        code         text PRIMARY KEY,
        count        bigint NOT NULL,
        last_message text NOT NULL
    );
"#;

/// The advisory lock key of migrations in `schema` (any value that other programs are
/// unlikely to use; `hashtext` keeps it per schema).
const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(hashtext('atmo-workers migrate ' || $1))";

/// Checks that `schema` is missing, empty, or ours at a version we know, then migrates it to
/// [`SCHEMA_VERSION`], creating it if needed.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<(), Error> {
    let tx = client.transaction().await?;
    let version = match migrate_in(&tx, schema).await {
        Ok(v) => v,
        Err(e) => {
            // Rolled back here, not when the transaction is dropped: a connection left idle in
            // the transaction would hold its locks until its task next runs.
            let _ = tx.rollback().await;
            return Err(e);
        }
    };
    tx.commit().await?;
    if version < SCHEMA_VERSION {
        // Fresh statistics for the planner after the tables changed shape.
        client.batch_execute(&format!("ANALYZE {schema}.requests, {schema}.error_counts")).await?;
    }
    Ok(())
}

/// The checks and migrations of [`migrate`], inside its transaction; returns the version found.
async fn migrate_in(tx: &deadpool_postgres::Transaction<'_>, schema: &str) -> Result<i64, Error> {
    tx.execute(LOCK_SQL, &[&schema]).await?;
    let exists: bool =
        tx.query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema]).await?.get(0);
    if !exists {
        // The name was checked (letters, digits, underscores), so it needs no quoting.
        tx.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
    }
    tx.batch_execute(&format!("SET LOCAL search_path TO {schema}")).await?;
    let marker = tx
        .query_opt(
            "SELECT obj_description(c.oid, 'pg_class')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = 'atmo_migrations' AND c.relkind = 'r'",
            &[&schema],
        )
        .await?;
    let has_table = marker.is_some();
    let comment: Option<String> = marker.and_then(|r| r.get(0));
    if has_table && comment.as_deref() != Some(MARKER) {
        return Err(StoreError::NotAStore(format!(
            "schema `{schema}` has a table atmo_migrations that Atmo Workers did not create (its comment is {comment:?}); \
             point the store at another schema"
        ))
        .into());
    }
    if !has_table {
        let objects: i64 = tx
            .query_one(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
                &[&schema],
            )
            .await?
            .get(0);
        if objects > 0 {
            return Err(StoreError::NotAStore(format!(
                "schema `{schema}` holds {objects} tables, views or sequences and no atmo_migrations table: \
                 it belongs to something else; point the store at an empty or new schema"
            ))
            .into());
        }
        tx.batch_execute(&format!(
            "CREATE TABLE atmo_migrations (
                 version     integer PRIMARY KEY,
                 description text NOT NULL,
                 applied_at  timestamptz NOT NULL DEFAULT now()
             );
             COMMENT ON TABLE atmo_migrations IS '{MARKER}';"
        ))
        .await?;
    }
    let version: i64 = tx.query_one("SELECT coalesce(max(version), 0)::bigint FROM atmo_migrations", &[]).await?.get(0);
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew { found: version, supported: SCHEMA_VERSION }.into());
    }
    let start = usize::try_from(version).unwrap_or(0);
    for (i, m) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.batch_execute(m.sql).await?;
        let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute("INSERT INTO atmo_migrations (version, description) VALUES ($1, $2)", &[&v, &m.description]).await?;
    }
    Ok(version)
}
