//! Metrics: counts by status, the throughput window, error counts, processing times.

use std::sync::Arc;

use atmo_core::{ErrorCount, MetricsParams, RequestStatus, Store, StoreMetrics, Transition};
use serde_json::json;

use super::{apply1, claim, insert, metrics, request_in, worker};
use crate::fixtures::{at, at_ms, error, request};

/// An empty store reports zeros.
pub async fn metrics_of_an_empty_store<S: Store>(store: S) {
    assert_eq!(metrics(&store).await, StoreMetrics::default());
}

/// Counts by status follow every insert and transition.
pub async fn metrics_count_by_status<S: Store>(store: S) {
    for (k, status) in RequestStatus::ALL.into_iter().enumerate() {
        for _ in 0..=k {
            request_in(&store, status).await;
        }
    }
    let m = metrics(&store).await;
    for (k, status) in RequestStatus::ALL.into_iter().enumerate() {
        assert_eq!(m.count(status), k as u64 + 1, "{status}");
    }
    assert_eq!(m.total(), 36);
}

/// `finished_in_window` counts terminal requests that finished at or after the window start.
pub async fn metrics_count_finished_in_window<S: Store>(store: S) {
    let reqs: Vec<_> = (0..6).map(|_| request("w").build()).collect();
    insert(&store, reqs.clone()).await;
    claim(&store, &["w"], 6).await;
    for (i, r) in reqs.iter().enumerate() {
        let id = r.request_id;
        let end = at(100 + 10 * i as i64);
        if i == 5 {
            apply1(&store, Transition::cancel(id, "stop", end)).await.expect("cancel");
            continue;
        }
        apply1(&store, Transition::start(id, 1, worker(), at(11))).await.expect("start");
        let t = match i {
            0 | 1 => Transition::complete(id, 1, Arc::new(json!(i)), end),
            2 => Transition::fail(id, 1, error("E", "no", 1, end), end),
            3 => Transition::time_out(id, 1, error("T", "slow", 1, end), end),
            // A retry is not a finish.
            _ => Transition::retry(id, 1, error("R", "again", 1, end), at(10_000), end),
        };
        apply1(&store, t).await.expect("finish");
    }
    let window = |start| store.metrics(MetricsParams { now: at(1000), window_start: start, top_errors: 5 });
    assert_eq!(window(at(0)).await.expect("metrics").finished_in_window, 5);
    assert_eq!(window(at(120)).await.expect("metrics").finished_in_window, 3, "the window start is inclusive");
    assert_eq!(window(at(121)).await.expect("metrics").finished_in_window, 2);
    assert_eq!(window(at(151)).await.expect("metrics").finished_in_window, 0);
}

/// Error codes are counted per failed, timed-out or retried attempt, most frequent first, with
/// the latest message, limited to the number asked for.
pub async fn metrics_rank_top_errors<S: Store>(store: S) {
    let plan = [("DB_DOWN", 4), ("BAD_INPUT", 2), ("SLOW", 3), ("RARE", 1)];
    let mut n = 0;
    for (code, count) in plan {
        for k in 0..count {
            let r = request("err").build();
            let id = r.request_id;
            insert(&store, vec![r]).await;
            claim(&store, &["err"], 1).await;
            apply1(&store, Transition::start(id, 1, worker(), at(11))).await.expect("start");
            let msg = format!("{code} #{k}");
            let e = error(code, &msg, 1, at(12));
            let t = match n % 3 {
                0 => Transition::fail(id, 1, e, at(12)),
                1 => Transition::time_out(id, 1, e, at(12)),
                _ => Transition::retry(id, 1, e, at(99), at(12)),
            };
            apply1(&store, t).await.expect("record error");
            n += 1;
        }
    }
    let top = |k| store.metrics(MetricsParams { now: at(100), window_start: at(0), top_errors: k });
    let m = top(3).await.expect("metrics");
    let ec = |code: &str, count, last: &str| ErrorCount { code: code.into(), count, last_message: last.into() };
    assert_eq!(
        m.top_errors,
        vec![ec("DB_DOWN", 4, "DB_DOWN #3"), ec("SLOW", 3, "SLOW #2"), ec("BAD_INPUT", 2, "BAD_INPUT #1")]
    );
    assert_eq!(top(10).await.expect("metrics").top_errors.len(), 4);
    assert!(top(0).await.expect("metrics").top_errors.is_empty());
}

/// Processing times (start to completion) of completed requests give sensible percentiles.
pub async fn metrics_summarise_processing_time<S: Store>(store: S) {
    let reqs: Vec<_> = (0..100).map(|_| request("p").build()).collect();
    insert(&store, reqs.clone()).await;
    claim(&store, &["p"], 100).await;
    let starts = reqs.iter().map(|r| Transition::start(r.request_id, 1, worker(), at(20))).collect();
    assert!(store.apply(starts).await.expect("apply").iter().all(Result::is_ok));
    // Completed after 1..=100 ms; one more fails after a long time and must not count.
    let ends = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| Transition::complete(r.request_id, 1, Arc::new(json!(i)), at_ms(20_000 + 1 + i as i64)))
        .collect();
    assert!(store.apply(ends).await.expect("apply").iter().all(Result::is_ok));
    let failed = request_in(&store, RequestStatus::Failed).await;
    assert!(failed.processing_time().is_some());

    let p = metrics(&store).await.processing;
    assert_eq!(p.count, 100);
    let close = |got: f64, want: f64| (got - want).abs() <= want * 0.02 + 0.01;
    assert!(close(p.mean_ms, 50.5), "mean {p:?}");
    assert!(close(p.p50_ms, 50.0), "p50 {p:?}");
    assert!(close(p.p95_ms, 95.0), "p95 {p:?}");
    assert!(close(p.p99_ms, 99.0), "p99 {p:?}");
    assert!(close(p.max_ms, 100.0), "max {p:?}");
    assert!(p.p50_ms <= p.p95_ms && p.p95_ms <= p.p99_ms && p.p99_ms <= p.max_ms);
}
