//! The store conformance suite: what every [`Store`] must do, one `pub async fn` per case.
//!
//! Each case takes a fresh, empty store. Run them all with
//! [`store_conformance_tests!`](crate::store_conformance_tests), which makes one test per case.
//! Time is passed explicitly everywhere (see [`fixtures::at`](crate::fixtures::at)); nothing
//! sleeps.
//!
//! The cases follow River's `riverdrivertest`: insertion and idempotency, claim order and
//! exclusivity, every transition (legal and illegal), scheduling, rescue, queries, metrics and
//! retention.

mod claim;
mod insert;
mod metrics;
mod query;
mod rescue;
mod retention;
mod schedule;
mod transitions;

pub use claim::*;
pub use insert::*;
pub use metrics::*;
pub use query::*;
pub use rescue::*;
pub use retention::*;
pub use schedule::*;
pub use transitions::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use atmo_core::{
    ApplyOutcome, ClaimParams, Claimed, InsertOutcome, MetricsParams, Progress, Request, RequestId, RequestStatus,
    Store, StoreMetrics, Timestamp, Transition,
};
use serde_json::json;

use crate::fixtures::{at, error, request};

/// The bank the helpers claim for.
pub const BANK: &str = "bank-a";
/// The lease owner the helpers claim as.
pub const OWNER: &str = "node-1";
/// When the helpers claim.
pub fn claim_time() -> Timestamp {
    at(10)
}
/// When the helpers' leases expire.
pub fn lease_until() -> Timestamp {
    at(40)
}

/// A task id no other call of this process returns, so that a helper claiming "its" request
/// cannot pick up another.
pub fn unique_task(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Inserts and checks that every request was stored.
pub async fn insert<S: Store>(store: &S, requests: Vec<Request>) {
    let ids: Vec<RequestId> = requests.iter().map(|r| r.request_id).collect();
    let out = store.insert_many(requests).await.expect("insert_many");
    let expected: Vec<InsertOutcome> = ids.into_iter().map(InsertOutcome::Inserted).collect();
    assert_eq!(out, expected, "every request of the batch is inserted");
}

/// Claim parameters for `tasks`.
pub fn claim_params(
    bank: &str,
    tasks: &[&str],
    limit: usize,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> ClaimParams {
    ClaimParams {
        bank_id: Arc::from(bank),
        task_ids: tasks.iter().map(|t| Arc::from(*t)).collect(),
        limit,
        owner: Arc::from(owner),
        now,
        lease_until: until,
    }
}

/// Claims up to `limit` of `tasks` for [`BANK`] as [`OWNER`] at [`claim_time`].
pub async fn claim<S: Store>(store: &S, tasks: &[&str], limit: usize) -> Vec<Claimed> {
    store.claim(claim_params(BANK, tasks, limit, OWNER, claim_time(), lease_until())).await.expect("claim")
}

/// Applies one transition.
pub async fn apply1<S: Store>(store: &S, t: Transition) -> ApplyOutcome {
    let mut out = store.apply(vec![t]).await.expect("apply");
    assert_eq!(out.len(), 1, "one outcome per transition");
    out.remove(0)
}

/// The stored request, which must exist.
pub async fn get<S: Store>(store: &S, id: RequestId) -> Request {
    store.get(id).await.expect("get").unwrap_or_else(|| panic!("request {id} is stored"))
}

/// Metrics with a window from the epoch and up to 10 error codes.
pub async fn metrics<S: Store>(store: &S) -> StoreMetrics {
    store
        .metrics(MetricsParams { now: at(1_000_000), window_start: Timestamp::EPOCH, top_errors: 10 })
        .await
        .expect("metrics")
}

/// The worker the helpers start requests on.
pub fn worker() -> Arc<str> {
    Arc::from("worker-1")
}

/// A request of a fresh task, brought into `status` through the store's own operations:
/// claimed at [`claim_time`] under a lease until [`lease_until`], started at `at(11)`, finished
/// at `at(12)`. Returns it as stored.
pub async fn request_in<S: Store>(store: &S, status: RequestStatus) -> Request {
    let task = unique_task("state");
    let r = match status {
        RequestStatus::Scheduled => request(&task).run_at(at(1000)).build(),
        _ => request(&task).build(),
    };
    let id = r.request_id;
    insert(store, vec![r]).await;
    let t = match status {
        RequestStatus::Pending | RequestStatus::Scheduled => return get(store, id).await,
        RequestStatus::Cancelled => Transition::cancel(id, "fixture", at(5)),
        _ => {
            let claimed = claim(store, &[&task], 1).await;
            assert_eq!(claimed.len(), 1, "the fixture's request is claimed");
            if status == RequestStatus::Assigned {
                return get(store, id).await;
            }
            apply1(store, Transition::start(id, 1, worker(), at(11))).await.expect("start");
            match status {
                RequestStatus::Processing => return get(store, id).await,
                RequestStatus::Completed => Transition::complete(id, 1, Arc::new(json!({"ok": true})), at(12)),
                RequestStatus::Failed => Transition::fail(id, 1, error("FIXTURE", "failed", 1, at(12)), at(12)),
                _ => Transition::time_out(id, 1, error("TIMEOUT", "timed out", 1, at(12)), at(12)),
            }
        }
    };
    apply1(store, t).await.expect("fixture transition");
    let r = get(store, id).await;
    assert_eq!(r.status, status, "fixture reached {status}");
    r
}

/// Every kind of transition, to try each against each state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// [`Transition::start`].
    Start,
    /// [`Transition::complete`].
    Complete,
    /// [`Transition::fail`].
    Fail,
    /// [`Transition::retry`].
    Retry,
    /// [`Transition::time_out`].
    TimeOut,
    /// [`Transition::rescue`].
    Rescue,
    /// [`Transition::promote`].
    Promote,
    /// [`Transition::cancel`].
    Cancel,
    /// [`Transition::progress`].
    Progress,
}

impl ChangeKind {
    /// Every kind.
    pub const ALL: [ChangeKind; 9] = [
        ChangeKind::Start,
        ChangeKind::Complete,
        ChangeKind::Fail,
        ChangeKind::Retry,
        ChangeKind::TimeOut,
        ChangeKind::Rescue,
        ChangeKind::Promote,
        ChangeKind::Cancel,
        ChangeKind::Progress,
    ];

    /// The transition of this kind for `r` at its current attempt, at time `now`.
    pub fn transition(self, r: &Request, now: Timestamp) -> Transition {
        let (id, n) = (r.request_id, r.attempts);
        match self {
            ChangeKind::Start => Transition::start(id, n, worker(), now),
            ChangeKind::Complete => Transition::complete(id, n, Arc::new(json!({"done": n})), now),
            ChangeKind::Fail => Transition::fail(id, n, error("E_FAIL", "failed", n, now), now),
            ChangeKind::Retry => Transition::retry(id, n, error("E_RETRY", "again", n, now), at(500), now),
            ChangeKind::TimeOut => Transition::time_out(id, n, error("E_TIMEOUT", "too slow", n, now), now),
            ChangeKind::Rescue => Transition::rescue(id, n, "worker crashed", now),
            ChangeKind::Promote => Transition::promote(id, n, now),
            ChangeKind::Cancel => Transition::cancel(id, "client asked", now),
            ChangeKind::Progress => {
                Transition::progress(id, n, Progress { percent: 50.0, message: Some("half".into()), at: now })
            }
        }
    }

    /// The status the change leads to from `from`, if the lifecycle allows it; `Some(from)`
    /// for progress. Written out here rather than taken from the core, so that the suite
    /// checks the store against the lifecycle as documented.
    pub fn legal_target(self, from: RequestStatus) -> Option<RequestStatus> {
        use RequestStatus::*;
        match (self, from) {
            (ChangeKind::Start, Assigned) => Some(Processing),
            (ChangeKind::Complete, Processing) => Some(Completed),
            (ChangeKind::Fail, Processing) => Some(Failed),
            (ChangeKind::Retry, Processing) => Some(Scheduled),
            (ChangeKind::TimeOut, Processing) => Some(TimedOut),
            (ChangeKind::Rescue, Assigned | Processing) => Some(Pending),
            (ChangeKind::Promote, Scheduled) => Some(Pending),
            (ChangeKind::Cancel, Pending | Scheduled | Assigned | Processing) => Some(Cancelled),
            (ChangeKind::Progress, Assigned | Processing) => Some(from),
            _ => None,
        }
    }
}
