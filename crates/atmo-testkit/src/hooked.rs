//! [`HookedStore`]: a store with hooks, for tests of how the engine and the service cope with a
//! slow, failing or stopped store.
//!
//! ```
//! use std::sync::Arc;
//! use atmo_core::{Store, StoreError};
//! use atmo_testkit::hooked::{Health, HookedStore};
//! # #[derive(Debug, Default)] struct Inner;
//! # impl Store for Inner {
//! #     fn kind(&self) -> &'static str { "inner" }
//! #     fn insert_many(&self, _: Vec<atmo_core::Request>) -> atmo_core::StoreFuture<'_, Vec<atmo_core::InsertOutcome>> { unimplemented!() }
//! #     fn claim(&self, _: atmo_core::ClaimParams) -> atmo_core::StoreFuture<'_, Vec<atmo_core::Claimed>> { unimplemented!() }
//! #     fn apply(&self, _: Vec<atmo_core::Transition>) -> atmo_core::StoreFuture<'_, Vec<atmo_core::ApplyOutcome>> { unimplemented!() }
//! #     fn promote_scheduled(&self, _: atmo_core::Timestamp, _: usize) -> atmo_core::StoreFuture<'_, Vec<atmo_core::Promoted>> { unimplemented!() }
//! #     fn next_scheduled(&self) -> atmo_core::StoreFuture<'_, Option<atmo_core::Timestamp>> { unimplemented!() }
//! #     fn heartbeat(&self, _: Arc<str>, _: atmo_core::Timestamp) -> atmo_core::StoreFuture<'_, usize> { unimplemented!() }
//! #     fn rescue_expired(&self, _: atmo_core::Timestamp, _: usize) -> atmo_core::StoreFuture<'_, Vec<atmo_core::RequestId>> { unimplemented!() }
//! #     fn rescue_owner(&self, _: Arc<str>, _: atmo_core::Timestamp, _: &'static str) -> atmo_core::StoreFuture<'_, Vec<atmo_core::RequestId>> { unimplemented!() }
//! #     fn get(&self, _: atmo_core::RequestId) -> atmo_core::StoreFuture<'_, Option<atmo_core::Request>> { unimplemented!() }
//! #     fn query(&self, _: atmo_core::RequestQuery) -> atmo_core::StoreFuture<'_, atmo_core::QueryPage> { unimplemented!() }
//! #     fn metrics(&self, _: atmo_core::MetricsParams) -> atmo_core::StoreFuture<'_, atmo_core::StoreMetrics> { unimplemented!() }
//! #     fn delete_finished(&self, _: atmo_core::RetentionParams) -> atmo_core::StoreFuture<'_, usize> { unimplemented!() }
//! # }
//! let stopped: Health = Arc::new(|| Err(StoreError::Closed));
//! let store = HookedStore { health: Some(stopped), ..HookedStore::<Inner>::default() };
//! assert!(matches!(store.health(), Err(StoreError::Closed)));
//! assert_eq!(store.kind(), "inner");
//! ```

use std::fmt;
use std::sync::Arc;

use atmo_core::{
    ApplyOutcome, ClaimParams, Claimed, InsertOutcome, MetricsParams, Promoted, QueryPage, Request, RequestId,
    RequestQuery, RetentionParams, Store, StoreError, StoreFuture, StoreMetrics, Timestamp, Transition,
};

/// Runs after `insert_many` stored its batch, before it returns.
pub type AfterInsert = Arc<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>;
/// Runs before `apply`; an error is returned instead of applying.
pub type BeforeApply = Arc<dyn Fn() -> Result<(), StoreError> + Send + Sync>;
/// Answers [`Store::health`] instead of the inner store.
pub type Health = Arc<dyn Fn() -> Result<(), StoreError> + Send + Sync>;

/// `inner` with hooks; every operation without a hook goes straight to `inner`.
#[derive(Default)]
pub struct HookedStore<S> {
    /// The store doing the work.
    pub inner: S,
    /// See [`AfterInsert`].
    pub after_insert: Option<AfterInsert>,
    /// See [`BeforeApply`].
    pub before_apply: Option<BeforeApply>,
    /// See [`Health`].
    pub health: Option<Health>,
}

impl<S: fmt::Debug> fmt::Debug for HookedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookedStore").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S: Store> Store for HookedStore<S> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn health(&self) -> Result<(), StoreError> {
        match &self.health {
            Some(hook) => hook(),
            None => self.inner.health(),
        }
    }
    fn insert_many(&self, requests: Vec<Request>) -> StoreFuture<'_, Vec<InsertOutcome>> {
        Box::pin(async move {
            let out = self.inner.insert_many(requests).await?;
            if let Some(hook) = &self.after_insert {
                hook().await;
            }
            Ok(out)
        })
    }
    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<Claimed>> {
        self.inner.claim(params)
    }
    fn apply(&self, transitions: Vec<Transition>) -> StoreFuture<'_, Vec<ApplyOutcome>> {
        if let Some(hook) = &self.before_apply
            && let Err(e) = hook()
        {
            return Box::pin(async move { Err(e) });
        }
        self.inner.apply(transitions)
    }
    fn promote_scheduled(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<Promoted>> {
        self.inner.promote_scheduled(now, limit)
    }
    fn next_scheduled(&self) -> StoreFuture<'_, Option<Timestamp>> {
        self.inner.next_scheduled()
    }
    fn heartbeat(&self, owner: Arc<str>, until: Timestamp) -> StoreFuture<'_, usize> {
        self.inner.heartbeat(owner, until)
    }
    fn rescue_expired(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<RequestId>> {
        self.inner.rescue_expired(now, limit)
    }
    fn rescue_owner(&self, owner: Arc<str>, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        self.inner.rescue_owner(owner, now, reason)
    }
    fn recover_orphans(&self, now: Timestamp, reason: &'static str) -> StoreFuture<'_, Vec<RequestId>> {
        self.inner.recover_orphans(now, reason)
    }
    fn get(&self, id: RequestId) -> StoreFuture<'_, Option<Request>> {
        self.inner.get(id)
    }
    fn query(&self, query: RequestQuery) -> StoreFuture<'_, QueryPage> {
        self.inner.query(query)
    }
    fn metrics(&self, params: MetricsParams) -> StoreFuture<'_, StoreMetrics> {
        self.inner.metrics(params)
    }
    fn delete_finished(&self, params: RetentionParams) -> StoreFuture<'_, usize> {
        self.inner.delete_finished(params)
    }
}
