//! Mock workers: configurable fake handlers for tests and benchmarks.
//!
//! A [`MockWorker`] waits a configured delay (plus jitter), then fails at a configured rate or
//! answers with an echo of its parameters or a fixed value. Every decision (fail or not, how
//! long to wait) is derived only from the seed, the request id and the attempt, never from a
//! shared random source, so a test gets the same outcomes however its requests are scheduled
//! across threads, and a retry (a new attempt) can succeed where the first attempt failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atmo_core::{
    ActionDefinition, CancellationToken, ErrorCategory, Handler, HandlerResult, Handlers, Manifest, RequestId,
    TaskContext, TaskError,
};
use serde_json::{Value, json};

/// Longest uninterrupted sleep of the blocking handler: bounds how late it notices cancellation.
const CANCEL_POLL: Duration = Duration::from_millis(1);

/// What a [`MockWorker`] answers when it succeeds.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MockResult {
    /// `{"echo": <parameters>, "attempt": <attempt>}`.
    Echo,
    /// This value, as is.
    Fixed(Value),
}

/// A configurable fake handler.
///
/// ```
/// use atmo_workers::mock::MockWorker;
/// use atmo_workers::{RequestId, Resources, TaskContext};
/// use serde_json::json;
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let mock = MockWorker::new().delay(Duration::from_millis(1)).failure_rate(0.25).seed(42);
/// let handler = mock.handler();
/// let ctx = TaskContext::detached("ANY", Arc::new(Resources::new()));
/// let outcome = handler.call_blocking(&ctx, &json!({"x": 1}));
/// // The outcome is known in advance: it depends only on the seed, the request and the attempt.
/// if mock.will_fail(ctx.request_id, ctx.attempt) {
///     assert_eq!(outcome.unwrap_err().code, "MOCK_FAILURE");
/// } else {
///     assert_eq!(outcome.unwrap(), json!({"echo": {"x": 1}, "attempt": 1}));
/// }
/// assert_eq!(mock.will_fail(RequestId::from_u128(7), 1), mock.will_fail(RequestId::from_u128(7), 1));
/// ```
// A builder whose result is dropped configures nothing: warn about it.
#[must_use]
#[derive(Clone, Debug)]
pub struct MockWorker {
    delay: Duration,
    jitter: Duration,
    failure_rate: f64,
    failure: TaskError,
    seed: u64,
    respect_cancellation: bool,
    result: MockResult,
}

impl Default for MockWorker {
    fn default() -> Self {
        Self::new()
    }
}

impl MockWorker {
    /// A mock that answers at once with an echo, never fails, and honours cancellation.
    pub fn new() -> Self {
        MockWorker {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            failure_rate: 0.0,
            failure: TaskError::new("MOCK_FAILURE", "the mock worker failed this attempt on purpose")
                .with_category(ErrorCategory::Processing),
            seed: 0,
            respect_cancellation: true,
            result: MockResult::Echo,
        }
    }

    /// Waits this long before answering (zero: answers without sleeping at all).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Adds up to this much to the delay, chosen per request and attempt.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Fails this fraction of attempts (clamped to 0–1; NaN counts as 0).
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        self
    }

    /// The error failed attempts return (default: code `MOCK_FAILURE`, category `processing`).
    pub fn failure(mut self, error: TaskError) -> Self {
        self.failure = error;
        self
    }

    /// The seed of its decisions.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Answers `{"echo": <parameters>, "attempt": <attempt>}` (the default).
    pub fn echo(mut self) -> Self {
        self.result = MockResult::Echo;
        self
    }

    /// Answers this value.
    pub fn fixed(mut self, value: Value) -> Self {
        self.result = MockResult::Fixed(value);
        self
    }

    /// Sleeps the whole delay and answers even when cancelled, like a handler that never checks
    /// its token (to test that the engine copes with one).
    pub fn ignore_cancellation(mut self) -> Self {
        self.respect_cancellation = false;
        self
    }

    /// The configured failure rate (after clamping).
    pub fn rate(&self) -> f64 {
        self.failure_rate
    }

    /// Whether attempt `attempt` of `request_id` fails. Deterministic: depends only on the seed,
    /// the request id and the attempt.
    pub fn will_fail(&self, request_id: RequestId, attempt: u32) -> bool {
        self.plan(request_id, attempt).0
    }

    /// How long attempt `attempt` of `request_id` waits: the delay plus its share of jitter.
    /// Deterministic, like [`will_fail`](Self::will_fail).
    pub fn delay_for(&self, request_id: RequestId, attempt: u32) -> Duration {
        self.plan(request_id, attempt).1
    }

    fn plan(&self, request_id: RequestId, attempt: u32) -> (bool, Duration) {
        let certain = self.failure_rate <= 0.0 || self.failure_rate >= 1.0;
        if certain && self.jitter.is_zero() {
            // No randomness needed: skip the hashing (benchmarks run this per request).
            return (self.failure_rate >= 1.0, self.delay);
        }
        let mut rng = fastrand::Rng::with_seed(mix(self.seed, request_id, attempt));
        // Always draw in the same order so that jitter never changes the failure decision.
        let fail = rng.f64() < self.failure_rate;
        let jitter_ns = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        let extra = if jitter_ns == 0 { Duration::ZERO } else { Duration::from_nanos(rng.u64(..=jitter_ns)) };
        (fail, self.delay.saturating_add(extra))
    }

    /// A blocking handler (for a bank's threads). It sleeps its delay in slices of at most 1 ms,
    /// returning the token's cancelled error as soon as the attempt is cancelled (unless told to
    /// [`ignore_cancellation`](Self::ignore_cancellation)), then fails or answers.
    pub fn handler(&self) -> Handler {
        let mock = Arc::new(self.clone());
        Handler::sync(move |ctx: &TaskContext, params: &Value| {
            let (fail, delay) = mock.plan(ctx.request_id, ctx.attempt);
            if !delay.is_zero() {
                mock.sleep_blocking(delay, &ctx.cancel)?;
            }
            mock.outcome(ctx, params, fail)
        })
    }

    /// An async handler (for the async executor; needs a tokio runtime with time enabled when
    /// the delay is not zero). It sleeps with `tokio::time::sleep`, woken early by cancellation
    /// unless told to [`ignore_cancellation`](Self::ignore_cancellation); then fails or answers.
    pub fn async_handler(&self) -> Handler {
        let mock = Arc::new(self.clone());
        Handler::asynchronous(move |ctx: TaskContext, params: Arc<Value>| {
            let mock = mock.clone();
            async move {
                let (fail, delay) = mock.plan(ctx.request_id, ctx.attempt);
                if !delay.is_zero() {
                    // Outside a runtime tokio's timer would panic; report it as a worker failure.
                    if tokio::runtime::Handle::try_current().is_err() {
                        return Err(TaskError::system(
                            "NO_RUNTIME",
                            "the async mock worker needs a tokio runtime to sleep; use MockWorker::handler for blocking calls",
                        ));
                    }
                    if mock.respect_cancellation {
                        tokio::select! {
                            biased;
                            () = ctx.cancel.cancelled() => {}
                            () = tokio::time::sleep(delay) => {}
                        }
                    } else {
                        tokio::time::sleep(delay).await;
                    }
                }
                mock.outcome(&ctx, &params, fail)
            }
        })
    }

    /// The same blocking handler for each action.
    pub fn handlers(&self, actions: &[&str]) -> Handlers {
        let handler = self.handler();
        actions.iter().fold(Handlers::new(), |h, a| h.on(*a, handler.clone()))
    }

    /// A manifest whose actions accept any parameters (duplicates are dropped): pairs with
    /// [`handlers`](Self::handlers) in tests.
    ///
    /// ```
    /// use atmo_workers::mock::MockWorker;
    /// use serde_json::json;
    /// let m = MockWorker::manifest("mock", &["A", "B"]);
    /// assert_eq!(m.action_ids().collect::<Vec<_>>(), ["A", "B"]);
    /// assert!(m.action("A").unwrap().validate(json!({"anything": [1, 2]})).is_ok());
    /// ```
    pub fn manifest(name: &str, actions: &[&str]) -> Manifest {
        let mut defs: Vec<ActionDefinition> = Vec::with_capacity(actions.len());
        for a in actions {
            if !defs.iter().any(|d| d.action_id == *a) {
                defs.push(ActionDefinition::new(*a).description("mock action: accepts any parameters").lenient());
            }
        }
        // Built directly rather than through `Manifest::builder`, whose `build` is fallible:
        // this helper is for tests, and an odd manifest (no actions) is reported by the engine
        // when it is registered.
        Manifest {
            description: Some("mock workers for tests and benchmarks".to_owned()),
            actions: defs,
            ..Manifest::empty(name)
        }
    }

    fn sleep_blocking(&self, delay: Duration, cancel: &CancellationToken) -> Result<(), TaskError> {
        if !self.respect_cancellation {
            std::thread::sleep(delay);
            return Ok(());
        }
        // `None` for a delay too long to represent: then only cancellation ends the wait.
        let end = Instant::now().checked_add(delay);
        loop {
            cancel.check()?;
            let remaining = match end {
                Some(end) => end.saturating_duration_since(Instant::now()),
                None => CANCEL_POLL,
            };
            if remaining.is_zero() {
                return Ok(());
            }
            std::thread::sleep(remaining.min(CANCEL_POLL));
        }
    }

    fn outcome(&self, ctx: &TaskContext, params: &Value, fail: bool) -> HandlerResult {
        if self.respect_cancellation {
            ctx.cancel.check()?;
        }
        if fail {
            return Err(self.failure.clone());
        }
        Ok(match &self.result {
            MockResult::Echo => json!({ "echo": params, "attempt": ctx.attempt }),
            MockResult::Fixed(v) => v.clone(),
        })
    }
}

/// One 64-bit seed from (seed, request id, attempt): SplitMix64 steps, so that neighbouring
/// request ids and attempts give unrelated streams.
fn mix(seed: u64, request_id: RequestId, attempt: u32) -> u64 {
    let id = request_id.as_u128();
    let mut h = splitmix64(seed);
    h = splitmix64(h ^ (id as u64));
    h = splitmix64(h ^ ((id >> 64) as u64));
    splitmix64(h ^ u64::from(attempt))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use atmo_core::{NoProgress, Resources};

    fn ctx(id: u128, attempt: u32, cancel: CancellationToken) -> TaskContext {
        TaskContext::new(
            RequestId::from_u128(id),
            Arc::from("MOCK"),
            attempt,
            Arc::from("mock"),
            Arc::from("mock/0"),
            None,
            cancel,
            Arc::new(Resources::new()),
            Arc::new(NoProgress),
        )
    }

    fn decisions(mock: &MockWorker) -> Vec<bool> {
        (0..1_000u128)
            .flat_map(|i| (1..=3).map(move |a| (i, a)))
            .map(|(i, a)| mock.will_fail(RequestId::from_u128(i), a))
            .collect()
    }

    #[test]
    fn decisions_are_deterministic_per_seed() {
        let a = MockWorker::new().failure_rate(0.5).seed(7);
        let b = MockWorker::new().failure_rate(0.5).seed(7);
        let c = MockWorker::new().failure_rate(0.5).seed(8);
        assert_eq!(decisions(&a), decisions(&b));
        assert_ne!(decisions(&a), decisions(&c));
        // Jitter does not change the failure decisions.
        assert_eq!(decisions(&a), decisions(&a.clone().jitter(Duration::from_millis(9))));
    }

    #[test]
    fn attempts_decide_independently() {
        let mock = MockWorker::new().failure_rate(0.5).seed(1);
        let id = RequestId::from_u128(12345);
        let outcomes: Vec<bool> = (1..=64).map(|a| mock.will_fail(id, a)).collect();
        assert!(outcomes.contains(&true) && outcomes.contains(&false), "{outcomes:?}");
    }

    #[test]
    fn rates_zero_and_one_are_certain_and_rates_are_clamped() {
        let never = MockWorker::new().failure_rate(0.0);
        let always = MockWorker::new().failure_rate(1.0).jitter(Duration::from_millis(1));
        assert!(decisions(&never).iter().all(|f| !f));
        assert!(decisions(&always).iter().all(|f| *f));
        assert_eq!(MockWorker::new().failure_rate(3.0).rate(), 1.0);
        assert_eq!(MockWorker::new().failure_rate(-1.0).rate(), 0.0);
        assert_eq!(MockWorker::new().failure_rate(f64::NAN).rate(), 0.0);
    }

    #[test]
    fn observed_failure_fraction_matches_the_rate() {
        for rate in [0.05, 0.3, 0.5, 0.9] {
            let mock = MockWorker::new().failure_rate(rate).seed(99);
            let failed = (0..10_000u128).filter(|&i| mock.will_fail(RequestId::from_u128(i), 1)).count();
            let observed = failed as f64 / 10_000.0;
            assert!((observed - rate).abs() < 0.025, "rate {rate}: observed {observed}");
        }
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let mock = MockWorker::new().delay(Duration::from_millis(10)).jitter(Duration::from_millis(5)).seed(3);
        let delays: Vec<Duration> = (0..200u128).map(|i| mock.delay_for(RequestId::from_u128(i), 1)).collect();
        assert!(delays.iter().all(|d| (Duration::from_millis(10)..=Duration::from_millis(15)).contains(d)));
        assert!(delays.iter().any(|d| *d != delays[0]));
        assert_eq!(mock.delay_for(RequestId::from_u128(5), 2), mock.delay_for(RequestId::from_u128(5), 2));
    }

    #[test]
    fn echo_fixed_and_failure_results() {
        let params = json!({"n": 3});
        let echo = MockWorker::new().handler().call_blocking(&ctx(1, 2, CancellationToken::new()), &params);
        assert_eq!(echo.ok(), Some(json!({"echo": {"n": 3}, "attempt": 2})));

        let fixed = MockWorker::new().fixed(json!("ok")).handler();
        assert_eq!(fixed.call_blocking(&ctx(1, 1, CancellationToken::new()), &params).ok(), Some(json!("ok")));

        let failing = MockWorker::new().failure_rate(1.0).handler();
        let err = failing.call_blocking(&ctx(1, 1, CancellationToken::new()), &params).err();
        assert_eq!(
            err.as_ref().map(|e| (e.code.as_str(), e.category)),
            Some(("MOCK_FAILURE", ErrorCategory::Processing))
        );

        let custom = MockWorker::new().failure_rate(1.0).failure(TaskError::retryable("FLAKY", "try again")).handler();
        let err = custom.call_blocking(&ctx(1, 1, CancellationToken::new()), &params).err();
        assert_eq!(err.map(|e| (e.code, e.retryable)), Some(("FLAKY".to_owned(), Some(true))));
    }

    #[test]
    fn handler_outcome_matches_will_fail() {
        let mock = MockWorker::new().failure_rate(0.5).seed(11);
        let h = mock.handler();
        for i in 0..200u128 {
            let out = h.call_blocking(&ctx(i, 1, CancellationToken::new()), &Value::Null);
            assert_eq!(out.is_err(), mock.will_fail(RequestId::from_u128(i), 1));
        }
    }

    #[test]
    fn cancellation_stops_a_long_blocking_delay_promptly() {
        let h = MockWorker::new().delay(Duration::from_secs(30)).handler();
        let cancel = CancellationToken::new();
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                cancel.cancel();
            })
        };
        let started = Instant::now();
        let out = h.call_blocking(&ctx(1, 1, cancel), &Value::Null);
        let elapsed = started.elapsed();
        assert!(canceller.join().is_ok());
        assert_eq!(out.err().map(|e| e.category), Some(ErrorCategory::Cancelled));
        // Generous bound for loaded CI machines; the point is "not 30 s".
        assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    }

    #[test]
    fn cancelled_before_start_and_ignoring_cancellation() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let out = MockWorker::new().handler().call_blocking(&ctx(1, 1, cancel.clone()), &Value::Null);
        assert_eq!(out.err().map(|e| e.category), Some(ErrorCategory::Cancelled));

        let stubborn = MockWorker::new().delay(Duration::from_millis(5)).ignore_cancellation().handler();
        let started = Instant::now();
        let out = stubborn.call_blocking(&ctx(1, 1, cancel), &Value::Null);
        assert!(started.elapsed() >= Duration::from_millis(5));
        assert!(out.is_ok());
    }

    #[test]
    fn handlers_and_manifest_cover_the_actions() {
        let mock = MockWorker::new();
        let handlers = mock.handlers(&["A", "B"]);
        assert_eq!(handlers.len(), 2);
        assert!(handlers.get("A").is_some_and(Handler::is_sync));

        let m = MockWorker::manifest("mock", &["A", "B", "A"]);
        assert_eq!(m.name, "mock");
        assert_eq!(m.action_ids().collect::<Vec<_>>(), ["A", "B"]);
        let validated = m.action("B").map(|a| a.validate(json!({"free": "form"})));
        assert_eq!(validated.and_then(Result::ok), Some(json!({"free": "form"})));
    }

    #[tokio::test(start_paused = true)]
    async fn async_handler_sleeps_in_tokio_time() {
        let Handler::Async(h) = MockWorker::new().delay(Duration::from_secs(10)).fixed(json!(1)).async_handler() else {
            panic!("expected an async handler");
        };
        let started = tokio::time::Instant::now();
        let out = h.call(ctx(1, 1, CancellationToken::new()), Arc::new(Value::Null)).await;
        assert_eq!(out.ok(), Some(json!(1)));
        assert!(started.elapsed() >= Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn async_handler_stops_on_cancellation() {
        let Handler::Async(h) = MockWorker::new().delay(Duration::from_secs(60)).async_handler() else {
            panic!("expected an async handler");
        };
        let cancel = CancellationToken::new();
        let canceller = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            canceller.cancel();
        });
        let started = tokio::time::Instant::now();
        let out = h.call(ctx(1, 1, cancel), Arc::new(Value::Null)).await;
        assert_eq!(out.err().map(|e| e.category), Some(ErrorCategory::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn async_handler_outcomes_match_will_fail_and_zero_delay_needs_no_timer() {
        let mock = MockWorker::new().failure_rate(0.5).seed(5);
        let Handler::Async(h) = mock.async_handler() else {
            panic!("expected an async handler");
        };
        for i in 0..100u128 {
            let out = h.call(ctx(i, 1, CancellationToken::new()), Arc::new(json!(i as u64))).await;
            assert_eq!(out.is_err(), mock.will_fail(RequestId::from_u128(i), 1));
        }
        // Zero delay runs without a runtime too.
        let echo = mock.failure_rate(0.0).async_handler();
        let out = echo.call_blocking(&ctx(1, 1, CancellationToken::new()), &json!(2));
        assert_eq!(out.ok(), Some(json!({"echo": 2, "attempt": 1})));
    }
}
