//! A property test of the lifecycle state machine: random sequences of transitions applied with
//! `apply_transition` (and claims with `apply_claim`).

use std::sync::Arc;
use std::time::Duration;

use atmo_workers::{
    Change, Progress, Request, RequestError, RequestId, RequestStatus, Timestamp, Transition, apply_claim,
    apply_transition,
};
use proptest::prelude::*;
use serde_json::json;

#[derive(Clone, Copy, Debug)]
enum Op {
    Claim,
    Start,
    Complete,
    Fail,
    Retry,
    TimeOut,
    Rescue,
    Promote,
    Cancel,
    Progress,
}

/// An operation, and whether it names the request's current attempt (`None`) or another one.
fn op() -> impl Strategy<Value = (Op, Option<u32>)> {
    let kind = prop_oneof![
        Just(Op::Claim),
        Just(Op::Start),
        Just(Op::Complete),
        Just(Op::Fail),
        Just(Op::Retry),
        Just(Op::TimeOut),
        Just(Op::Rescue),
        Just(Op::Promote),
        Just(Op::Cancel),
        Just(Op::Progress),
    ];
    let attempt = prop_oneof![4 => Just(None), 1 => (0u32..5).prop_map(Some)];
    (kind, attempt)
}

fn error(attempt: u32, at: Timestamp) -> RequestError {
    atmo_testkit::fixtures::error("E", "failed", attempt, at)
}

fn request(status: RequestStatus, at: Timestamp) -> Request {
    let run_at = (status == RequestStatus::Scheduled).then_some(at + Duration::from_secs(1));
    let mut req = Request::new(RequestId::from_parts(at, [1; 10]), "task", json!({}), at, run_at);
    // Start anywhere in the lifecycle, as if the request had got there.
    req.status = status;
    if let Some(first) = req.history.first_mut() {
        first.to = status;
    }
    req
}

fn transition(op: Op, id: RequestId, attempt: u32, at: Timestamp) -> Transition {
    match op {
        Op::Start => Transition::start(id, attempt, Arc::from("w/0"), at),
        Op::Complete => Transition::complete(id, attempt, Arc::new(json!("ok")), at),
        Op::Fail => Transition::fail(id, attempt, error(attempt, at), at),
        Op::Retry => Transition::retry(id, attempt, error(attempt, at), at + Duration::from_secs(1), at),
        Op::TimeOut => Transition::time_out(id, attempt, error(attempt, at), at),
        Op::Rescue => Transition::rescue(id, attempt, "worker lost", at),
        Op::Promote => Transition::promote(id, attempt, at),
        Op::Cancel => Transition::cancel(id, "cancelled", at),
        Op::Progress | Op::Claim => Transition::progress(id, attempt, Progress { percent: 50.0, message: None, at }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_transitions_respect_the_lifecycle(
        scheduled in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let start = Timestamp::from_millis(1_700_000_000_000);
        let mut req = request(if scheduled { RequestStatus::Scheduled } else { RequestStatus::Pending }, start);
        let id = req.request_id;
        let mut changes = 0usize;
        for (step, (op, attempt)) in ops.into_iter().enumerate() {
            let at = start + Duration::from_millis(step as u64 + 1);
            let before = req.clone();
            let attempt = attempt.unwrap_or(req.attempts);
            let outcome = match op {
                Op::Claim => apply_claim(&mut req, &Arc::from("bank"), at).map(|()| RequestStatus::Pending),
                _ => apply_transition(&mut req, &transition(op, id, attempt, at)),
            };
            match outcome {
                Ok(from) => {
                    prop_assert_eq!(from, before.status);
                    prop_assert!(!before.status.is_terminal(), "{:?} left terminal {}", op, before.status);
                    let status_change = !matches!(op, Op::Progress);
                    if status_change {
                        changes += 1;
                        prop_assert!(from.can_transition_to(req.status), "{} -> {} is not allowed", from, req.status);
                        let last = req.history.last().cloned();
                        prop_assert_eq!(last.as_ref().map(|h| (h.from, h.to, h.at, h.attempt)), Some((Some(from), req.status, at, req.attempts)));
                        prop_assert_eq!(req.updated_at, at);
                    } else {
                        prop_assert_eq!(req.status, before.status);
                        prop_assert_eq!(req.history.len(), before.history.len());
                    }
                    if matches!(op, Op::Claim) {
                        prop_assert_eq!(req.attempts, before.attempts + 1);
                    } else {
                        prop_assert_eq!(req.attempts, before.attempts);
                    }
                    if req.status.is_terminal() {
                        prop_assert_eq!(req.completed_at, Some(at));
                    }
                }
                Err(_) => prop_assert_eq!(&req, &before, "a rejected {:?} changed the request", op),
            }
            prop_assert_eq!(req.history.len(), changes + 1);
            if before.status.is_terminal() {
                prop_assert_eq!(req.status, before.status);
            }
            // The history is a chain: each entry starts where the previous one ended.
            prop_assert!(req.history.windows(2).all(|w| w[1].from == Some(w[0].to)));
            prop_assert_eq!(req.history.last().map(|h| h.to), Some(req.status));
        }
    }
}

/// Every legal edge of the lifecycle is reachable through the transition constructors, and
/// every constructor's target agrees with `can_transition_to`.
#[test]
fn every_legal_edge_is_reachable() {
    use RequestStatus::*;
    let start = Timestamp::from_millis(1_700_000_000_000);
    let mut reached = std::collections::BTreeSet::new();
    let ops = [Op::Start, Op::Complete, Op::Fail, Op::Retry, Op::TimeOut, Op::Rescue, Op::Promote, Op::Cancel];
    for from in RequestStatus::ALL {
        for op in ops {
            let mut req = request(from, start);
            req.attempts = 1;
            let id = req.request_id;
            let t = transition(op, id, 1, start + Duration::from_millis(1));
            if let Some(to) = t.change().target() {
                let applied = apply_transition(&mut req, &t);
                if applied.is_ok() {
                    assert!(from.can_transition_to(to), "{from} -> {to}");
                    reached.insert((from, to));
                }
            }
        }
        let mut req = request(from, start);
        if apply_claim(&mut req, &Arc::from("bank"), start).is_ok() {
            reached.insert((from, Assigned));
        }
    }
    let legal: std::collections::BTreeSet<_> = RequestStatus::ALL
        .into_iter()
        .flat_map(|f| RequestStatus::ALL.into_iter().map(move |t| (f, t)))
        .filter(|(f, t)| f.can_transition_to(*t))
        .collect();
    assert_eq!(reached, legal);
    assert!(matches!(Transition::cancel(RequestId::from_u128(1), "x", start).change(), Change::Cancel { .. }));
}
