//! [`PostgresStore`]: connecting, the pool, and the [`Store`] implementation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use atmo_core::{
    ApplyOutcome, ClaimParams, Claimed, InsertOutcome, MetricsParams, Promoted, QueryPage, Request, RequestId,
    RequestQuery, RetentionParams, Store, StoreError, StoreFuture, StoreMetrics, Timestamp, Transition,
};
use deadpool_postgres::{Client, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::error::Error;
use crate::{read, schema, write};

/// How to reach the database and where the store lives in it.
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// A libpq-style connection string: `postgres://user@host:5432/database` or
    /// `host=... user=... dbname=...`.
    pub url: String,
    /// The schema holding the store's tables (created if missing). Default `atmo`.
    pub schema: String,
    /// Most connections the store opens. Default 4.
    pub max_connections: usize,
    /// How long to wait for a connection to be made before the server counts as unreachable,
    /// unless the connection string sets `connect_timeout`. Default 5 s.
    pub connect_timeout: Duration,
}

impl PostgresConfig {
    /// The defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: "atmo".into(),
            max_connections: 4,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The same, with the store in `schema`.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }
}

/// Transactions that lost a deadlock or serialization race are run again this many times.
const RETRIES: usize = 5;

/// The cluster store: requests in one PostgreSQL schema, shared by every engine node that
/// connects to it. See the crate documentation.
pub struct PostgresStore {
    pool: Pool,
    schema: Arc<str>,
    target: Arc<str>,
}

impl PostgresStore {
    /// Connects, checks that the schema is new, empty or ours, and migrates it to
    /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).
    ///
    /// # Errors
    /// [`StoreError::Backend`] holding [`Error::Unreachable`] when no server answers,
    /// [`Error::Refused`] when it refuses the connection, [`Error::InvalidUrl`] or
    /// [`Error::InvalidSchema`] for a bad configuration; [`StoreError::NotAStore`] for a schema
    /// that holds something else; [`StoreError::SchemaTooNew`] for a schema migrated by a newer
    /// build.
    pub async fn connect(config: PostgresConfig) -> Result<Self, StoreError> {
        Ok(Self::connect_inner(config).await?)
    }

    async fn connect_inner(config: PostgresConfig) -> Result<Self, Error> {
        check_schema_name(&config.schema)?;
        let mut pg: tokio_postgres::Config = config.url.parse().map_err(Error::InvalidUrl)?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.connect_timeout);
        }
        // Every connection of the pool resolves the store's tables in its schema.
        pg.options(format!("-c search_path={}", config.schema));
        let target = describe(&pg);
        let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(config.max_connections.max(1)).build()?;
        let store = PostgresStore { pool, schema: Arc::from(config.schema.as_str()), target: Arc::from(target) };
        let mut client = store.client().await?;
        schema::migrate(&mut client, &store.schema).await?;
        Ok(store)
    }

    /// The schema the store lives in.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// Where the store connects: `host:port/database`, without credentials.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A connection from the pool; a failure to make one says where it tried.
    async fn client(&self) -> Result<Client, Error> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(source) => {
                let target = self.target.to_string();
                if source.as_db_error().is_some() {
                    Error::Refused { target, source }
                } else {
                    Error::Unreachable { target, source }
                }
            }
            other => Error::Pool(other),
        })
    }

    /// Runs `op` on a pooled connection, again when it lost a deadlock or serialization race.
    fn run<'a, T, F>(&'a self, op: impl Fn(Client) -> F + Send + 'a) -> StoreFuture<'a, T>
    where
        T: Send + 'a,
        F: Future<Output = Result<T, Error>> + Send + 'a,
    {
        Box::pin(async move {
            let mut tries = 0;
            loop {
                let client = self.client().await?;
                match op(client).await {
                    Err(e) if e.is_retryable() && tries < RETRIES => tries += 1,
                    other => return other.map_err(StoreError::from),
                }
            }
        })
    }
}

/// `host:port/database` of a configuration, without credentials.
fn describe(pg: &tokio_postgres::Config) -> String {
    let host = pg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let db = pg.get_dbname().or(pg.get_user()).unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// Schema names the store accepts: unquoted PostgreSQL identifiers, so they need no quoting
/// in DDL or `search_path`.
fn check_schema_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let ok = name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok { Ok(()) } else { Err(Error::InvalidSchema(name.to_owned())) }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

// ===== impl Store =====

impl Store for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn insert_many(&self, requests: Vec<Request>) -> StoreFuture<'_, Vec<InsertOutcome>> {
        let requests = Arc::new(requests);
        self.run(move |c| {
            let requests = requests.clone();
            async move { write::insert_many(&c, &requests).await }
        })
    }

    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<Claimed>> {
        let params = Arc::new(params);
        self.run(move |c| {
            let params = params.clone();
            async move { write::claim(&c, &params).await }
        })
    }

    fn apply(&self, transitions: Vec<Transition>) -> StoreFuture<'_, Vec<ApplyOutcome>> {
        let transitions = Arc::new(transitions);
        self.run(move |mut c| {
            let transitions = transitions.clone();
            async move { write::apply(&mut c, &transitions).await }
        })
    }

    fn apply_borrowed<'a>(&'a self, transitions: &'a [Transition]) -> StoreFuture<'a, Vec<ApplyOutcome>> {
        self.run(move |mut c| async move { write::apply(&mut c, transitions).await })
    }

    fn promote_scheduled(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<Promoted>> {
        self.run(move |mut c| async move { write::promote_scheduled(&mut c, now, limit).await })
    }

    fn next_scheduled(&self) -> StoreFuture<'_, Option<Timestamp>> {
        self.run(|c| async move { read::next_scheduled(&c).await })
    }

    fn heartbeat(&self, owner: Arc<str>, until: Timestamp) -> StoreFuture<'_, usize> {
        self.run(move |c| {
            let owner = owner.clone();
            async move { write::heartbeat(&c, &owner, until).await }
        })
    }

    fn rescue_expired(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<RequestId>> {
        self.run(move |mut c| async move { write::rescue_expired(&mut c, now, limit).await })
    }

    fn rescue_owner(&self, owner: Arc<str>, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        self.run(move |mut c| {
            let owner = owner.clone();
            async move { write::rescue_owner(&mut c, &owner, now, reason).await }
        })
    }

    fn get(&self, id: RequestId) -> StoreFuture<'_, Option<Request>> {
        self.run(move |c| async move { read::get(&c, id).await })
    }

    fn query(&self, query: RequestQuery) -> StoreFuture<'_, QueryPage> {
        let query = Arc::new(query);
        self.run(move |mut c| {
            let query = query.clone();
            async move { read::query(&mut c, &query).await }
        })
    }

    fn metrics(&self, params: MetricsParams) -> StoreFuture<'_, StoreMetrics> {
        self.run(move |mut c| async move { read::metrics(&mut c, &params).await })
    }

    fn delete_finished(&self, params: RetentionParams) -> StoreFuture<'_, usize> {
        self.run(move |mut c| async move { write::delete_finished(&mut c, &params).await })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["atmo", "_x", "a1_b2", &"a".repeat(63)] {
            assert!(check_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "Atmo", "a-b", "a b", "a;drop", "é", &"a".repeat(64)] {
            assert!(matches!(check_schema_name(bad), Err(Error::InvalidSchema(_))), "{bad}");
        }
    }

    #[test]
    fn targets_name_no_credentials() {
        let pg: tokio_postgres::Config = "postgres://alice:secret@db.example:6543/jobs".parse().unwrap();
        assert_eq!(describe(&pg), "db.example:6543/jobs");
    }
}
