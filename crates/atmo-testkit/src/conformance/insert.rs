//! Insertion, `get`, idempotency keys.

use atmo_core::{InsertOutcome, RequestStatus, Store};
use serde_json::json;

use super::{get, insert, metrics};
use crate::fixtures::{at, request, request_id};

/// A stored request reads back exactly as inserted: history, metadata, parameters, every field.
pub async fn insert_and_get_round_trip<S: Store>(store: S) {
    let pending = request("echo")
        .priority(7)
        .client("billing")
        .meta("region", "eu")
        .meta("n", 3)
        .meta("tags", json!(["a", {"b": null}]))
        .parameters(json!({"x": 1.5, "nested": [1, 2, {"deep": "yes"}], "unicode": "é✓"}))
        .idempotency_key("round-trip")
        .timeout(std::time::Duration::from_millis(1500))
        .created_at(at(1))
        .build();
    let scheduled = request("echo").run_at(at(100)).created_at(at(2)).build();
    insert(&store, vec![pending.clone(), scheduled.clone()]).await;

    assert_eq!(get(&store, pending.request_id).await, pending);
    let got = get(&store, scheduled.request_id).await;
    assert_eq!(got, scheduled);
    assert_eq!(got.status, RequestStatus::Scheduled);
    assert_eq!(got.run_at, Some(at(100)));

    assert_eq!(store.get(request_id(at(1))).await.expect("get"), None, "an unknown id is absent");
    assert_eq!(store.insert_many(Vec::new()).await.expect("empty batch"), Vec::new());
}

/// A second submission with a known idempotency key, in a later batch, names the first
/// request and stores nothing.
pub async fn idempotency_key_dedupes_across_batches<S: Store>(store: S) {
    let first = request("pay").idempotency_key("order-17").build();
    insert(&store, vec![first.clone()]).await;
    let again = request("pay").idempotency_key("order-17").priority(9).build();
    let other = request("pay").idempotency_key("order-18").build();
    let out = store.insert_many(vec![again.clone(), other.clone()]).await.expect("insert_many");
    assert_eq!(out, vec![InsertOutcome::Duplicate(first.request_id), InsertOutcome::Inserted(other.request_id)]);
    assert_eq!(out[0].id(), first.request_id);
    assert_eq!(store.get(again.request_id).await.expect("get"), None, "the duplicate is not stored");
    assert_eq!(get(&store, first.request_id).await, first, "the original is untouched");
    assert_eq!(metrics(&store).await.count(RequestStatus::Pending), 2);
}

/// Duplicates inside one batch: the first occurrence is stored, the later ones name it.
pub async fn idempotency_key_dedupes_within_a_batch<S: Store>(store: S) {
    let a = request("pay").idempotency_key("k").build();
    let b = request("pay").idempotency_key("k").build();
    let c = request("pay").build();
    let d = request("pay").idempotency_key("k").run_at(at(50)).build();
    let out = store.insert_many(vec![a.clone(), b.clone(), c.clone(), d.clone()]).await.expect("insert_many");
    assert_eq!(
        out,
        vec![
            InsertOutcome::Inserted(a.request_id),
            InsertOutcome::Duplicate(a.request_id),
            InsertOutcome::Inserted(c.request_id),
            InsertOutcome::Duplicate(a.request_id),
        ]
    );
    for dup in [&b, &d] {
        assert_eq!(store.get(dup.request_id).await.expect("get"), None);
    }
    let m = metrics(&store).await;
    assert_eq!((m.count(RequestStatus::Pending), m.count(RequestStatus::Scheduled)), (2, 0));
}

/// Without keys, equal requests are distinct; keys are compared exactly.
pub async fn requests_without_keys_never_dedupe<S: Store>(store: S) {
    let params = json!({"same": true});
    let a = request("t").parameters(params.clone()).build();
    let b = request("t").parameters(params).build();
    let upper = request("t").idempotency_key("Key").build();
    let lower = request("t").idempotency_key("key").build();
    let empty = request("t").idempotency_key("").build();
    insert(&store, vec![a, b, upper, lower, empty]).await;
    assert_eq!(metrics(&store).await.total(), 5);
    let again = request("t").idempotency_key("").build();
    let out = store.insert_many(vec![again]).await.expect("insert_many");
    assert!(matches!(out[..], [InsertOutcome::Duplicate(_)]), "the empty key is a key too: {out:?}");
}
