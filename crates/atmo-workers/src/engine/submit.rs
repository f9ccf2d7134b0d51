//! Submission: a request is validated against its action's schema, built, admitted by the
//! intake bound, stored, announced and dispatched.

use std::sync::Arc;

use atmo_core::manifest::{ValidationErrors, ValidationIssue, ValidationIssueKind};
use atmo_core::{
    Error, EventKind, InsertOutcome, Request, RequestId, RequestStatus, Result, SubmitOptions, SubmitRequest, Timestamp,
};
use serde_json::Value;

use super::registry::TaskEntry;
use super::state::Engine;
use super::waiters::BatchWait;

/// What a submission event says about a request.
type Summary = (RequestId, Arc<str>, u8, Option<Arc<str>>, RequestStatus);

/// Counts bytes without storing them: the payload limit needs the serialized size, not the text.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An upper bound of `value`'s size as compact JSON, if it is at most `limit`; `None` when the
/// bound exceeds `limit`, or for a non-integer number, whose printed length is not bounded as
/// cheaply.
fn json_size_bound(value: &Value, limit: usize) -> Option<usize> {
    // A string's escaped form is at most six bytes per byte (`\u00XX`), plus its quotes.
    fn string(len: usize) -> usize {
        len.saturating_mul(6).saturating_add(2)
    }
    fn walk(value: &Value, total: &mut usize, limit: usize) -> bool {
        let add = match value {
            Value::Null | Value::Bool(_) => 5,
            // An integer that fits 64 bits prints in at most 20 characters.
            Value::Number(n) if n.is_i64() || n.is_u64() => 20,
            Value::Number(_) => return false,
            Value::String(s) => string(s.len()),
            Value::Array(items) => {
                // Brackets and commas.
                *total = total.saturating_add(items.len() + 2);
                return *total <= limit && items.iter().all(|v| walk(v, total, limit));
            }
            Value::Object(map) => {
                *total = total.saturating_add(2);
                for (k, v) in map {
                    // The key, its colon and a comma.
                    *total = total.saturating_add(string(k.len()) + 2);
                    if *total > limit || !walk(v, total, limit) {
                        return false;
                    }
                }
                return true;
            }
        };
        *total = total.saturating_add(add);
        *total <= limit
    }
    let mut total = 0;
    walk(value, &mut total, limit).then_some(total)
}

fn validation(task_id: &str, parameter: &str, kind: ValidationIssueKind, message: String) -> Error {
    Error::Validation {
        task_id: task_id.to_owned(),
        errors: ValidationErrors(vec![ValidationIssue { parameter: parameter.to_owned(), kind, message }]),
    }
}

impl Engine {
    pub(super) fn build_request(
        &self,
        req: SubmitRequest,
        entry: Option<&Arc<TaskEntry>>,
        now: Timestamp,
    ) -> Result<Request> {
        let SubmitRequest { task_id, parameters, options } = req;
        let Some(entry) = entry else {
            let known = self.registry.known_tasks();
            return Err(Error::UnknownTask { task_id, known });
        };
        let limit = self.config.max_payload_bytes;
        // Most parameters are far below the limit, which a cheap upper bound shows without
        // printing them; the exact size is measured only when the bound does not settle it.
        if json_size_bound(&parameters, limit).is_none() {
            let mut counter = ByteCounter(0);
            if serde_json::to_writer(&mut counter, &parameters).is_ok() && counter.0 > limit {
                return Err(Error::PayloadTooLarge { size: counter.0, limit });
            }
        }
        let parameters = match entry.action() {
            Some(action) => {
                action.validate(parameters).map_err(|errors| Error::Validation { task_id: task_id.clone(), errors })?
            }
            None if parameters.is_null() => Value::Object(Default::default()),
            None => parameters,
        };
        // Bounds of the free-text options (lengths, control characters), checked in the core.
        options.check().map_err(|errors| Error::Validation { task_id: task_id.clone(), errors })?;
        let SubmitOptions { priority, client_id, metadata, idempotency_key, run_at, delay, timeout, retry } = options;
        let priority = priority.unwrap_or(atmo_core::DEFAULT_PRIORITY);
        if !(atmo_core::MIN_PRIORITY..=atmo_core::MAX_PRIORITY).contains(&priority) {
            return Err(validation(
                &task_id,
                "priority",
                ValidationIssueKind::OutOfRange,
                format!("priority must be between 1 and 10 (10 runs first), got {priority}"),
            ));
        }
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(validation(
                &task_id,
                "timeout",
                ValidationIssueKind::OutOfRange,
                "timeout must be positive".into(),
            ));
        }
        let max_timeout = self.config.max_timeout;
        if let Some(t) = timeout.filter(|t| *t > max_timeout) {
            return Err(validation(
                &task_id,
                "timeout",
                ValidationIssueKind::OutOfRange,
                format!(
                    "timeout of {} ms exceeds this engine's limit of {} ms (max_timeout)",
                    t.as_millis(),
                    max_timeout.as_millis()
                ),
            ));
        }
        let max_delay = self.config.max_delay;
        if let Some(d) = delay.filter(|d| *d > max_delay) {
            return Err(validation(
                &task_id,
                "delay",
                ValidationIssueKind::OutOfRange,
                format!(
                    "delay of {} ms exceeds this engine's limit of {} ms (max_delay)",
                    d.as_millis(),
                    max_delay.as_millis()
                ),
            ));
        }
        if let Some(t) = run_at.filter(|t| t.saturating_since(now) > max_delay) {
            return Err(validation(
                &task_id,
                "runAt",
                ValidationIssueKind::OutOfRange,
                format!(
                    "runAt {} is more than this engine's limit of {} ms ahead (max_delay)",
                    t.to_datetime().to_rfc3339(),
                    max_delay.as_millis()
                ),
            ));
        }
        let run_at = match (run_at, delay) {
            (Some(t), Some(d)) => Some(t.max(now + d)),
            (Some(t), None) => Some(t),
            (None, Some(d)) => Some(now + d),
            (None, None) => None,
        }
        .filter(|t| *t > now);
        let mut random = [0u8; 10];
        fastrand::fill(&mut random);
        // `Request::new` leaves room in the history for the usual path (assigned, processing,
        // finished). Fields are set in place: a struct update would copy the whole request.
        let mut request =
            Request::new(RequestId::from_parts(now, random), entry.task.task_id.clone(), parameters, now, run_at);
        request.priority = priority;
        request.client_id = client_id.map(Arc::from);
        request.metadata = metadata.filter(|m| !m.is_empty()).map(Box::new);
        request.idempotency_key = idempotency_key.map(String::into_boxed_str);
        request.timeout = timeout;
        request.retry = retry.map(Box::new);
        Ok(request)
    }

    /// Validates, admits and stores a batch (all or nothing), then dispatches it. With
    /// `waiter`, a wait for every request is registered before they are stored, so no
    /// completion can slip by. In test mode, returns once the pending requests finished.
    pub(crate) async fn submit_batch(
        self: &Arc<Self>,
        requests: Vec<SubmitRequest>,
        waiter: Option<&mut Option<Arc<BatchWait>>>,
    ) -> Result<Vec<RequestId>> {
        if !self.intake.is_accepting() {
            return Err(Error::ShuttingDown);
        }
        // A store that stopped taking writes would refuse the batch anyway: say why at once.
        self.store.health()?;
        if self.reducer.is_some() {
            self.start_test_mode().await?;
        }
        let now = self.clock.now();
        let n = requests.len();
        let mut built = Vec::with_capacity(n);
        // Batches are usually of one task: look it up once, not per request.
        let mut last: Option<Arc<TaskEntry>> = None;
        for (i, r) in requests.into_iter().enumerate() {
            if last.as_ref().is_none_or(|e| *e.task.task_id != *r.task_id) {
                last = self.registry.task(r.task_id.as_str());
            }
            match self.build_request(r, last.as_ref(), now) {
                Ok(r) => built.push(r),
                Err(e) if n > 1 => return Err(Error::Batch { index: i, source: Box::new(e) }),
                Err(e) => return Err(e),
            }
        }
        let permit = match self.intake.admit(n) {
            Ok(p) => p,
            Err(e) => {
                if let Error::QueueFull { queued, capacity } = e {
                    self.events.emit_with(|| EventKind::SystemOverload { queued, capacity });
                }
                return Err(e);
            }
        };
        let ids: Vec<RequestId> = built.iter().map(|r| r.request_id).collect();
        if let Some(w) = waiter {
            *w = Some(self.waiters.register_batch(&ids));
        }
        let any_scheduled = built.iter().any(|r| r.status == RequestStatus::Scheduled);
        let events_on = self.events.active();
        let summaries: Vec<Summary> = if events_on {
            built.iter().map(|r| (r.request_id, r.task_id.clone(), r.priority, r.client_id.clone(), r.status)).collect()
        } else {
            Vec::new()
        };
        // Test mode waits for what it can run now (not for delayed requests).
        let run_now: Vec<RequestId> = if self.reducer.is_some() {
            built.iter().filter(|r| r.status == RequestStatus::Pending).map(|r| r.request_id).collect()
        } else {
            Vec::new()
        };
        // With subscribers, a dispatch round must not emit a request's assignment before its
        // submission: the gate orders them (and costs nothing when nobody listens).
        let gate = if events_on { Some(self.events_gate.read().await) } else { None };
        // On a store error the permit gives the places back.
        let outcomes = self.store.insert_many(built).await?;
        let duplicates = outcomes.iter().filter(|o| matches!(o, InsertOutcome::Duplicate(_))).count();
        permit.keep(n - duplicates);
        for (i, (id, task_id, priority, client_id, status)) in summaries.into_iter().enumerate() {
            if matches!(outcomes.get(i), Some(InsertOutcome::Inserted(_))) {
                self.events.emit(EventKind::RequestSubmitted { request_id: id, task_id, priority, client_id, status });
                self.events.emit(EventKind::RequestStatusChanged {
                    request_id: id,
                    from: None,
                    to: status,
                    attempt: 0,
                });
            }
        }
        drop(gate);
        if any_scheduled {
            self.wake.scheduled();
        }
        if self.is_started() && !super::dispatcher::try_dispatch_now(self).await {
            self.wake.requests_ready();
        }
        for id in run_now {
            self.wait(id).await?;
        }
        Ok(outcomes.iter().map(InsertOutcome::id).collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn exact(v: &Value) -> usize {
        serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
    }

    #[test]
    fn the_size_bound_is_never_below_the_printed_size() {
        let values = [
            json!(null),
            json!(true),
            json!(i64::MIN),
            json!(u64::MAX),
            json!("plain"),
            json!("\u{1}\u{2}\"\\\n"),
            json!({"a": 1, "b": [1, 2, {"c": "d"}], "": {}}),
            json!([[], {}, [null, false]]),
        ];
        for v in values {
            let bound = json_size_bound(&v, usize::MAX);
            assert!(bound.is_some_and(|b| b >= exact(&v)), "{v}: bound {bound:?} < {}", exact(&v));
        }
    }

    #[test]
    fn the_size_bound_gives_way_to_measuring() {
        let v = json!({"text": "x".repeat(100)});
        assert_eq!(json_size_bound(&v, 100), None, "over the limit by the bound");
        assert_eq!(json_size_bound(&json!({"x": 1.5}), usize::MAX), None, "floats are measured");
    }
}
