//! Transitions through `apply`: every legal one, every illegal one, compare-and-set on the
//! attempt, terminal states, cancel, batches.

use std::sync::Arc;

use atmo_core::{Applied, RequestStatus, Store, Transition, TransitionRejected};
use serde_json::json;

use super::{BANK, ChangeKind, OWNER, apply1, claim, get, insert, metrics, request_in, worker};
use crate::fixtures::{at, error, request, request_id};

/// Submit, claim, start, complete: each step's `Applied` and history entry are exact.
pub async fn lifecycle_to_completed<S: Store>(store: S) {
    let r = request("life").created_at(at(1)).build();
    let id = r.request_id;
    insert(&store, vec![r]).await;
    claim(&store, &["life"], 1).await;

    let started = apply1(&store, Transition::start(id, 1, worker(), at(11))).await;
    let expected = Applied {
        id,
        from: RequestStatus::Assigned,
        to: RequestStatus::Processing,
        attempt: 1,
        task_id: Arc::from("life"),
        bank_id: Some(Arc::from(BANK)),
        worker_id: Some(worker()),
        started_at: Some(at(11)),
    };
    assert_eq!(started, Ok(expected.clone()));

    let result = Arc::new(json!({"answer": 42}));
    let done = apply1(&store, Transition::complete(id, 1, result.clone(), at(13))).await;
    assert_eq!(done, Ok(Applied { from: RequestStatus::Processing, to: RequestStatus::Completed, ..expected }));

    let got = get(&store, id).await;
    assert_eq!(got.status, RequestStatus::Completed);
    assert_eq!(got.result, Some(result));
    assert_eq!((got.started_at, got.completed_at, got.updated_at), (Some(at(11)), Some(at(13)), at(13)));
    assert_eq!(got.processing_time(), Some(std::time::Duration::from_secs(2)));
    let steps: Vec<_> = got.history.iter().map(|h| (h.from, h.to, h.at, h.attempt)).collect();
    assert_eq!(
        steps,
        vec![
            (None, RequestStatus::Pending, at(1), 0),
            (Some(RequestStatus::Pending), RequestStatus::Assigned, at(10), 1),
            (Some(RequestStatus::Assigned), RequestStatus::Processing, at(11), 1),
            (Some(RequestStatus::Processing), RequestStatus::Completed, at(13), 1),
        ]
    );
    assert_eq!(got.history[3].worker_id, Some(worker()));
    assert_eq!(got.history[3].bank_id.as_deref(), Some(BANK));
    let m = metrics(&store).await;
    assert_eq!((m.count(RequestStatus::Completed), m.total()), (1, 1));
}

/// Every transition the lifecycle allows, from every state, applies: the outcome names the
/// states, the request moves, and the history records it.
pub async fn every_legal_transition_applies<S: Store>(store: S) {
    let mut tried = 0;
    for from in RequestStatus::ALL {
        for kind in ChangeKind::ALL {
            let Some(to) = kind.legal_target(from) else { continue };
            let before = request_in(&store, from).await;
            let out = apply1(&store, kind.transition(&before, at(20))).await;
            let applied = out.unwrap_or_else(|e| panic!("{kind:?} from {from} must apply: {e}"));
            assert_eq!((applied.id, applied.from, applied.to), (before.request_id, from, to), "{kind:?} from {from}");
            assert_eq!(applied.attempt, before.attempts);
            let after = get(&store, before.request_id).await;
            assert_eq!(after.status, to, "{kind:?} from {from}");
            assert_eq!(after.attempts, before.attempts, "only a claim counts an attempt");
            if kind == ChangeKind::Progress {
                assert_eq!(after.history, before.history, "progress is not a status change");
                assert_eq!(after.progress.as_ref().map(|p| p.percent), Some(50.0));
            } else {
                assert_eq!(after.history.len(), before.history.len() + 1);
                let h = after.history.last().expect("history");
                assert_eq!((h.from, h.to, h.at, h.attempt), (Some(from), to, at(20), before.attempts));
                assert_eq!(after.updated_at, at(20));
            }
            if to.is_terminal() {
                assert_eq!(after.completed_at, Some(at(20)), "{kind:?} from {from} records the end");
            }
            tried += 1;
        }
    }
    assert_eq!(tried, 14, "12 legal status changes besides the claim, and progress in 2 states");
}

/// Every transition the lifecycle forbids, from every state, is rejected as a state mismatch
/// naming the current state, and leaves the request untouched.
pub async fn every_illegal_transition_is_rejected<S: Store>(store: S) {
    for from in RequestStatus::ALL {
        let before = request_in(&store, from).await;
        for kind in ChangeKind::ALL {
            if kind.legal_target(from).is_some() {
                continue;
            }
            let out = apply1(&store, kind.transition(&before, at(20))).await;
            assert_eq!(
                out,
                Err(TransitionRejected::StateMismatch { current: from, attempt: before.attempts }),
                "{kind:?} from {from} must be rejected"
            );
            assert_eq!(get(&store, before.request_id).await, before, "{kind:?} from {from} changed the request");
        }
    }
}

/// A report from an earlier attempt cannot touch the current one (compare-and-set on the
/// attempt), whatever it says.
pub async fn stale_attempt_cannot_overwrite<S: Store>(store: S) {
    let r = request("cas").build();
    let id = r.request_id;
    insert(&store, vec![r]).await;
    claim(&store, &["cas"], 1).await;
    apply1(&store, Transition::start(id, 1, worker(), at(11))).await.expect("start 1");
    apply1(&store, Transition::rescue(id, 1, "worker crashed", at(12))).await.expect("rescue");
    claim(&store, &["cas"], 1).await;
    apply1(&store, Transition::start(id, 2, Arc::from("worker-2"), at(13))).await.expect("start 2");
    let current = get(&store, id).await;
    assert_eq!((current.status, current.attempts), (RequestStatus::Processing, 2));

    let mismatch = Err(TransitionRejected::StateMismatch { current: RequestStatus::Processing, attempt: 2 });
    let late = [
        Transition::complete(id, 1, Arc::new(json!("late")), at(14)),
        Transition::fail(id, 1, error("LATE", "late", 1, at(14)), at(14)),
        Transition::retry(id, 1, error("LATE", "late", 1, at(14)), at(99), at(14)),
        Transition::time_out(id, 1, error("LATE", "late", 1, at(14)), at(14)),
        Transition::rescue(id, 1, "late", at(14)),
        Transition::progress(id, 1, atmo_core::Progress { percent: 1.0, message: None, at: at(14) }),
        Transition::complete(id, 3, Arc::new(json!("future")), at(14)),
    ];
    for t in late {
        assert_eq!(apply1(&store, t.clone()).await, mismatch.clone(), "{t:?}");
    }
    assert_eq!(get(&store, id).await, current);
    let done = apply1(&store, Transition::complete(id, 2, Arc::new(json!("ok")), at(15))).await.expect("complete 2");
    assert_eq!((done.attempt, done.worker_id.as_deref()), (2, Some("worker-2")));
}

/// Terminal requests never change: no transition applies, no claim, promotion or rescue
/// picks them up.
pub async fn terminal_states_never_change<S: Store>(store: S) {
    for status in [RequestStatus::Completed, RequestStatus::Failed, RequestStatus::TimedOut, RequestStatus::Cancelled] {
        let before = request_in(&store, status).await;
        for kind in ChangeKind::ALL {
            for attempt_shift in [0u32, 1] {
                let mut probe = before.clone();
                probe.attempts += attempt_shift;
                let out = apply1(&store, kind.transition(&probe, at(30))).await;
                assert!(
                    matches!(out, Err(TransitionRejected::StateMismatch { current, .. }) if current == status),
                    "{kind:?} on {status}: {out:?}"
                );
            }
        }
        let task = before.task_id.to_string();
        assert!(claim(&store, &[&task], 10).await.is_empty());
        assert!(store.promote_scheduled(at(1_000_000), 100).await.expect("promote").is_empty());
        assert!(store.rescue_expired(at(1_000_000), 100).await.expect("rescue").is_empty());
        assert!(store.rescue_owner(Arc::from(OWNER), at(1_000_000), "restart").await.expect("rescue").is_empty());
        assert_eq!(get(&store, before.request_id).await, before, "{status} changed");
    }
}

/// A transition for an unknown request is `NotFound`.
pub async fn unknown_request_is_not_found<S: Store>(store: S) {
    let id = request_id(at(0));
    for t in [
        Transition::cancel(id, "x", at(1)),
        Transition::start(id, 1, worker(), at(1)),
        Transition::promote(id, 0, at(1)),
    ] {
        assert_eq!(apply1(&store, t).await, Err(TransitionRejected::NotFound));
    }
}

/// A batch applies in order, one outcome per transition: a later transition sees the effect of
/// an earlier one, and a rejected one does not stop the rest.
pub async fn apply_batch_in_order<S: Store>(store: S) {
    let a = request("batch").build();
    let b = request("batch").build();
    insert(&store, vec![a.clone(), b.clone()]).await;
    claim(&store, &["batch"], 2).await;
    let (ia, ib) = (a.request_id, b.request_id);
    let out = store
        .apply(vec![
            Transition::start(ia, 1, worker(), at(11)),
            Transition::complete(ib, 1, Arc::new(json!(1)), at(11)), // b is not started: rejected
            Transition::complete(ia, 1, Arc::new(json!(2)), at(12)), // sees a's start
            Transition::cancel(request_id(at(0)), "gone", at(12)),
            Transition::cancel(ib, "enough", at(13)),
            Transition::cancel(ib, "twice", at(14)),
        ])
        .await
        .expect("apply");
    assert_eq!(out.len(), 6);
    let status = |i: usize| out[i].as_ref().map(|x| x.to).map_err(Clone::clone);
    assert_eq!(status(0), Ok(RequestStatus::Processing));
    assert_eq!(status(1), Err(TransitionRejected::StateMismatch { current: RequestStatus::Assigned, attempt: 1 }));
    assert_eq!(status(2), Ok(RequestStatus::Completed));
    assert_eq!(status(3), Err(TransitionRejected::NotFound));
    assert_eq!(status(4), Ok(RequestStatus::Cancelled));
    assert_eq!(status(5), Err(TransitionRejected::StateMismatch { current: RequestStatus::Cancelled, attempt: 1 }));
    assert!(store.apply(Vec::new()).await.expect("empty batch").is_empty());
}

/// Cancel works from every non-terminal state; the request then stays out of every queue,
/// schedule and lease.
pub async fn cancel_from_each_non_terminal_state<S: Store>(store: S) {
    for from in [RequestStatus::Pending, RequestStatus::Scheduled, RequestStatus::Assigned, RequestStatus::Processing] {
        let before = request_in(&store, from).await;
        let out = apply1(&store, Transition::cancel(before.request_id, "client asked", at(20))).await.expect("cancel");
        assert_eq!((out.from, out.to), (from, RequestStatus::Cancelled));
        let after = get(&store, before.request_id).await;
        assert_eq!((after.status, after.completed_at), (RequestStatus::Cancelled, Some(at(20))));
        let h = after.history.last().expect("history");
        assert_eq!((h.from, h.to, &*h.reason), (Some(from), RequestStatus::Cancelled, "client asked"));

        let task = before.task_id.to_string();
        assert!(claim(&store, &[&task], 10).await.is_empty(), "a cancelled {from} request is never claimed");
    }
    assert_eq!(store.next_scheduled().await.expect("next"), None, "the cancelled scheduled request is gone");
    assert!(store.promote_scheduled(at(1_000_000), 100).await.expect("promote").is_empty());
    assert!(store.rescue_expired(at(1_000_000), 100).await.expect("rescue").is_empty(), "leases are released");
    assert_eq!(store.heartbeat(Arc::from(OWNER), at(100)).await.expect("heartbeat"), 0);
    let m = metrics(&store).await;
    assert_eq!((m.count(RequestStatus::Cancelled), m.total()), (4, 4));
}

/// Many cancelled pending requests do not hide the live ones behind them.
pub async fn cancelled_requests_do_not_block_the_queue<S: Store>(store: S) {
    let dead: Vec<_> = (0..3000).map(|_| request("crowd").priority(10).build()).collect();
    let live = request("crowd").priority(1).build();
    let mut all = dead.clone();
    all.push(live.clone());
    insert(&store, all).await;
    let cancels = dead.iter().map(|r| Transition::cancel(r.request_id, "bulk", at(5))).collect();
    let out = store.apply(cancels).await.expect("apply");
    assert!(out.iter().all(Result::is_ok));
    let claimed = claim(&store, &["crowd"], 10).await;
    assert_eq!(claimed.iter().map(|r| r.request_id).collect::<Vec<_>>(), vec![live.request_id]);
}
