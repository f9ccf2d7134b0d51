//! A store in a fresh, uniquely named schema, dropped after the store.
//!
//! Tests connect to `ATMO_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! When the variable is unset and no server answers there, every test is skipped with a
//! message, so that `cargo test --workspace` works on a machine without PostgreSQL; with
//! `CI=true` or `ATMO_REQUIRE_POSTGRES=1` they fail instead, so CI (which starts the server)
//! really runs them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use atmo_core::{
    ApplyOutcome, ClaimParams, Claimed, InsertOutcome, MetricsParams, Promoted, QueryPage, Request, RequestId,
    RequestQuery, RetentionParams, Store, StoreError, StoreFuture, StoreMetrics, Timestamp, Transition,
};
use atmo_postgres::{PostgresConfig, PostgresStore};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server the tests use.
pub fn url() -> String {
    std::env::var("ATMO_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Whether tests may skip for want of a server: the address was not chosen, and neither CI nor
/// the user asked for the server to be there.
fn may_skip() -> bool {
    std::env::var_os("ATMO_TEST_POSTGRES").is_none()
        && std::env::var("ATMO_REQUIRE_POSTGRES").as_deref() != Ok("1")
        && std::env::var("CI").as_deref() != Ok("true")
}

/// A schema name no other test (of this or another process) uses.
pub fn unique_schema() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("atmo_test_{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A schema that is dropped (with everything in it) when this is dropped.
#[derive(Debug)]
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub fn new() -> Self {
        Schema { name: unique_schema() }
    }

    pub fn config(&self) -> PostgresConfig {
        PostgresConfig::new(url()).schema(self.name.clone())
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its
        // own with a runtime of its own.
        // Bounded: a test that fails must not hang on a lock.
        let sql = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let Ok((client, conn)) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await else { return };
                tokio::spawn(conn);
                let _ = client.batch_execute(&sql).await;
            });
        })
        .join();
    }
}

/// A store in its own schema. Fields drop in order: the store (its connections) first.
#[derive(Debug)]
pub struct TestStore {
    pub store: PostgresStore,
    pub schema: Schema,
}

/// A store in a fresh schema; `None` only when the tests may skip and no server answers.
///
/// # Panics
/// When no server answers and skipping was not asked for, with what to do.
pub async fn fresh() -> Option<TestStore> {
    let schema = Schema::new();
    match PostgresStore::connect(schema.config()).await {
        Ok(store) => Some(TestStore { store, schema }),
        Err(e) if is_unreachable(&e) && may_skip() => {
            eprintln!(
                "skipped: no PostgreSQL at {} (set ATMO_TEST_POSTGRES to a server, or ATMO_REQUIRE_POSTGRES=1 \
                 to fail instead)",
                url()
            );
            None
        }
        Err(e) => panic!(
            "the PostgreSQL tests need a server at {} (set ATMO_TEST_POSTGRES to another; CI=true or \
             ATMO_REQUIRE_POSTGRES=1 make them required): {e:?}",
            url()
        ),
    }
}

/// Another store on the same schema (another node).
pub async fn another(schema: &Schema) -> PostgresStore {
    PostgresStore::connect(schema.config()).await.expect("a second store on the schema")
}

pub fn is_unreachable(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend(b) if matches!(b.downcast_ref::<atmo_postgres::Error>(), Some(atmo_postgres::Error::Unreachable { .. })))
}

/// A fresh store, or `return` from the test when it may skip.
#[macro_export]
macro_rules! fresh_or_skip {
    () => {
        match $crate::common::fresh().await {
            Some(s) => s,
            None => return,
        }
    };
}

impl Store for TestStore {
    fn kind(&self) -> &'static str {
        self.store.kind()
    }
    fn insert_many(&self, requests: Vec<Request>) -> StoreFuture<'_, Vec<InsertOutcome>> {
        self.store.insert_many(requests)
    }
    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<Claimed>> {
        self.store.claim(params)
    }
    fn apply(&self, transitions: Vec<Transition>) -> StoreFuture<'_, Vec<ApplyOutcome>> {
        self.store.apply(transitions)
    }
    fn promote_scheduled(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<Promoted>> {
        self.store.promote_scheduled(now, limit)
    }
    fn next_scheduled(&self) -> StoreFuture<'_, Option<Timestamp>> {
        self.store.next_scheduled()
    }
    fn heartbeat(&self, owner: Arc<str>, until: Timestamp) -> StoreFuture<'_, usize> {
        self.store.heartbeat(owner, until)
    }
    fn rescue_expired(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<RequestId>> {
        self.store.rescue_expired(now, limit)
    }
    fn rescue_owner(&self, owner: Arc<str>, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        self.store.rescue_owner(owner, now, reason)
    }
    fn get(&self, id: RequestId) -> StoreFuture<'_, Option<Request>> {
        self.store.get(id)
    }
    fn query(&self, query: RequestQuery) -> StoreFuture<'_, QueryPage> {
        self.store.query(query)
    }
    fn metrics(&self, params: MetricsParams) -> StoreFuture<'_, StoreMetrics> {
        self.store.metrics(params)
    }
    fn delete_finished(&self, params: RetentionParams) -> StoreFuture<'_, usize> {
        self.store.delete_finished(params)
    }
}
