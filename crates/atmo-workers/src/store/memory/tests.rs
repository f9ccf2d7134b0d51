//! Tests of the memory store's layout.
// Tests fail by panicking; the conformance suite (tests/conformance.rs) covers the `Store`
// contract, these cover what only this layout can get wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use atmo_core::{
    ClaimParams, InsertOutcome, Request, RequestError, RequestId, RequestQuery, RetentionParams, Store, Timestamp,
    Transition, apply_claim, apply_transition,
};
use futures::executor::block_on;
use serde_json::json;

use super::MemoryStore;
use super::index::fold;
use super::state::COMPACT_SLACK;

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

fn req(task: &str, priority: u8, n: u8) -> Request {
    let id = RequestId::from_parts(t(0), [0, 0, 0, 0, 0, 0, 0, 0, 0, n]);
    Request { priority, ..Request::new(id, task, json!({}), t(0), None) }
}

fn claim(store: &MemoryStore, task: &str, limit: usize) -> Vec<RequestId> {
    let p = ClaimParams {
        bank_id: Arc::from("b"),
        task_ids: vec![Arc::from(task)],
        limit,
        owner: Arc::from("o"),
        now: t(1),
        lease_until: t(100),
    };
    block_on(store.claim(p)).unwrap().into_iter().map(|r| r.request_id).collect()
}

/// A cancelled request's queue entry outlives the request; when its slot is reused by a new
/// pending request, the old entry must not hand the new request out twice.
#[test]
fn reused_slot_does_not_revive_a_stale_entry() {
    let store = MemoryStore::new();
    let a = req("t", 5, 1);
    block_on(store.insert_many(vec![a.clone()])).unwrap();
    block_on(store.apply(vec![Transition::cancel(a.request_id, "x", t(1))])).unwrap();
    let p = RetentionParams { finished_before: Timestamp::MAX, max_finished: None, batch_limit: 10 };
    assert_eq!(block_on(store.delete_finished(p)).unwrap(), 1);
    let b = req("t", 5, 2);
    block_on(store.insert_many(vec![b.clone()])).unwrap();
    let inner = store.inner.lock();
    assert_eq!(inner.index.get(b.request_id, &inner.slab), Some(0), "slot 0 was reused");
    drop(inner);
    assert_eq!(claim(&store, "t", 10), vec![b.request_id]);
    assert!(claim(&store, "t", 10).is_empty());
}

/// Priorities outside 1–10 still order correctly in the bucket queue.
#[test]
fn every_u8_priority_orders() {
    let store = MemoryStore::new();
    let reqs: Vec<Request> =
        [0u8, 255, 10, 64, 63, 1, 128].iter().enumerate().map(|(i, &p)| req("t", p, i as u8)).collect();
    block_on(store.insert_many(reqs.clone())).unwrap();
    let order: Vec<u8> = claim(&store, "t", 100)
        .into_iter()
        .map(|id| reqs.iter().find(|r| r.request_id == id).unwrap().priority)
        .collect();
    assert_eq!(order, vec![255, 128, 64, 63, 10, 1, 0]);
}

/// Mass cancellation is compacted away instead of accumulating.
#[test]
fn stale_entries_are_compacted() {
    let store = MemoryStore::new();
    // Distinct ids (the helper takes a `u8`).
    let reqs: Vec<Request> = (0..3000)
        .map(|_| req("t", 5, 0))
        .enumerate()
        .map(|(i, mut r)| {
            r.request_id = RequestId::from_u128(1_000_000 + i as u128);
            r
        })
        .collect();
    block_on(store.insert_many(reqs.clone())).unwrap();
    let cancels = reqs.iter().skip(1).map(|r| Transition::cancel(r.request_id, "x", t(1))).collect();
    assert!(block_on(store.apply(cancels)).unwrap().iter().all(Result::is_ok));
    let inner = store.inner.lock();
    assert!(inner.ready_items <= 1 + COMPACT_SLACK, "{} entries left", inner.ready_items);
    drop(inner);
    assert_eq!(claim(&store, "t", 10), vec![reqs[0].request_id]);
}

fn apply1(store: &MemoryStore, t: Transition) {
    let out = block_on(store.apply(vec![t])).unwrap();
    assert!(out[0].is_ok(), "{out:?}");
}

/// A finished request's history, kept compactly, reads back exactly as the core writes it:
/// owned and static reasons, several workers, more entries than fit inline. The stored
/// request keeps no history of its own.
#[test]
fn finished_histories_read_back_exactly() {
    let store = MemoryStore::new();
    let mut expected = req("t", 5, 1);
    let id = expected.request_id;
    block_on(store.insert_many(vec![expected.clone()])).unwrap();
    let bank: Arc<str> = Arc::from("b");
    let (w1, w2): (Arc<str>, Arc<str>) = (Arc::from("w1"), Arc::from("w2"));
    let error = |attempt| {
        let e = atmo_core::TaskError::new("E_NET", "down");
        RequestError::from_task_error(e, attempt == 1, attempt, t(3))
    };
    let steps = [
        Transition::start(id, 1, w1.clone(), t(2)),
        Transition::retry(id, 1, error(1), t(5), t(3)),
        Transition::promote(id, 1, t(5)),
        Transition::start(id, 2, w2.clone(), t(7)),
        Transition::fail(id, 2, error(2), t(8)),
    ];
    assert_eq!(claim(&store, "t", 1), vec![id]);
    apply_claim(&mut expected, &bank, t(1)).unwrap();
    for (n, step) in steps.into_iter().enumerate() {
        if n == 3 {
            assert_eq!(claim(&store, "t", 1), vec![id]);
            apply_claim(&mut expected, &bank, t(1)).unwrap();
        }
        apply_transition(&mut expected, &step).unwrap();
        apply1(&store, step);
    }
    assert_eq!(expected.history.len(), 8);
    assert_eq!(block_on(store.get(id)).unwrap(), Some(expected.clone()));
    let page = block_on(store.query(RequestQuery::new())).unwrap();
    assert_eq!(page.requests, vec![expected]);

    let inner = store.inner.lock();
    let slot = inner.index.get(id, &inner.slab).unwrap();
    let (stored, history) = inner.slab.with_history(slot).unwrap();
    assert_eq!(stored.history.capacity(), 0);
    assert_eq!(history.as_slice().len(), 8);
}

/// Two ids whose folds are equal are told apart, found, re-inserted as duplicates and
/// removed independently.
#[test]
fn ids_with_one_fold_are_exact() {
    let store = MemoryStore::new();
    let mut a = req("t", 5, 1);
    a.request_id = RequestId::from_u128((1 << 64) | 2);
    let mut b = req("t", 5, 2);
    b.request_id = RequestId::from_u128(3 << 64);
    assert_eq!(fold(a.request_id), fold(b.request_id));
    let out = block_on(store.insert_many(vec![a.clone(), b.clone(), b.clone(), a.clone()])).unwrap();
    let expected = [
        InsertOutcome::Inserted(a.request_id),
        InsertOutcome::Inserted(b.request_id),
        InsertOutcome::Duplicate(b.request_id),
        InsertOutcome::Duplicate(a.request_id),
    ];
    assert_eq!(out, expected);
    assert_eq!(block_on(store.get(a.request_id)).unwrap(), Some(a.clone()));
    assert_eq!(block_on(store.get(b.request_id)).unwrap(), Some(b.clone()));
    apply1(&store, Transition::cancel(a.request_id, "x", t(1)));
    let p = RetentionParams { finished_before: Timestamp::MAX, max_finished: None, batch_limit: 10 };
    assert_eq!(block_on(store.delete_finished(p)).unwrap(), 1);
    assert_eq!(block_on(store.get(a.request_id)).unwrap(), None);
    assert_eq!(block_on(store.get(b.request_id)).unwrap(), Some(b.clone()), "the colliding id survives");
    apply1(&store, Transition::cancel(b.request_id, "x", t(1)));
    assert_eq!(block_on(store.delete_finished(p)).unwrap(), 1);
    let inner = store.inner.lock();
    assert!(inner.index.by_fold.is_empty() && inner.index.collisions.is_empty());
}

/// Reasons nobody repeats (cancellations with a request's own words) do not accumulate:
/// deleting their requests lets a sweep free them.
#[test]
fn unused_history_values_are_swept() {
    let store = MemoryStore::new();
    let reqs: Vec<Request> = (0..3000u128)
        .map(|i| {
            let mut r = req("t", 5, 0);
            r.request_id = RequestId::from_u128(1_000_000 + i);
            r
        })
        .collect();
    block_on(store.insert_many(reqs.clone())).unwrap();
    let cancels = reqs.iter().map(|r| Transition::cancel(r.request_id, format!("{}", r.request_id), t(1)));
    assert!(block_on(store.apply(cancels.collect())).unwrap().iter().all(Result::is_ok));
    let (reasons, _) = store.inner.lock().history.table_sizes();
    assert!(reasons > 2000, "every cancellation's reason is held: {reasons}");
    let p = RetentionParams { finished_before: Timestamp::MAX, max_finished: None, batch_limit: 10_000 };
    assert_eq!(block_on(store.delete_finished(p)).unwrap(), 3000);
    assert_eq!(store.inner.lock().history.table_sizes(), (0, 0));
}
