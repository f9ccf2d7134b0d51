//! Several stores (nodes) on one schema interleave inserts, claims, applies, heartbeats and
//! rescues, round after round, each round's operations running at once; after every round
//! the invariants of the lifecycle hold:
//!
//! - no attempt of a request is claimed twice (so no request is held by two owners at once);
//! - no request is lost or duplicated;
//! - a terminal state never changes;
//! - attempts never go down, and the history is one chain;
//! - a transition that took effect came from the owner of the current attempt: a late result
//!   of a rescued attempt is rejected, whichever node sends it.
//!
//! Time is logical (each round is 10 s later); a node that skips heartbeats loses its leases
//! to whichever node runs the rescuer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use atmo_core::{ClaimParams, Request, RequestId, RequestQuery, RequestStatus, Store, Timestamp, Transition};
use atmo_postgres::PostgresStore;
use atmo_testkit::fixtures::{at, error, request};
use proptest::prelude::*;
use serde_json::json;

use crate::common::{another, fresh};

const TASK: &str = "work";
const LEASE: Duration = Duration::from_secs(25);

#[derive(Clone, Copy, Debug)]
enum Op {
    Insert(u8),
    Claim(u8),
    Start,
    Complete,
    Retry,
    Fail,
    Heartbeat,
    Rescue,
    Promote,
    Cancel(u8),
    Idle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..6).prop_map(Op::Insert),
        3 => (1u8..5).prop_map(Op::Claim),
        3 => Just(Op::Start),
        3 => Just(Op::Complete),
        1 => Just(Op::Retry),
        1 => Just(Op::Fail),
        2 => Just(Op::Heartbeat),
        2 => Just(Op::Rescue),
        1 => Just(Op::Promote),
        1 => any::<u8>().prop_map(Op::Cancel),
        1 => Just(Op::Idle),
    ]
}

/// One node: a store of its own and the attempts it believes it holds.
struct Node {
    store: PostgresStore,
    name: Arc<str>,
    /// (request, attempt, started)
    held: Vec<(RequestId, u32, bool)>,
}

/// What a node did in a round that the checks need.
#[derive(Default)]
struct Log {
    inserted: Vec<RequestId>,
    claimed: Vec<(RequestId, u32)>,
    /// Transitions that took effect: request, attempt, the status reached.
    applied: Vec<(RequestId, u32, RequestStatus)>,
}

async fn step(node: &mut Node, op: Op, now: Timestamp, known: &[RequestId]) -> Log {
    let mut log = Log::default();
    let s = &node.store;
    match op {
        Op::Insert(n) => {
            let reqs: Vec<Request> = (0..n).map(|_| request(TASK).created_at(now).build()).collect();
            for o in s.insert_many(reqs).await.expect("insert") {
                log.inserted.push(o.id());
            }
        }
        Op::Claim(limit) => {
            let params = ClaimParams {
                bank_id: Arc::from("bank"),
                task_ids: vec![Arc::from(TASK)],
                limit: usize::from(limit),
                owner: node.name.clone(),
                now,
                lease_until: now + LEASE,
            };
            for c in s.claim(params).await.expect("claim") {
                log.claimed.push((c.request_id, c.attempt));
                node.held.push((c.request_id, c.attempt, false));
            }
        }
        Op::Start | Op::Complete | Op::Retry | Op::Fail => {
            let want_started = !matches!(op, Op::Start);
            let Some(i) = node.held.iter().position(|h| h.2 == want_started) else { return log };
            let (id, attempt, _) = node.held.remove(i);
            let t = match op {
                Op::Start => Transition::start(id, attempt, Arc::from("w"), now),
                Op::Complete => Transition::complete(id, attempt, Arc::new(json!({"by": &*node.name})), now),
                Op::Retry => Transition::retry(id, attempt, error("E", "again", attempt, now), now + LEASE, now),
                _ => Transition::fail(id, attempt, error("E", "no", attempt, now), now),
            };
            let out = s.apply(vec![t]).await.expect("apply").remove(0);
            if let Ok(a) = out {
                log.applied.push((id, attempt, a.to));
                if matches!(op, Op::Start) {
                    node.held.push((id, attempt, true));
                }
            }
        }
        Op::Heartbeat => {
            s.heartbeat(node.name.clone(), now + LEASE).await.expect("heartbeat");
        }
        Op::Rescue => {
            s.rescue_expired(now, 100).await.expect("rescue");
        }
        Op::Promote => {
            s.promote_scheduled(now, 100).await.expect("promote");
        }
        Op::Cancel(k) => {
            if !known.is_empty() {
                let id = known[usize::from(k) % known.len()];
                s.apply(vec![Transition::cancel(id, "client", now)]).await.expect("cancel");
            }
        }
        Op::Idle => {}
    }
    log
}

async fn run(nodes: usize, rounds: Vec<Vec<Op>>) {
    let Some(first) = fresh().await else { return };
    let mut cluster = Vec::new();
    for i in 0..nodes {
        cluster.push(Node {
            store: another(&first.schema).await,
            name: Arc::from(format!("node-{i}")),
            held: Vec::new(),
        });
    }
    let mut known: Vec<RequestId> = Vec::new();
    let mut owners: HashMap<(RequestId, u32), Arc<str>> = HashMap::new();
    let mut seen: HashMap<RequestId, Request> = HashMap::new();
    let mut finished_by: HashMap<RequestId, u32> = HashMap::new();
    for (round, ops) in rounds.into_iter().enumerate() {
        let now = at(10 * (round as i64 + 1));
        let snapshot = known.clone();
        let logs = futures::future::join_all(cluster.iter_mut().zip(ops).map(|(node, op)| {
            let snapshot = &snapshot;
            async move {
                let name = node.name.clone();
                (name, step(node, op, now, snapshot).await)
            }
        }))
        .await;
        for (name, log) in logs {
            known.extend(log.inserted);
            for key in log.claimed {
                let previous = owners.insert(key, name.clone());
                assert!(previous.is_none(), "round {round}: {key:?} claimed by {name} and by {previous:?}");
            }
            for (id, attempt, to) in log.applied {
                assert_eq!(
                    owners.get(&(id, attempt)),
                    Some(&name),
                    "round {round}: {name} changed {id} attempt {attempt} it did not own"
                );
                if to.is_terminal() {
                    let before = finished_by.insert(id, attempt);
                    assert!(before.is_none(), "round {round}: {id} finished twice");
                }
            }
        }
        // Cancels finish requests too; every finish is checked against the stored state.
        let page = first.query(RequestQuery::new().limit(10_000)).await.expect("query");
        assert_eq!(page.total, known.len(), "round {round}: every inserted request is stored, once");
        let stored: HashMap<RequestId, Request> = page.requests.into_iter().map(|r| (r.request_id, r)).collect();
        for id in &known {
            let r = stored.get(id).unwrap_or_else(|| panic!("round {round}: {id} was lost"));
            for pair in r.history.windows(2) {
                assert_eq!(pair[1].from, Some(pair[0].to), "round {round}: {id}'s history is one chain");
                assert!(pair[1].attempt >= pair[0].attempt, "round {round}: {id}'s attempts never go down");
            }
            if r.status.is_running() {
                assert!(owners.contains_key(&(*id, r.attempts)), "round {round}: {id} runs an attempt nobody claimed");
            }
            if let Some(&attempt) = finished_by.get(id) {
                assert!(
                    r.status.is_terminal() && r.attempts == attempt,
                    "round {round}: {id} finished by attempt {attempt}"
                );
            }
            if let Some(old) = seen.get(id) {
                assert!(r.attempts >= old.attempts, "round {round}: {id}'s attempts went down");
                if old.status.is_terminal() {
                    assert_eq!(
                        (r.status, r.attempts, r.history.len()),
                        (old.status, old.attempts, old.history.len()),
                        "round {round}: {id} changed after it finished"
                    );
                }
            }
        }
        seen = stored;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn nodes_interleaving_keep_the_invariants(
        nodes in 2usize..=4,
        rounds in prop::collection::vec(prop::collection::vec(op(), 4), 1..16),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(run(nodes, rounds));
    }
}
