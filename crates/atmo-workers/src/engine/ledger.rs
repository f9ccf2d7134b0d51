//! The ledger's reads and waits: requests, results, lifecycles, queries, metrics, cancel,
//! waiting for results, and events.

use std::sync::Arc;
use std::time::Duration;

use atmo_core::{
    Error, Event, EventType, MetricsParams, QueryPage, Request, RequestId, RequestLifecycle, RequestQuery,
    RequestResult, RequestStatus, Result, SubmitRequest, SystemMetrics, Transition, TransitionRejected,
};
use futures::StreamExt;

use super::state::Engine;
use crate::events::EventItem;
use crate::runtime::{self, Task};

impl Engine {
    pub(crate) async fn get_request(&self, id: RequestId) -> Result<Request> {
        self.store.get(id).await?.ok_or(Error::NotFound(id))
    }

    pub(crate) async fn get_lifecycle(&self, id: RequestId) -> Result<RequestLifecycle> {
        let request = self.get_request(id).await?;
        let task = self.registry.task(&request.task_id).map(|e| e.task.clone());
        let bank = request.bank_id.as_ref().and_then(|b| self.registry.bank_record(b));
        let capability = request.bank_id.as_ref().and_then(|b| self.registry.capability(b, &request.task_id));
        Ok(RequestLifecycle {
            assignment: request.assignment(),
            result: request.to_result(),
            task,
            bank,
            capability,
            request,
        })
    }

    pub(crate) async fn query(&self, query: RequestQuery) -> Result<QueryPage> {
        // Filters no store should be given (control characters in metadata keys), checked in the core.
        query.check().map_err(|e| Error::InvalidQuery(e.to_string()))?;
        if let Some(c) = &query.pagination.cursor {
            atmo_core::Cursor::decode(c).map_err(|e| Error::InvalidQuery(e.to_string()))?;
        }
        if let Some(p) = query.priority_range
            && p.min > p.max
        {
            return Err(Error::InvalidQuery(format!("priority range {}..{} is empty (min > max)", p.min, p.max)));
        }
        Ok(self.store.query(query).await?)
    }

    pub(crate) async fn metrics(&self) -> Result<SystemMetrics> {
        let now = self.clock.now();
        let sm = self
            .store
            .metrics(MetricsParams { now, window_start: now.saturating_sub(Duration::from_secs(60)), top_errors: 10 })
            .await?;
        let banks = self.registry.listed_banks();
        let completed = sm.count(RequestStatus::Completed);
        let failed = sm.count(RequestStatus::Failed) + sm.count(RequestStatus::TimedOut);
        let decided = completed + failed;
        let rate = |x: u64| if decided == 0 { 0.0 } else { x as f64 / decided as f64 };
        Ok(SystemMetrics {
            generated_at: now,
            total_requests: sm.total(),
            requests_by_status: RequestStatus::ALL.iter().map(|s| (*s, sm.count(*s))).collect(),
            success_rate: rate(completed),
            error_rate: rate(failed),
            average_processing_time: sm.processing.mean_ms,
            processing_time: sm.processing,
            requests_per_minute: sm.finished_in_window as f64,
            top_errors: sm.top_errors.clone(),
            active_banks: banks.iter().filter(|b| b.status() == atmo_core::BankStatus::Active).count()
                + self.registry.active_records(),
            total_worker_capacity: banks.iter().map(|b| b.capacity).sum(),
            current_load: banks.iter().map(|b| b.load()).sum(),
            queue_depth: sm.count(RequestStatus::Pending) + sm.count(RequestStatus::Scheduled),
            bank_performance: banks.iter().map(|b| b.performance()).collect(),
        })
    }

    // ===== cancel and wait =====

    pub(crate) async fn cancel_with_reason(&self, id: RequestId, reason: &'static str) -> Result<()> {
        let now = self.clock.now();
        let mut outcomes = self.commit(vec![Transition::cancel(id, reason, now)]).await?;
        match outcomes.pop() {
            Some(Ok(applied)) => {
                if applied.from.is_running() {
                    self.release_running(id, applied.attempt, true);
                }
                Ok(())
            }
            Some(Err(TransitionRejected::NotFound)) | None => Err(Error::NotFound(id)),
            Some(Err(
                TransitionRejected::StateMismatch { current, .. } | TransitionRejected::Illegal { from: current, .. },
            )) => {
                Err(Error::Conflict { id, status: current, message: "a finished request cannot be cancelled".into() })
            }
        }
    }

    pub(crate) async fn wait(&self, id: RequestId) -> Result<RequestResult> {
        // Register first, then look: a completion between the two cannot be missed.
        let rx = self.waiters.register(id);
        let early = match self.store.get(id).await {
            Ok(Some(r)) => r.to_result().map(Ok),
            Ok(None) => Some(Err(Error::NotFound(id))),
            Err(e) => Some(Err(e.into())),
        };
        if let Some(answer) = early {
            drop(rx);
            self.waiters.prune(id);
            return answer;
        }
        match rx.await {
            Ok(r) => Ok(r),
            // The waiter was dropped: the request was deleted (retention) before finishing.
            Err(_) => self.get_request(id).await?.to_result().ok_or(Error::NotFound(id)),
        }
    }

    pub(crate) async fn wait_timeout(&self, id: RequestId, limit: Duration) -> Result<RequestResult> {
        let runtime = self.runtime_or_err()?;
        runtime::timeout(&**runtime, limit, self.wait(id)).await.unwrap_or(Err(Error::WaitTimeout(id)))
    }

    pub(crate) async fn submit_many_and_wait(
        self: &Arc<Self>,
        requests: Vec<SubmitRequest>,
    ) -> Result<Vec<RequestResult>> {
        let mut waiter = None;
        let ids = self.submit_batch(requests, Some(&mut waiter)).await?;
        let Some(batch) = waiter else { return Err(Error::Internal("a batch was stored without its waiter")) };
        // Requests that were idempotent duplicates resolve through their originals.
        let mut dup = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if !batch.covers(i, *id) {
                dup.push((i, *id));
            }
        }
        for (i, id) in dup {
            if let Some(registered) = batch.registered_id(i) {
                self.waiters.drop_batch_slot(registered);
            }
            let r = self.wait(id).await?;
            batch.fill_index(i, r);
        }
        let results = batch.wait().await;
        // Collected into an exact allocation: a flattening `collect` cannot know the count and
        // would copy the results at every doubling.
        let mut out = Vec::with_capacity(results.len());
        for (r, id) in results.into_iter().zip(&ids) {
            match r {
                Some(r) => out.push(r),
                None => return Err(Error::NotFound(*id)),
            }
        }
        Ok(out)
    }

    // ===== events =====

    /// Calls `callback` for every event of the given types, on a task of the runtime.
    pub(crate) fn on_many<F>(&self, events: &[EventType], callback: F) -> Result<Task>
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        let runtime = self.runtime_or_err()?;
        let mut stream = self.events.subscribe().only(events.iter().copied());
        Ok(runtime::spawn(&**runtime, async move {
            while let Some(item) = stream.next().await {
                match item {
                    EventItem::Event(e) => callback(&e),
                    EventItem::Lagged(n) => tracing::warn!(missed = n, "event callback fell behind"),
                }
            }
        }))
    }

    /// Waits until `f` holds for an event, up to `limit`.
    pub(crate) fn next_event_where<F>(
        &self,
        limit: Duration,
        mut f: F,
    ) -> impl std::future::Future<Output = Result<Arc<Event>>> + use<F>
    where
        F: FnMut(&Event) -> bool,
    {
        let mut stream = self.events.subscribe();
        let runtime = self.runtime.clone();
        async move {
            let Some(runtime) = runtime else { return Err(Error::NoRuntime) };
            let search = async {
                while let Some(item) = stream.next().await {
                    if let EventItem::Event(e) = item
                        && f(&e)
                    {
                        return Some(e);
                    }
                }
                None
            };
            match runtime::timeout(&*runtime, limit, search).await {
                Some(Some(e)) => Ok(e),
                _ => Err(Error::EventTimeout(limit)),
            }
        }
    }
}
