//! Connecting: migrations, schemas that are not ours or too new, unreachable servers, bad
//! configuration.

use atmo_core::{Store, StoreError};
use atmo_postgres::{Error, PostgresConfig, PostgresStore, SCHEMA_VERSION};
use atmo_testkit::fixtures::request;

use crate::common::{Schema, fresh, is_unreachable, url};

/// A plain connection for arranging a schema by hand.
async fn raw() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

fn backend(e: &StoreError) -> Option<&Error> {
    match e {
        StoreError::Backend(b) => b.downcast_ref::<Error>(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_typed_error() {
    // Nothing listens on port 1.
    let config = PostgresConfig::new("postgres://postgres@127.0.0.1:1/postgres").schema("atmo");
    let err = PostgresStore::connect(config).await.unwrap_err();
    assert!(is_unreachable(&err), "{err:?}");
    let text = format!("{err}: {}", backend(&err).unwrap());
    assert!(text.contains("cannot reach PostgreSQL at 127.0.0.1:1/postgres"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_says_so() {
    let Some(_server) = fresh().await else { return };
    let config = PostgresConfig::new(format!("{} dbname=atmo_no_such_database", url_as_keywords()));
    let err = PostgresStore::connect(config).await.unwrap_err();
    assert!(matches!(backend(&err), Some(Error::Refused { .. })), "{err:?}");
}

/// The test server's URL as `key=value` pairs, so that one more can be appended.
fn url_as_keywords() -> String {
    let pg: tokio_postgres::Config = url().parse().unwrap();
    let host = match &pg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    format!("host={host} port={} user={}", pg.get_ports()[0], pg.get_user().unwrap_or("postgres"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_refused_before_connecting() {
    let err = PostgresStore::connect(PostgresConfig::new(url()).schema("Robert'); DROP")).await.unwrap_err();
    assert!(matches!(backend(&err), Some(Error::InvalidSchema(s)) if s == "Robert'); DROP"), "{err:?}");
    let err = PostgresStore::connect(PostgresConfig::new("postgres://[::1")).await.unwrap_err();
    assert!(matches!(backend(&err), Some(Error::InvalidUrl(_))), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_schema_is_created_and_migrated_once() {
    let Some(first) = fresh().await else { return };
    let id = request("keep").build();
    first.insert_many(vec![id.clone()]).await.unwrap();
    let again = PostgresStore::connect(first.schema.config()).await.unwrap();
    assert_eq!(again.get(id.request_id).await.unwrap().as_ref(), Some(&id), "what was stored stays");
    let rows = raw()
        .await
        .query(&format!("SELECT version FROM {}.atmo_migrations ORDER BY version", first.schema.name), &[])
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION as i32).collect::<Vec<_>>(), "each migration recorded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let Some(_server) = fresh().await else { return };
    let schema = Schema::new();
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(schema.config()),
        PostgresStore::connect(schema.config()),
        PostgresStore::connect(schema.config())
    );
    for store in [a, b, c] {
        store.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let Some(store) = fresh().await else { return };
    let newer = SCHEMA_VERSION as i32 + 1;
    raw()
        .await
        .execute(
            &format!(
                "INSERT INTO {}.atmo_migrations (version, description) VALUES ($1, 'from the future')",
                store.schema.name
            ),
            &[&newer],
        )
        .await
        .unwrap();
    let err = PostgresStore::connect(store.schema.config()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, supported } if found == i64::from(newer) && supported == SCHEMA_VERSION),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_of_something_else_is_refused_and_left_alone() {
    let Some(_server) = fresh().await else { return };
    let schema = Schema::new();
    let client = raw().await;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.invoices (id int); INSERT INTO {s}.invoices VALUES (7);",
            s = schema.name
        ))
        .await
        .unwrap();
    let err = PostgresStore::connect(schema.config()).await.unwrap_err();
    assert!(matches!(&err, StoreError::NotAStore(m) if m.contains("1 tables, views or sequences")), "{err:?}");
    let n: i64 = client.query_one(&format!("SELECT count(*) FROM {}.invoices", schema.name), &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
    let tables: i64 =
        client.query_one("SELECT count(*) FROM pg_tables WHERE schemaname = $1", &[&schema.name]).await.unwrap().get(0);
    assert_eq!(tables, 1, "nothing was created beside it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrations_table_that_is_not_ours_is_refused() {
    let Some(_server) = fresh().await else { return };
    let schema = Schema::new();
    raw()
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.atmo_migrations (version integer PRIMARY KEY);",
            s = schema.name
        ))
        .await
        .unwrap();
    let err = PostgresStore::connect(schema.config()).await.unwrap_err();
    assert!(matches!(&err, StoreError::NotAStore(m) if m.contains("did not create")), "{err:?}");
}
