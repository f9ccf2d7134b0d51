//! Scheduling: delayed submissions, retries, `promote_scheduled`, `next_scheduled`.

use std::sync::Arc;

use atmo_core::{Promoted, RequestId, RequestStatus, Store, Transition};

use super::{apply1, claim, get, insert, metrics, worker};
use crate::fixtures::{at, error, just_after, just_before, request};

fn ids(ps: &[Promoted]) -> Vec<RequestId> {
    ps.iter().map(|p| p.id).collect()
}

/// A retry schedules the request at `run_at`; it is promoted at that instant, not before, and
/// the next claim counts a second attempt.
pub async fn retry_schedules_then_promotes_at_run_at<S: Store>(store: S) {
    let r = request("retry").build();
    let id = r.request_id;
    insert(&store, vec![r]).await;
    claim(&store, &["retry"], 1).await;
    apply1(&store, Transition::start(id, 1, worker(), at(11))).await.expect("start");
    let e = error("FLAKY", "try again", 1, at(12));
    let out = apply1(&store, Transition::retry(id, 1, e.clone(), at(30), at(12))).await.expect("retry");
    assert_eq!((out.from, out.to, out.attempt), (RequestStatus::Processing, RequestStatus::Scheduled, 1));

    let scheduled = get(&store, id).await;
    assert_eq!(
        (scheduled.status, scheduled.run_at, scheduled.completed_at),
        (RequestStatus::Scheduled, Some(at(30)), None)
    );
    assert_eq!(scheduled.errors, vec![e]);
    assert_eq!(store.next_scheduled().await.expect("next"), Some(at(30)));
    assert!(claim(&store, &["retry"], 1).await.is_empty(), "not claimable while scheduled");

    assert!(store.promote_scheduled(just_before(at(30)), 10).await.expect("promote").is_empty());
    let promoted = store.promote_scheduled(at(30), 10).await.expect("promote");
    assert_eq!(promoted, vec![Promoted { id, attempt: 1 }], "a retry's promotion reports the failed attempt");
    let promoted = get(&store, id).await;
    assert_eq!((promoted.status, promoted.run_at, promoted.attempts), (RequestStatus::Pending, None, 1));
    let h = promoted.history.last().expect("history");
    assert_eq!((h.from, h.to, h.at), (Some(RequestStatus::Scheduled), RequestStatus::Pending, at(30)));
    assert_eq!(store.next_scheduled().await.expect("next"), None);

    let again = claim(&store, &["retry"], 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].request_id, again[0].attempt), (id, 2));
    let assigned = get(&store, id).await;
    assert_eq!((assigned.attempts, assigned.status), (2, RequestStatus::Assigned));
    let done = apply1(&store, Transition::start(id, 2, worker(), at(31))).await.expect("start 2");
    assert_eq!(done.attempt, 2);
}

/// Delayed submissions wait for their `run_at`; promotion goes in `run_at` order, honours the
/// limit, and `next_scheduled` always names the earliest.
pub async fn delayed_submissions_promote_in_run_at_order<S: Store>(store: S) {
    let t3 = request("d").run_at(at(300)).build();
    let t1 = request("d").run_at(at(100)).build();
    let t2 = request("d").run_at(at(200)).priority(10).build();
    let t1b = request("d").run_at(at(100)).build();
    insert(&store, vec![t3.clone(), t1.clone(), t2.clone(), t1b.clone()]).await;
    assert_eq!(store.next_scheduled().await.expect("next"), Some(at(100)));
    assert!(store.promote_scheduled(at(50), 10).await.expect("promote").is_empty());

    let mut promoted = store.promote_scheduled(at(100), 1).await.expect("promote");
    assert_eq!(promoted.len(), 1, "the limit is honoured");
    promoted.extend(store.promote_scheduled(at(100), 0).await.expect("promote"));
    assert_eq!(promoted.len(), 1, "limit 0 promotes nothing");
    promoted.extend(store.promote_scheduled(at(250), 10).await.expect("promote"));
    assert!(promoted.iter().all(|p| p.attempt == 0), "a delayed submission has no attempt yet: {promoted:?}");
    let mut first = ids(&promoted);
    first.sort();
    let mut expected = vec![t1.request_id, t1b.request_id, t2.request_id];
    expected.sort();
    assert_eq!(first, expected);
    assert_eq!(store.next_scheduled().await.expect("next"), Some(at(300)));
    let last = store.promote_scheduled(just_after(at(300)), 10).await.expect("promote");
    assert_eq!(last, vec![Promoted { id: t3.request_id, attempt: 0 }]);
    assert_eq!(store.next_scheduled().await.expect("next"), None);
    assert_eq!(metrics(&store).await.count(RequestStatus::Pending), 4);
}

/// With more due requests than the limit, the earliest are promoted first.
pub async fn promote_scheduled_takes_the_earliest_first<S: Store>(store: S) {
    let reqs: Vec<_> = (0..6).rev().map(|i| request("e").run_at(at(10 + i)).build()).collect();
    insert(&store, reqs.clone()).await;
    let promoted = store.promote_scheduled(at(1000), 2).await.expect("promote");
    assert_eq!(ids(&promoted), vec![reqs[5].request_id, reqs[4].request_id]);
    assert_eq!(store.next_scheduled().await.expect("next"), Some(at(12)));
}

/// A request promoted directly through `apply` and later retried is promoted at its new time,
/// not its old one.
pub async fn direct_promote_then_retry_uses_the_new_run_at<S: Store>(store: S) {
    let r = request("p").run_at(at(50)).build();
    let id = r.request_id;
    insert(&store, vec![r]).await;
    apply1(&store, Transition::promote(id, 0, at(20))).await.expect("promote");
    assert_eq!(store.next_scheduled().await.expect("next"), None);
    claim(&store, &["p"], 1).await;
    apply1(&store, Transition::start(id, 1, worker(), at(21))).await.expect("start");
    apply1(&store, Transition::retry(id, 1, error("E", "again", 1, at(22)), at(90), at(22))).await.expect("retry");
    assert_eq!(store.next_scheduled().await.expect("next"), Some(at(90)));
    assert!(store.promote_scheduled(at(60), 10).await.expect("promote").is_empty(), "the old run_at is void");
    let promoted = store.promote_scheduled(at(90), 10).await.expect("promote");
    assert_eq!(promoted, vec![Promoted { id, attempt: 1 }]);
    assert_eq!(store.rescue_owner(Arc::from("nobody"), at(91), "x").await.expect("rescue"), vec![]);
}
