//! Retry policies and the backoff they compute.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::failure::ErrorCategory;

/// When and how often a failed attempt is retried.
///
/// The defaults are the original package's: 3 retries, 1 s base delay doubling up to 10 s, with
/// jitter, for `timeout`, `system` and `network` errors.
///
/// ```
/// use atmo_core::RetryPolicy;
/// use std::time::Duration;
/// let p = RetryPolicy { jitter: 0.0, ..RetryPolicy::default() };
/// assert_eq!(p.backoff(1, 0.5), Duration::from_secs(1));
/// assert_eq!(p.backoff(2, 0.5), Duration::from_secs(2));
/// assert_eq!(p.backoff(9, 0.5), Duration::from_secs(10)); // capped at max_delay
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// Delay before the first retry.
    #[serde(with = "crate::time::duration_ms")]
    pub base_delay: Duration,
    /// Growth factor per retry.
    pub multiplier: f64,
    /// Upper bound of a delay.
    #[serde(with = "crate::time::duration_ms")]
    pub max_delay: Duration,
    /// 0–1: the delay is randomised within ±`jitter`×delay, so that retries of many requests
    /// that failed together do not come back together.
    pub jitter: f64,
    /// Categories that are retried when the error does not say either way.
    pub retryable_categories: Vec<ErrorCategory>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(10),
            jitter: 0.1,
            retryable_categories: vec![ErrorCategory::Timeout, ErrorCategory::System, ErrorCategory::Network],
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy { max_retries: 0, ..RetryPolicy::default() }
    }

    /// The delay before retry number `retry` (1-based), given a uniform random `sample` in
    /// [0, 1) for the jitter.
    pub fn backoff(&self, retry: u32, sample: f64) -> Duration {
        let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let multiplier = if self.multiplier.is_finite() && self.multiplier >= 1.0 { self.multiplier } else { 1.0 };
        let raw = self.base_delay.as_secs_f64() * multiplier.powi(exp);
        let capped = raw.min(self.max_delay.as_secs_f64()).max(0.0);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * sample.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((capped * factor).max(0.0))
    }

    /// Whether a failed attempt number `attempt` (1-based) is retried, given the error's
    /// category and its own `retryable` override, and whether the action allows retries.
    pub fn should_retry(
        &self,
        attempt: u32,
        category: ErrorCategory,
        override_retryable: Option<bool>,
        action_retryable: bool,
    ) -> bool {
        if !action_retryable || attempt > self.max_retries || category == ErrorCategory::Cancelled {
            return false;
        }
        if category == ErrorCategory::Validation {
            return false;
        }
        override_retryable.unwrap_or_else(|| self.retryable_categories.contains(&category))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds() {
        let p = RetryPolicy { jitter: 0.5, ..RetryPolicy::default() };
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(1500));
    }

    #[test]
    fn retry_decisions() {
        let p = RetryPolicy::default();
        assert!(p.should_retry(1, ErrorCategory::Timeout, None, true));
        assert!(p.should_retry(3, ErrorCategory::System, None, true));
        assert!(!p.should_retry(4, ErrorCategory::System, None, true), "attempts used up");
        assert!(!p.should_retry(1, ErrorCategory::Processing, None, true), "not a retryable category");
        assert!(p.should_retry(1, ErrorCategory::Processing, Some(true), true), "the error asks for it");
        assert!(!p.should_retry(1, ErrorCategory::Network, Some(false), true), "the error forbids it");
        assert!(!p.should_retry(1, ErrorCategory::Network, None, false), "the action forbids it");
        assert!(!p.should_retry(1, ErrorCategory::Validation, Some(true), true), "validation never retries");
    }
}
