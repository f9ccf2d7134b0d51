//! Leases: expiry, heartbeats, the rescuer, rescuing an owner.

use std::sync::Arc;

use atmo_core::{RequestStatus, Store, Transition};
use serde_json::json;

use super::{apply1, claim_params, get, insert, worker};
use crate::fixtures::{at, just_after, request};

async fn claim_as<S: Store>(store: &S, task: &str, owner: &str, until: atmo_core::Timestamp) -> atmo_core::Claimed {
    let mut got = store.claim(claim_params("bank-r", &[task], 1, owner, at(10), until)).await.expect("claim");
    assert_eq!(got.len(), 1, "one request of {task} is claimed");
    got.remove(0)
}

/// Only leases that expired before `now` are rescued, the most overdue first, at most `limit`;
/// a rescued request is pending again with its attempt kept and the reason in its history.
pub async fn rescue_expired_returns_only_expired_leases<S: Store>(store: S) {
    let (a, b, c) = (request("ra").build(), request("rb").build(), request("rc").build());
    insert(&store, vec![a.clone(), b.clone(), c.clone()]).await;
    claim_as(&store, "ra", "n1", at(30)).await;
    claim_as(&store, "rb", "n1", at(20)).await;
    claim_as(&store, "rc", "n2", at(60)).await;
    apply1(&store, Transition::start(b.request_id, 1, worker(), at(11))).await.expect("start");

    assert!(store.rescue_expired(at(20), 10).await.expect("rescue").is_empty(), "a lease is valid through its instant");
    let first = store.rescue_expired(at(45), 1).await.expect("rescue");
    assert_eq!(first, vec![b.request_id], "most overdue first, limit honoured");
    assert_eq!(store.rescue_expired(at(45), 10).await.expect("rescue"), vec![a.request_id]);
    assert!(store.rescue_expired(at(45), 10).await.expect("rescue").is_empty());
    assert_eq!(get(&store, c.request_id).await.status, RequestStatus::Assigned, "an unexpired lease stays");

    for (id, from) in [(b.request_id, RequestStatus::Processing), (a.request_id, RequestStatus::Assigned)] {
        let r = get(&store, id).await;
        assert_eq!((r.status, r.attempts), (RequestStatus::Pending, 1));
        let h = r.history.last().expect("history");
        assert_eq!((h.from, h.to, &*h.reason, h.at), (Some(from), RequestStatus::Pending, "lease expired", at(45)));
    }
    assert!(store.rescue_expired(at(45), 0).await.expect("rescue").is_empty());
}

/// A heartbeat extends every lease of its owner, and only that owner's.
pub async fn heartbeat_extends_the_owners_leases<S: Store>(store: S) {
    let reqs: Vec<_> = ["h1", "h2", "h3"].iter().map(|t| request(t).build()).collect();
    insert(&store, reqs.clone()).await;
    claim_as(&store, "h1", "alive", at(20)).await;
    claim_as(&store, "h2", "alive", at(25)).await;
    claim_as(&store, "h3", "dead", at(20)).await;
    apply1(&store, Transition::start(reqs[1].request_id, 1, worker(), at(11))).await.expect("start");

    assert_eq!(store.heartbeat(Arc::from("alive"), at(100)).await.expect("heartbeat"), 2);
    assert_eq!(store.heartbeat(Arc::from("nobody"), at(100)).await.expect("heartbeat"), 0);
    assert_eq!(store.rescue_expired(at(50), 10).await.expect("rescue"), vec![reqs[2].request_id]);
    assert!(store.rescue_expired(at(100), 10).await.expect("rescue").is_empty());
    let mut late = store.rescue_expired(just_after(at(100)), 10).await.expect("rescue");
    late.sort();
    let mut expected = vec![reqs[0].request_id, reqs[1].request_id];
    expected.sort();
    assert_eq!(late, expected);
}

/// A rescued request is claimable again, and every claim counts another attempt.
pub async fn rescued_request_is_claimable_again<S: Store>(store: S) {
    let r = request("again").build();
    let id = r.request_id;
    insert(&store, vec![r]).await;
    for attempt in 1..=3u32 {
        let c = claim_as(&store, "again", "n", at(20)).await;
        assert_eq!((c.request_id, c.attempt), (id, attempt));
        apply1(&store, Transition::start(id, attempt, worker(), at(11))).await.expect("start");
        assert_eq!(store.rescue_expired(at(21), 10).await.expect("rescue"), vec![id]);
    }
    let r = get(&store, id).await;
    assert_eq!((r.status, r.attempts), (RequestStatus::Pending, 3));
    let rescues = r.history.iter().filter(|h| h.reason == "lease expired").count();
    assert_eq!(rescues, 3);
}

/// `rescue_owner` returns everything one owner holds (assigned and processing), with the
/// reason given, and nothing of other owners.
pub async fn rescue_owner_returns_what_the_owner_held<S: Store>(store: S) {
    let reqs: Vec<_> = ["o1", "o2", "o3", "o4"].iter().map(|t| request(t).build()).collect();
    insert(&store, reqs.clone()).await;
    claim_as(&store, "o1", "old-life", at(1000)).await;
    claim_as(&store, "o2", "old-life", at(1000)).await;
    claim_as(&store, "o3", "other", at(1000)).await;
    claim_as(&store, "o4", "old-life", at(1000)).await;
    apply1(&store, Transition::start(reqs[1].request_id, 1, worker(), at(11))).await.expect("start");
    apply1(&store, Transition::start(reqs[3].request_id, 1, worker(), at(11))).await.expect("start");
    apply1(&store, Transition::complete(reqs[3].request_id, 1, Arc::new(json!(1)), at(12))).await.expect("complete");

    let mut rescued = store.rescue_owner(Arc::from("old-life"), at(50), "engine restarted").await.expect("rescue");
    rescued.sort();
    let mut expected = vec![reqs[0].request_id, reqs[1].request_id];
    expected.sort();
    assert_eq!(rescued, expected);
    for id in expected {
        let r = get(&store, id).await;
        assert_eq!((r.status, r.attempts), (RequestStatus::Pending, 1));
        assert_eq!(r.history.last().map(|h| &*h.reason), Some("engine restarted"));
    }
    assert_eq!(get(&store, reqs[2].request_id).await.status, RequestStatus::Assigned);
    assert_eq!(get(&store, reqs[3].request_id).await.status, RequestStatus::Completed);
    assert!(store.rescue_owner(Arc::from("old-life"), at(51), "again").await.expect("rescue").is_empty());
}

/// A finished attempt releases its lease: no heartbeat extends it, no rescuer returns it.
pub async fn finishing_releases_the_lease<S: Store>(store: S) {
    let reqs: Vec<_> = ["f1", "f2"].iter().map(|t| request(t).build()).collect();
    insert(&store, reqs.clone()).await;
    claim_as(&store, "f1", "n", at(20)).await;
    claim_as(&store, "f2", "n", at(20)).await;
    let (a, b) = (reqs[0].request_id, reqs[1].request_id);
    apply1(&store, Transition::start(a, 1, worker(), at(11))).await.expect("start");
    apply1(&store, Transition::complete(a, 1, Arc::new(json!(1)), at(12))).await.expect("complete");
    apply1(&store, Transition::start(b, 1, worker(), at(11))).await.expect("start");
    let e = crate::fixtures::error("E", "again", 1, at(12));
    apply1(&store, Transition::retry(b, 1, e, at(500), at(12))).await.expect("retry");
    assert_eq!(store.heartbeat(Arc::from("n"), at(100)).await.expect("heartbeat"), 0);
    assert!(store.rescue_expired(at(400), 10).await.expect("rescue").is_empty());
    assert!(store.rescue_owner(Arc::from("n"), at(400), "x").await.expect("rescue").is_empty());
}
