//! Clocks for the engine.

use std::time::SystemTime;

use atmo_core::{Clock, Timestamp};

/// Wall-clock time from the operating system.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let micros = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_micros(micros)
    }
}

/// Wall-clock time that advances with tokio's clock.
///
/// The engine's timers (timeouts, retry backoff, delayed submissions) sleep on tokio's clock, so
/// its timestamps come from the same source: under `tokio::time::pause()` a test advances both
/// together, deterministically and without real sleeps. In normal operation it reads the same as
/// [`SystemClock`] (anchored to the wall clock when created).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    anchor_wall: Timestamp,
    anchor: tokio::time::Instant,
}

impl TokioClock {
    /// A clock anchored at the current wall-clock time.
    pub fn new() -> Self {
        TokioClock { anchor_wall: SystemClock.now(), anchor: tokio::time::Instant::now() }
    }

    /// A clock anchored at a chosen time (tests).
    pub fn starting_at(t: Timestamp) -> Self {
        TokioClock { anchor_wall: t, anchor: tokio::time::Instant::now() }
    }

    /// The tokio instant corresponding to `t` (for sleeping until a timestamp).
    pub fn instant_at(&self, t: Timestamp) -> tokio::time::Instant {
        let now = self.now();
        let now_instant = tokio::time::Instant::now();
        if t <= now { now_instant } else { now_instant + t.saturating_since(now) }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.anchor_wall + tokio::time::Instant::now().saturating_duration_since(self.anchor)
    }
}
