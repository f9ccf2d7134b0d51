//! The dispatcher: claims ready requests for banks with spare capacity and hands them to
//! workers.
//!
//! Banks are served in order of the original package's score (spare capacity, proficiency,
//! success rate), so when several banks can run a task, the best-placed one claims first.
//! Within a bank, the least-loaded worker (per the activity tracer) gets each request.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use atmo_core::{CancellationToken, ClaimParams, Claimed, EventKind, RequestStatus};

use super::Engine;
use super::executor::Job;
use super::running::RunningEntry;

pub(crate) async fn run(inner: Arc<Engine>) {
    let mut store_failed = false;
    loop {
        let retry = async {
            if store_failed {
                // The last claim failed: try again soon even if nothing else wakes us.
                inner.sleep(std::time::Duration::from_secs(1)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = inner.wake.dispatch_needed() => {}
            () = retry => {}
            () = inner.shutdown.cancelled() => break,
        }
        let mut scratch = inner.dispatch_lock.lock().await;
        // Keep going while rounds make progress: more may be waiting than one claim takes.
        loop {
            let (claimed, failed) = round(&inner, &mut scratch).await;
            store_failed = failed;
            if claimed == 0 || inner.shutdown.is_cancelled() {
                break;
            }
        }
    }
}

/// Dispatches on the caller's task when no dispatch round is running: a submission reaches an
/// idle worker without waking the dispatcher task first (one hop less of latency). Returns
/// `false` when a round is already running (the caller then wakes the dispatcher, which will
/// look again).
pub(crate) async fn try_dispatch_now(inner: &Arc<Engine>) -> bool {
    let Ok(mut scratch) = inner.dispatch_lock.try_lock() else { return false };
    // After a failed claim, let the dispatcher task (which retries) take over.
    !round(inner, &mut scratch).await.1
}

/// The buffers of a dispatch round, reused from one round to the next (see
/// [`Engine::commit_drain`](super::Engine::commit_drain) for why).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    running: Vec<(atmo_core::RequestId, RunningEntry)>,
    jobs: Vec<Job>,
}

impl Scratch {
    fn trim(&mut self) {
        super::trim_scratch(&mut self.running);
        super::trim_scratch(&mut self.jobs);
    }
}

/// One pass over the banks; returns how many requests were dispatched and whether a claim
/// failed.
async fn round(inner: &Arc<Engine>, scratch: &mut Scratch) -> (usize, bool) {
    if !inner.dispatching.load(Ordering::Acquire) {
        return (0, false);
    }
    let mut failed = false;
    let mut banks = inner.registry.running_banks();
    banks.retain(|b| b.status() == atmo_core::BankStatus::Active && b.spare() > 0);
    banks.sort_by(|a, b| b.score().total_cmp(&a.score()));
    let mut total = 0;
    for bank in banks {
        let limit = bank.spare().min(inner.config.claim_batch);
        if limit == 0 {
            continue;
        }
        // Reserve the capacity before the claim so a concurrent release cannot over-admit.
        bank.in_flight.fetch_add(limit, Ordering::AcqRel);
        let now = inner.clock.now();
        let params = ClaimParams {
            bank_id: bank.id.clone(),
            task_ids: if bank.catch_all { inner.registry.task_ids() } else { bank.task_ids.clone() },
            limit,
            owner: inner.node_id.clone(),
            now,
            lease_until: now + inner.config.lease_duration,
        };
        let gate = if inner.events.active() { Some(inner.events_gate.write().await) } else { None };
        let claimed = match inner.store.claim(params).await {
            Ok(c) => c,
            Err(e) => {
                bank.release(limit);
                tracing::error!(bank = %bank.id, error = %e, "claim failed");
                failed = true;
                continue;
            }
        };
        bank.release(limit - claimed.len().min(limit));
        if claimed.is_empty() {
            continue;
        }
        total += claimed.len();
        let events_on = inner.events.active();
        // One allocation for the batch's tokens, and one lock of each running-table shard.
        let tokens = CancellationToken::group(claimed.len());
        let Scratch { running, jobs } = &mut *scratch;
        running.reserve(claimed.len());
        jobs.reserve(claimed.len());
        // Claims are usually of one task: look its entry up once, not per request.
        let mut last: Option<(Arc<str>, Option<Arc<super::TaskEntry>>)> = None;
        for (req, token) in claimed.into_iter().zip(tokens) {
            let Claimed { request_id, task_id, parameters, attempt, timeout, retry, .. } = req;
            if !matches!(&last, Some((t, _)) if Arc::ptr_eq(t, &task_id) || **t == *task_id) {
                last = Some((task_id.clone(), inner.registry.task(&task_id)));
            }
            let entry = last.as_ref().and_then(|(_, e)| e.as_ref());
            let timeout = timeout.or(entry.map(|e| e.timeout)).unwrap_or(atmo_core::manifest::DEFAULT_TIMEOUT);
            let policy = match (retry, entry) {
                (Some(p), _) => Arc::new(*p),
                (None, Some(e)) => e.policy.clone(),
                (None, None) => Arc::new(atmo_core::RetryPolicy::default()),
            };
            let worker = bank.activity.least_loaded_worker().unwrap_or(0);
            running.push((
                request_id,
                RunningEntry {
                    attempt,
                    token: token.clone(),
                    bank: bank.index,
                    timeout,
                    policy,
                    action_retryable: entry.is_none_or(|e| e.retryable),
                    deadline: None,
                },
            ));
            bank.activity.record_dispatch(worker);
            if events_on {
                inner.events.emit_at(
                    now,
                    EventKind::RequestStatusChanged {
                        request_id,
                        from: Some(RequestStatus::Pending),
                        to: RequestStatus::Assigned,
                        attempt,
                    },
                );
                inner.events.emit_at(now, EventKind::RequestAssigned { request_id, bank_id: bank.id.clone(), attempt });
            }
            jobs.push(Job {
                request_id,
                attempt,
                task_id,
                parameters,
                cancel: token,
                timeout,
                worker,
                bank: bank.index,
            });
        }
        inner.running.insert_many(running);
        drop(gate);
        bank.executor.dispatch_many(jobs);
        scratch.trim();
        inner.wake.work_dispatched();
    }
    (total, failed)
}
