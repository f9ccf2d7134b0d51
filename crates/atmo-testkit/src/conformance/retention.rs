//! Retention: deleting finished requests by age and by count.

use std::sync::Arc;

use atmo_core::{InsertOutcome, Request, RequestStatus, RetentionParams, Store, Timestamp, Transition};
use serde_json::json;

use super::{apply1, claim, get, insert, metrics, request_in, worker};
use crate::fixtures::{at, request};

/// Inserts `n` requests of `task` and completes request `i` at `at(100 + i)`.
async fn finished<S: Store>(store: &S, task: &str, n: usize, key_prefix: Option<&str>) -> Vec<Request> {
    let reqs: Vec<_> = (0..n)
        .map(|i| match key_prefix {
            Some(p) => request(task).idempotency_key(&format!("{p}-{i}")).build(),
            None => request(task).build(),
        })
        .collect();
    insert(store, reqs.clone()).await;
    assert_eq!(claim(store, &[task], n).await.len(), n);
    for (i, r) in reqs.iter().enumerate() {
        apply1(store, Transition::start(r.request_id, 1, worker(), at(11))).await.expect("start");
        let end = at(100 + i as i64);
        apply1(store, Transition::complete(r.request_id, 1, Arc::new(json!(i)), end)).await.expect("complete");
    }
    reqs
}

fn params(before: Timestamp, max: Option<usize>, batch: usize) -> RetentionParams {
    RetentionParams { finished_before: before, max_finished: max, batch_limit: batch }
}

async fn exists<S: Store>(store: &S, r: &Request) -> bool {
    store.get(r.request_id).await.expect("get").is_some()
}

/// Requests that finished before the horizon are deleted; later ones stay.
pub async fn retention_deletes_by_age<S: Store>(store: S) {
    let reqs = finished(&store, "age", 10, None).await;
    assert_eq!(store.delete_finished(params(at(100), None, 100)).await.expect("delete"), 0, "the horizon is exclusive");
    assert_eq!(store.delete_finished(params(at(104), None, 100)).await.expect("delete"), 4);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(exists(&store, r).await, i >= 4, "request {i}");
    }
    assert_eq!(metrics(&store).await.count(RequestStatus::Completed), 6);
    assert_eq!(store.delete_finished(params(at(104), None, 100)).await.expect("delete"), 0);
}

/// Beyond `max_finished`, the oldest finished requests are deleted, the newest kept.
pub async fn retention_keeps_the_newest_by_count<S: Store>(store: S) {
    let reqs = finished(&store, "count", 10, None).await;
    assert_eq!(store.delete_finished(params(Timestamp::EPOCH, Some(10), 100)).await.expect("delete"), 0);
    assert_eq!(store.delete_finished(params(Timestamp::EPOCH, Some(3), 100)).await.expect("delete"), 7);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(exists(&store, r).await, i >= 7, "request {i}");
    }
    // Both rules together: age removes one more of the three kept.
    assert_eq!(store.delete_finished(params(at(108), Some(3), 100)).await.expect("delete"), 1);
    assert_eq!(store.delete_finished(params(Timestamp::MAX, Some(0), 100)).await.expect("delete"), 2);
    assert_eq!(metrics(&store).await.total(), 0);
}

/// One call deletes at most `batch_limit`; the sweeper calls again.
pub async fn retention_honours_the_batch_limit<S: Store>(store: S) {
    finished(&store, "batch", 10, None).await;
    let p = params(at(1000), None, 4);
    let mut deleted = Vec::new();
    for _ in 0..4 {
        deleted.push(store.delete_finished(p).await.expect("delete"));
    }
    assert_eq!(deleted, vec![4, 4, 2, 0]);
    assert_eq!(store.delete_finished(params(at(1000), None, 0)).await.expect("delete"), 0);
}

/// Deleting a request frees its idempotency key; unfinished requests are never deleted.
pub async fn retention_frees_keys_and_spares_unfinished<S: Store>(store: S) {
    let reqs = finished(&store, "keys", 3, Some("key")).await;
    let mut alive = Vec::new();
    for status in [RequestStatus::Pending, RequestStatus::Scheduled, RequestStatus::Assigned, RequestStatus::Processing]
    {
        alive.push(request_in(&store, status).await);
    }
    let dup = request("keys").idempotency_key("key-0").build();
    assert_eq!(
        store.insert_many(vec![dup]).await.expect("insert"),
        vec![InsertOutcome::Duplicate(reqs[0].request_id)],
        "the key is taken while the request exists"
    );

    assert_eq!(store.delete_finished(params(Timestamp::MAX, Some(0), 100)).await.expect("delete"), 3);
    for r in &alive {
        assert_eq!(&get(&store, r.request_id).await, r, "unfinished requests stay");
    }
    let fresh = request("keys").idempotency_key("key-0").build();
    assert_eq!(
        store.insert_many(vec![fresh.clone()]).await.expect("insert"),
        vec![InsertOutcome::Inserted(fresh.request_id)]
    );
    assert_eq!(get(&store, fresh.request_id).await, fresh);
    let m = metrics(&store).await;
    assert_eq!((m.count(RequestStatus::Pending), m.count(RequestStatus::Completed), m.total()), (2, 0, 5));
}
