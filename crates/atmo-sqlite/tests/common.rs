//! A store in a fresh temporary directory, removed after the store is dropped.

use std::path::PathBuf;
use std::sync::Arc;

use atmo_core::{
    ApplyOutcome, ClaimParams, Claimed, InsertOutcome, MetricsParams, Promoted, QueryPage, Request, RequestId,
    RequestQuery, RetentionParams, Store, StoreFuture, StoreMetrics, Timestamp, Transition,
};
use atmo_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// A file store in its own temporary directory. Fields drop in order: the store (and its
/// lock) before the directory.
#[derive(Debug)]
pub struct TempStore {
    pub store: SqliteStore,
    pub dir: TempDir,
}

impl TempStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("atmo.db"), SqliteOptions::default()).unwrap();
        TempStore { store, dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("atmo.db")
    }
}

impl Store for TempStore {
    fn kind(&self) -> &'static str {
        self.store.kind()
    }
    fn health(&self) -> Result<(), atmo_core::StoreError> {
        self.store.health()
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
