//! The engine on a runtime that is not tokio's: one thread, virtual time, through the
//! [`Runtime`] seam only. What a browser tab gives the engine looks like this (a single thread
//! and timers), so the whole lifecycle is exercised here: dispatch, completion, a retry after
//! its backoff, a timeout, events, shutdown.

// The executor below is test scaffolding: a task it cannot spawn is a broken test.
#![allow(clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use atmo_workers::runtime::Runtime;
use atmo_workers::{
    EventKind, Handler, RequestStatus, RetryPolicy, SubmitOptions, TaskError, Timestamp, WorkerManager,
};
use futures::executor::LocalPool;
use futures::future::BoxFuture;
use futures::task::LocalSpawnExt;
use parking_lot::Mutex;
use serde_json::json;

use super::support::{bank, drain, lenient, status_changes};

/// A single-threaded runtime whose clock moves only when every task waits for a timer.
#[derive(Default)]
struct SimRuntime {
    spawned: Mutex<Vec<BoxFuture<'static, ()>>>,
    now_micros: AtomicU64,
    timers: Mutex<BinaryHeap<Reverse<Timer>>>,
    seq: AtomicU64,
}

#[derive(Debug)]
struct Timer {
    at: i64,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl std::fmt::Debug for SimRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimRuntime").field("now_micros", &self.now_micros).finish_non_exhaustive()
    }
}

/// A sleep on the virtual clock.
struct Sleep {
    rt: Arc<SimRuntime>,
    at: i64,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.rt.now_micros.load(Ordering::Acquire) as i64 >= self.at {
            return Poll::Ready(());
        }
        let seq = self.rt.seq.fetch_add(1, Ordering::Relaxed);
        self.rt.timers.lock().push(Reverse(Timer { at: self.at, seq, waker: cx.waker().clone() }));
        Poll::Pending
    }
}

/// The runtime as the engine sees it.
#[derive(Debug, Clone)]
struct Sim(Arc<SimRuntime>);

impl Runtime for Sim {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.0.spawned.lock().push(task);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        let at = (self.0.now_micros.load(Ordering::Acquire) as i64).saturating_add(micros);
        Box::pin(Sleep { rt: self.0.clone(), at })
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.now_micros.load(Ordering::Acquire) as i64)
    }
}

impl Sim {
    fn new() -> Self {
        let rt = SimRuntime::default();
        // 2026-01-01: any fixed start will do.
        rt.now_micros.store(1_767_225_600_000_000, Ordering::Release);
        Sim(Arc::new(rt))
    }

    /// Runs `main` and every task it spawns on this thread; when all of them wait, moves the
    /// clock to the next timer.
    fn block_on<T: 'static>(&self, main: impl Future<Output = T> + 'static) -> T {
        let mut pool = LocalPool::new();
        let spawner = pool.spawner();
        let out = std::rc::Rc::new(std::cell::RefCell::new(None));
        let slot = out.clone();
        spawner
            .spawn_local(async move {
                *slot.borrow_mut() = Some(main.await);
            })
            .expect("the pool accepts tasks");
        loop {
            let spawned: Vec<_> = std::mem::take(&mut *self.0.spawned.lock());
            let any_spawned = !spawned.is_empty();
            for task in spawned {
                spawner.spawn_local(task).expect("the pool accepts tasks");
            }
            pool.run_until_stalled();
            if let Some(v) = out.borrow_mut().take() {
                return v;
            }
            if any_spawned || !self.0.spawned.lock().is_empty() {
                continue;
            }
            let next = self.0.timers.lock().pop();
            let Some(Reverse(timer)) = next else { panic!("every task waits and no timer is set: a deadlock") };
            let now = self.0.now_micros.load(Ordering::Acquire) as i64;
            if timer.at > now {
                self.0.now_micros.store(timer.at as u64, Ordering::Release);
            }
            timer.waker.wake();
            // Wake every other timer that is now due too.
            let now = self.0.now_micros.load(Ordering::Acquire) as i64;
            let mut timers = self.0.timers.lock();
            while timers.peek().is_some_and(|t| t.0.at <= now) {
                if let Some(Reverse(t)) = timers.pop() {
                    t.waker.wake();
                }
            }
        }
    }
}

#[test]
fn the_lifecycle_runs_on_a_single_threaded_runtime_with_virtual_time() {
    let sim = Sim::new();
    let rt = sim.clone();
    let outcome: anyhow::Result<()> = sim.block_on(async move {
        let started_at = rt.now();
        let manager = WorkerManager::builder().name("sim").runtime(Arc::new(rt.clone())).start().await?;
        let mut events = manager.subscribe();
        let calls = Arc::new(AtomicU32::new(0));
        let sleeper = rt.clone();
        let counted = calls.clone();
        // ADD answers; FLAKY fails its first attempt (retryable); SLOW sleeps 10 s of virtual
        // time, past its 1 s timeout.
        let handler = Handler::asynchronous(move |ctx, params: Arc<serde_json::Value>| {
            let sleeper = sleeper.clone();
            let counted = counted.clone();
            async move {
                match &*ctx.task_id {
                    "ADD" => Ok(json!({"sum": params["a"].as_i64().unwrap_or(0) + params["b"].as_i64().unwrap_or(0)})),
                    "FLAKY" => {
                        counted.fetch_add(1, Ordering::Relaxed);
                        if ctx.attempt == 1 {
                            Err(TaskError::retryable("FLAKY", "first attempt fails"))
                        } else {
                            Ok(json!({"attempt": ctx.attempt}))
                        }
                    }
                    _ => {
                        sleeper.sleep(Duration::from_secs(10)).await;
                        Ok(json!("too late"))
                    }
                }
            }
        });
        bank(&manager, "sim-bank", lenient("sim", &["ADD", "FLAKY", "SLOW"])?, 2, 4, &handler)?;

        let added = manager.submit_and_wait("ADD", json!({"a": 5, "b": 3}), SubmitOptions::new()).await?;
        assert_eq!(added.payload.as_deref(), Some(&json!({"sum": 8})));
        assert_eq!(added.status, RequestStatus::Completed);

        let retry = RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(60),
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let before_retry = rt.now();
        let flaky = manager.submit_and_wait("FLAKY", json!({}), SubmitOptions::new().retry(retry)).await?;
        assert_eq!(flaky.status, RequestStatus::Completed);
        assert_eq!(flaky.attempts, 2);
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        // The retry waited out its backoff on the virtual clock.
        let waited = rt.now().saturating_since(before_retry);
        assert!(waited >= Duration::from_secs(30), "the 30 s backoff was not waited: {waited:?}");

        let slow = manager
            .submit_and_wait(
                "SLOW",
                json!({}),
                SubmitOptions::new().timeout(Duration::from_secs(1)).retry(RetryPolicy::none()),
            )
            .await?;
        assert_eq!(slow.status, RequestStatus::TimedOut);
        assert_eq!(slow.error.as_ref().map(|e| e.code.as_str()), Some("TIMEOUT"));

        let events = drain(&mut events);
        assert_eq!(
            status_changes(&events, flaky.request_id),
            [
                (None, RequestStatus::Pending),
                (Some(RequestStatus::Pending), RequestStatus::Assigned),
                (Some(RequestStatus::Assigned), RequestStatus::Processing),
                (Some(RequestStatus::Processing), RequestStatus::Scheduled),
                (Some(RequestStatus::Scheduled), RequestStatus::Pending),
                (Some(RequestStatus::Pending), RequestStatus::Assigned),
                (Some(RequestStatus::Assigned), RequestStatus::Processing),
                (Some(RequestStatus::Processing), RequestStatus::Completed),
            ]
        );
        assert!(
            events.iter().any(
                |e| matches!(e.kind, EventKind::RequestTimeout { request_id, .. } if request_id == slow.request_id)
            )
        );
        // Event times are the virtual clock's.
        assert!(events.iter().all(|e| e.at >= started_at && e.at <= rt.now()));

        let history = manager.get_request(flaky.request_id).await?.history;
        assert_eq!(history.len(), 8, "{history:?}");
        manager.shutdown(Duration::from_secs(1)).await?;
        assert!(!manager.is_accepting());
        Ok(())
    });
    outcome.expect("the lifecycle on the simulated runtime");
}
