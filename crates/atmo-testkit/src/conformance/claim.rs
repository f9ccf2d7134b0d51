//! Claims: order, task selection, limits, what a claim records, exclusivity under concurrency.

use std::collections::HashSet;
use std::sync::Arc;

use atmo_core::{Claimed, Request, RequestId, RequestStatus, RetryPolicy, Store};
use serde_json::json;

use super::{BANK, OWNER, claim, claim_params, claim_time, get, insert, lease_until, metrics};
use crate::fixtures::{at, just_after, request};

fn ids(cs: &[Claimed]) -> Vec<RequestId> {
    cs.iter().map(|c| c.request_id).collect()
}

fn request_ids(rs: &[Request]) -> Vec<RequestId> {
    rs.iter().map(|r| r.request_id).collect()
}

/// Highest priority first; FIFO (submission order) within a priority, whatever the ids or
/// creation times say.
pub async fn claim_orders_by_priority_then_fifo<S: Store>(store: S) {
    // Creation times run backwards, so a store ordering by `created_at` or by id fails.
    let spec = [5u8, 9, 5, 1, 9, 10, 5];
    let reqs: Vec<_> = spec
        .iter()
        .enumerate()
        .map(|(i, &p)| request("q").priority(p).created_at(at(100 - i as i64)).build())
        .collect();
    insert(&store, reqs.clone()).await;
    let claimed = claim(&store, &["q"], 100).await;
    let order = [5usize, 1, 4, 0, 2, 6, 3];
    assert_eq!(ids(&claimed), order.iter().map(|&i| reqs[i].request_id).collect::<Vec<_>>());
}

/// Only the listed tasks are claimed; an unknown task claims nothing.
pub async fn claim_takes_only_listed_tasks<S: Store>(store: S) {
    let a = request("a").build();
    let b = request("b").priority(10).build();
    let c = request("c").build();
    insert(&store, vec![a.clone(), b.clone(), c.clone()]).await;
    assert!(claim(&store, &["zzz"], 10).await.is_empty());
    assert!(claim(&store, &[], 10).await.is_empty());
    let claimed = claim(&store, &["a", "c"], 10).await;
    assert_eq!(ids(&claimed), vec![a.request_id, c.request_id]);
    assert_eq!(get(&store, b.request_id).await.status, RequestStatus::Pending);
    assert_eq!(ids(&claim(&store, &["b"], 10).await), vec![b.request_id]);
}

/// A claim returns at most `limit`; the rest stay claimable in order; a task listed twice
/// counts once.
pub async fn claim_respects_limit<S: Store>(store: S) {
    let reqs: Vec<_> = (0..5).map(|_| request("l").build()).collect();
    insert(&store, reqs.clone()).await;
    assert!(claim(&store, &["l"], 0).await.is_empty(), "limit 0 claims nothing");
    assert_eq!(ids(&claim(&store, &["l", "l"], 2).await), request_ids(&reqs[..2]));
    assert_eq!(ids(&claim(&store, &["l"], 10).await), request_ids(&reqs[2..]));
    assert!(claim(&store, &["l"], 10).await.is_empty());
    let m = metrics(&store).await;
    assert_eq!((m.count(RequestStatus::Pending), m.count(RequestStatus::Assigned)), (0, 5));
}

/// A claim hands out what running the attempt needs (task, parameters, attempt, priority,
/// timeout, retry policy); the stored request becomes `assigned` to the bank, its attempt
/// counted and the history entry recorded, under a lease until `lease_until`.
pub async fn claim_assigns_counts_attempt_and_leases<S: Store>(store: S) {
    let mut r = request("one")
        .created_at(at(1))
        .priority(8)
        .parameters(json!({"n": 1, "deep": [true, null]}))
        .timeout(std::time::Duration::from_millis(2500))
        .build();
    r.retry = Some(Box::new(RetryPolicy { max_retries: 7, ..RetryPolicy::default() }));
    insert(&store, vec![r.clone()]).await;
    let claimed = claim(&store, &["one"], 1).await;
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(c.request_id, r.request_id);
    assert_eq!(&*c.task_id, "one");
    assert_eq!(c.parameters, r.parameters);
    assert_eq!(c.attempt, 1);
    assert_eq!(c.priority, 8);
    assert_eq!(c.timeout, Some(std::time::Duration::from_millis(2500)));
    assert_eq!(c.retry, r.retry);

    let stored = get(&store, r.request_id).await;
    assert_eq!(stored.status, RequestStatus::Assigned);
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.bank_id.as_deref(), Some(BANK));
    assert_eq!(stored.worker_id, None);
    assert_eq!(stored.assigned_at, Some(claim_time()));
    assert_eq!(stored.updated_at, claim_time());
    assert_eq!(stored.created_at, at(1));
    assert_eq!(stored.history.len(), 2);
    let h = &stored.history[1];
    assert_eq!(
        (h.from, h.to, h.at, h.bank_id.as_deref(), h.worker_id.as_deref(), h.attempt),
        (Some(RequestStatus::Pending), RequestStatus::Assigned, claim_time(), Some(BANK), None, 1)
    );
    assert_eq!(&Claimed::from(&stored), c, "the claim describes the stored request");

    // The lease: not expired at its own instant, expired one microsecond later.
    assert!(store.rescue_expired(lease_until(), 10).await.expect("rescue").is_empty());
    assert_eq!(store.heartbeat(Arc::from(OWNER), lease_until()).await.expect("heartbeat"), 1);
    let rescued = store.rescue_expired(just_after(lease_until()), 10).await.expect("rescue");
    assert_eq!(rescued, vec![r.request_id]);
}

/// A claim over several tasks merges their queues: one global priority/FIFO order.
pub async fn claim_merges_tasks_by_priority<S: Store>(store: S) {
    let a3 = request("a").priority(3).build();
    let a8 = request("a").priority(8).build();
    let b8 = request("b").priority(8).build();
    let b5 = request("b").priority(5).build();
    let c10 = request("c").priority(10).build();
    let a8_late = request("a").priority(8).build();
    insert(&store, vec![a3.clone(), a8.clone(), b8.clone(), b5.clone(), c10.clone(), a8_late.clone()]).await;
    let claimed = claim(&store, &["b", "a"], 10).await;
    assert_eq!(ids(&claimed), vec![a8.request_id, b8.request_id, a8_late.request_id, b5.request_id, a3.request_id]);
    assert_eq!(get(&store, c10.request_id).await.status, RequestStatus::Pending);
}

/// Scheduled requests are not claimable before they are promoted.
pub async fn claim_skips_scheduled_requests<S: Store>(store: S) {
    let later = request("s").run_at(at(100)).priority(10).build();
    let now = request("s").priority(1).build();
    insert(&store, vec![later.clone(), now.clone()]).await;
    assert_eq!(ids(&claim(&store, &["s"], 10).await), vec![now.request_id]);
    assert!(claim(&store, &["s"], 10).await.is_empty());
    assert_eq!(get(&store, later.request_id).await.status, RequestStatus::Scheduled);
}

/// Many claimers at once, over overlapping task sets, on several threads: no request is
/// handed out twice, and together they claim every request.
pub async fn concurrent_claims_are_exclusive<S: Store>(store: S) {
    const TASKS: [&str; 4] = ["c0", "c1", "c2", "c3"];
    const PER_TASK: usize = 150;
    const CLAIMERS: usize = 8;
    let mut all = Vec::new();
    for (t, task) in TASKS.iter().enumerate() {
        let batch: Vec<_> =
            (0..PER_TASK).map(|i| request(task).priority(1 + ((i * 7 + t) % 10) as u8).build()).collect();
        all.extend(batch.iter().map(|r| r.request_id));
        insert(&store, batch).await;
    }
    let store = Arc::new(store);
    let mut handles = Vec::new();
    for c in 0..CLAIMERS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            // Each claimer serves three of the four tasks, so every task has several claimers.
            let tasks: Vec<&str> = (0..3).map(|k| TASKS[(c + k) % TASKS.len()]).collect();
            let bank = format!("bank-{c}");
            let mut got = Vec::new();
            loop {
                let p = claim_params(&bank, &tasks, 1 + c % 5, &format!("owner-{c}"), claim_time(), lease_until());
                let batch = store.claim(p).await.expect("claim");
                if batch.is_empty() {
                    break;
                }
                for c in batch {
                    assert_eq!(c.attempt, 1, "request {} is on its first attempt", c.request_id);
                    got.push(c.request_id);
                }
                tokio::task::yield_now().await;
            }
            (bank, got)
        }));
    }
    let mut seen = HashSet::new();
    for h in handles {
        let (bank, got) = h.await.expect("claimer finished");
        for id in got {
            assert!(seen.insert(id), "request {id} was claimed twice");
            let r = get(&*store, id).await;
            assert_eq!((r.status, r.attempts), (RequestStatus::Assigned, 1));
            assert_eq!(r.bank_id.as_deref(), Some(bank.as_str()), "request {id} is assigned to its claimer");
        }
    }
    assert_eq!(seen.len(), all.len(), "every request was claimed");
    assert!(all.iter().all(|id| seen.contains(id)));
    let m = metrics(&*store).await;
    assert_eq!(m.count(RequestStatus::Assigned), all.len() as u64);
    assert_eq!(m.count(RequestStatus::Pending), 0);
}
