//! Starting the engine (rescue what a previous run held, count what is unfinished, spawn the
//! five loops) and shutting it down (stop intake, drain, then cancel or rescue what is left).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atmo_core::{BankStatus, Error, EventKind, RequestQuery, RequestStatus, Result, Transition};

use super::state::Engine;
use super::{applier, dispatcher, maintenance};
use crate::runtime;

impl Engine {
    /// Starts the engine's services on its runtime.
    ///
    /// # Errors
    /// `NoRuntime`; `AlreadyStarted`; a store error if rescuing the previous run's requests
    /// fails.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<()> {
        let rt = self.runtime_or_err()?.clone();
        // A durable store may hold requests this node held when it stopped: rescue them.
        let now = self.clock.now();
        let mut rescued = self.store.rescue_owner(self.node_id.clone(), now, "engine restarted").await?;
        rescued.extend(self.store.recover_orphans(now, "engine restarted").await?);
        if !rescued.is_empty() {
            tracing::warn!(count = rescued.len(), "rescued requests held by a previous run of this node");
        }
        let metrics = self.store.metrics(atmo_core::MetricsParams { now, window_start: now, top_errors: 0 }).await?;
        let unfinished = RequestStatus::ALL.iter().filter(|s| !s.is_terminal()).map(|s| metrics.count(*s)).sum::<u64>();
        self.intake.restore(usize::try_from(unfinished).unwrap_or(usize::MAX));
        let rx = self.outcomes.lock().take().ok_or(Error::AlreadyStarted)?;
        self.started.store(true, Ordering::Release);
        let tasks = vec![
            runtime::spawn(&*rt, applier::run(self.clone(), rx)),
            runtime::spawn(&*rt, dispatcher::run(self.clone())),
            runtime::spawn(&*rt, maintenance::scheduler::run(self.clone())),
            runtime::spawn(&*rt, maintenance::retention::run(self.clone())),
            runtime::spawn(&*rt, maintenance::leases::run(self.clone())),
        ];
        self.tasks.lock().extend(tasks);
        self.wake.requests_ready();
        Ok(())
    }

    /// Test mode starts on its first submission: the loops, and the reducer's bank.
    pub(super) async fn start_test_mode(self: &Arc<Self>) -> Result<()> {
        self.test_mode_started
            .get_or_try_init(|| async {
                self.start().await?;
                self.install_reducer_bank()
            })
            .await
            .map(|_| ())
    }

    /// Graceful shutdown: see [`WorkerManager::shutdown`](crate::WorkerManager::shutdown).
    pub(crate) async fn shutdown(&self, drain: Duration) -> Result<()> {
        if !self.intake.close() {
            return Ok(());
        }
        self.events.emit_with(|| EventKind::SystemShutdown {});
        let durable = self.store.kind() != "memory";
        if durable {
            // Queued requests stay queued for the next start; only running ones finish.
            self.dispatching.store(false, Ordering::Release);
        }
        let deadline = self.clock.now() + drain;
        loop {
            let busy = if durable { self.running.len() } else { self.intake.active() };
            if busy == 0 || self.clock.now() >= deadline || self.runtime.is_none() {
                break;
            }
            self.sleep(Duration::from_millis(5).min(drain)).await;
        }
        self.dispatching.store(false, Ordering::Release);
        let now = self.clock.now();
        let running = self.running.ids();
        if durable {
            let transitions = running
                .iter()
                .map(|(id, a)| Transition::rescue(*id, *a, "engine shut down during the attempt", now))
                .collect();
            self.commit(transitions).await?;
            for (id, a) in running {
                self.release_running(id, a, true);
            }
        } else {
            for (id, _) in &running {
                let _ = self.cancel_with_reason(*id, "engine shut down").await;
            }
            loop {
                let page = self
                    .store
                    .query(RequestQuery::new().status([RequestStatus::Pending, RequestStatus::Scheduled]).limit(1000))
                    .await?;
                if page.requests.is_empty() {
                    break;
                }
                let ts =
                    page.requests.iter().map(|r| Transition::cancel(r.request_id, "engine shut down", now)).collect();
                self.commit(ts).await?;
            }
        }
        let banks = self.registry.running_banks();
        for b in &banks {
            b.set_status(BankStatus::Terminated);
        }
        for b in &banks {
            // A handler that ignores its cancellation token may hold its thread; don't wait forever.
            match &self.runtime {
                Some(rt) => {
                    let _ = runtime::timeout(&**rt, Duration::from_secs(5), b.executor.shutdown()).await;
                }
                None => b.executor.shutdown().await,
            }
        }
        self.shutdown.cancel();
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            t.join().await;
        }
        Ok(())
    }
}
