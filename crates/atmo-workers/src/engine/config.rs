//! Engine configuration.

use std::time::Duration;

/// How the engine behaves; every field has a production-minded default.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Requests accepted and not yet finished, at most; beyond it submissions fail with
    /// `QueueFull`.
    pub queue_capacity: usize,
    /// Largest serialized parameters accepted, in bytes.
    pub max_payload_bytes: usize,
    /// Events a subscriber may fall behind before it lags.
    pub event_buffer: usize,
    /// Most requests claimed from the store in one go per bank.
    pub claim_batch: usize,
    /// How long a claim's lease lasts without a heartbeat.
    pub lease_duration: Duration,
    /// The longest timeout a request may ask for; a longer one is refused at submission
    /// (default 24 h), so that no client can switch timeouts off.
    pub max_timeout: Duration,
    /// The furthest ahead a request may be scheduled (`run_at`, `delay`; default 1,000 years:
    /// set it lower to bound what clients may park in the store).
    pub max_delay: Duration,
    /// Retention of finished requests.
    pub retention: RetentionConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            queue_capacity: 1_000_000,
            max_payload_bytes: 1 << 20,
            event_buffer: crate::events::DEFAULT_EVENT_BUFFER,
            claim_batch: 1024,
            lease_duration: Duration::from_secs(60),
            max_timeout: Duration::from_secs(24 * 3600),
            max_delay: Duration::from_secs(1000 * 365 * 24 * 3600),
            retention: RetentionConfig::default(),
        }
    }
}

/// How long finished requests are kept.
#[derive(Clone, Debug)]
pub struct RetentionConfig {
    /// Finished requests older than this are deleted (`None`: no age limit).
    pub max_age: Option<Duration>,
    /// At most this many finished requests are kept, the newest (`None`: no count limit).
    pub max_count: Option<usize>,
    /// How often the sweeper runs.
    pub interval: Duration,
    /// Deleted per store call, so a sweep never holds the store for long.
    pub batch: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            max_age: Some(Duration::from_secs(24 * 3600)),
            max_count: Some(1_000_000),
            interval: Duration::from_secs(10),
            batch: 10_000,
        }
    }
}
