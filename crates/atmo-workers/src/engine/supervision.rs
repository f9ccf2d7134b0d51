//! Supervision shared by every executor whose workers speak the worker protocol (processes
//! over stdio, Web Workers over `postMessage`): the settings, the `worker-ready` check, the
//! restart backoff and crash-loop detection, and the bank's protocol counters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atmo_core::Manifest;
use atmo_core::Timestamp;
use atmo_core::protocol::{DEFAULT_MAX_LINE_BYTES, PROTOCOL_VERSION, WorkerReady};

/// How a bank's protocol workers are started, watched and replaced. Process banks use it
/// (as [`ProcessConfig`](crate::ProcessConfig)); so does any executor of one's own that talks
/// to workers over the protocol.
#[derive(Clone, Debug)]
pub struct Supervision {
    /// How long a new worker has to send `worker-ready` (default 10 s).
    pub ready_timeout: Duration,
    /// How long a worker has to answer a `cancel-task` before it is killed and replaced
    /// (default 5 s).
    pub cancel_grace: Duration,
    /// How long a worker has to exit after `shutdown` before it is killed (default 5 s).
    pub shutdown_grace: Duration,
    /// How often the engine sends `heartbeat` (default 5 s).
    pub heartbeat_interval: Duration,
    /// A worker that has sent nothing for this long is killed and replaced (default: none;
    /// a worker running one long synchronous handler may legitimately be silent).
    pub heartbeat_timeout: Option<Duration>,
    /// The first restart waits this long; each consecutive crash doubles it (default 100 ms).
    pub restart_backoff: Duration,
    /// The longest wait between restarts (default 10 s).
    pub max_restart_backoff: Duration,
    /// This many crashes within [`Supervision::crash_loop_window`] mark the bank `error`
    /// (default 5).
    pub crash_loop_threshold: usize,
    /// See [`Supervision::crash_loop_threshold`] (default 60 s).
    pub crash_loop_window: Duration,
    /// The longest message accepted from a worker, in bytes (default 16 MiB).
    pub max_line_bytes: usize,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            ready_timeout: Duration::from_secs(10),
            cancel_grace: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: None,
            restart_backoff: Duration::from_millis(100),
            max_restart_backoff: Duration::from_secs(10),
            crash_loop_threshold: 5,
            crash_loop_window: Duration::from_secs(60),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Compares a worker's `worker-ready` with the bank's manifest; returns how many tasks the
/// worker takes at once.
///
/// # Errors
/// Every difference, in one message.
///
/// ```
/// use atmo_workers::{ActionDefinition, Manifest, check_ready};
/// use atmo_workers::protocol::{ManifestId, WorkerReady};
/// let manifest = Manifest::builder("math").version("1.0.0").action(ActionDefinition::new("ADD").lenient()).build().unwrap();
/// let ready: WorkerReady = serde_json::from_value(serde_json::json!({
///     "type": "worker-ready", "protocolVersion": 1,
///     "manifest": {"name": "math", "version": "2.0.0"}, "actions": ["ADD", "SUB"]
/// })).unwrap();
/// let problem = check_ready(&ready, &manifest).unwrap_err();
/// assert!(problem.contains("version 2.0.0") && problem.contains("SUB"), "{problem}");
/// ```
pub fn check_ready(ready: &WorkerReady, manifest: &Manifest) -> Result<usize, String> {
    let mut problems = Vec::new();
    if ready.protocol_version != PROTOCOL_VERSION {
        problems.push(format!(
            "it speaks protocol version {}, the engine speaks {PROTOCOL_VERSION}",
            ready.protocol_version
        ));
    }
    if ready.manifest.name != manifest.name {
        problems.push(format!("it implements manifest `{}`, the bank runs `{}`", ready.manifest.name, manifest.name));
    } else if !ready.manifest.version.is_empty() && ready.manifest.version != manifest.version {
        problems.push(format!(
            "it implements `{}` version {}, the bank runs version {}",
            manifest.name, ready.manifest.version, manifest.version
        ));
    }
    let missing: Vec<&str> = manifest.action_ids().filter(|a| !ready.actions.iter().any(|r| r == a)).collect();
    if !missing.is_empty() {
        problems.push(format!("it lacks the actions {}", missing.join(", ")));
    }
    let extra: Vec<&str> = ready.actions.iter().map(String::as_str).filter(|a| manifest.action(a).is_none()).collect();
    if !extra.is_empty() {
        problems.push(format!("it announces actions the manifest does not declare: {}", extra.join(", ")));
    }
    if ready.max_concurrent_tasks == Some(0) {
        problems.push("it announces maxConcurrentTasks 0".into());
    }
    if problems.is_empty() {
        Ok(ready.max_concurrent_tasks.unwrap_or_else(|| manifest.concurrency_per_worker()).max(1))
    } else {
        Err(problems.join("; "))
    }
}

/// A bank's supervision counters (shown in its performance figures).
#[derive(Debug, Default)]
pub struct SupervisionStats {
    protocol_errors: AtomicU64,
    restarts: AtomicU64,
    abandoned: AtomicU64,
}

impl SupervisionStats {
    /// Counts a malformed, stray or oversize message.
    pub fn protocol_error(&self) {
        self.protocol_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a worker restarted after it was lost.
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a worker written off because its handler overstayed its timeout (its thread
    /// could not be stopped) and replaced.
    pub fn abandoned(&self) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// Workers written off so far.
    pub fn abandoned_workers(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// Protocol errors so far.
    pub fn protocol_errors(&self) -> u64 {
        self.protocol_errors.load(Ordering::Relaxed)
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
}

/// What [`CrashTracker::crashed`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartPlan {
    /// Wait this long before starting the worker again.
    pub backoff: Duration,
    /// Crashes within the window, when they reached the threshold: the bank is in a crash loop.
    pub crash_loop: Option<usize>,
}

/// One worker slot's crash history: the backoff before its next start and whether it is in a
/// crash loop. Times come from the engine's clock.
#[derive(Debug, Default)]
pub struct CrashTracker {
    crashes: VecDeque<Timestamp>,
    consecutive: u32,
}

impl CrashTracker {
    /// Records that a worker started at `born` was lost at `now`.
    pub fn crashed(&mut self, config: &Supervision, born: Timestamp, now: Timestamp) -> RestartPlan {
        // A worker that lived for half the window was healthy: the backoff starts over.
        if now.saturating_since(born) > config.crash_loop_window / 2 {
            self.consecutive = 0;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        self.crashes.push_back(now);
        while self.crashes.front().is_some_and(|t| now.saturating_since(*t) > config.crash_loop_window) {
            self.crashes.pop_front();
        }
        let backoff = config
            .restart_backoff
            .saturating_mul(2u32.saturating_pow(self.consecutive.saturating_sub(1)))
            .min(config.max_restart_backoff);
        let crash_loop = (self.crashes.len() >= config.crash_loop_threshold).then_some(self.crashes.len());
        RestartPlan { backoff, crash_loop }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use atmo_core::ActionDefinition;
    use atmo_core::protocol::ManifestId;

    fn manifest() -> Manifest {
        Manifest::builder("math")
            .version("1.2.0")
            .action(ActionDefinition::new("ADD").lenient())
            .action(ActionDefinition::new("MUL").lenient())
            .max_concurrent_tasks(3)
            .build()
            .unwrap()
    }

    fn ready(name: &str, version: &str, actions: &[&str]) -> WorkerReady {
        WorkerReady {
            protocol_version: PROTOCOL_VERSION,
            manifest: ManifestId { name: name.into(), version: version.into() },
            actions: actions.iter().map(|s| (*s).to_owned()).collect(),
            max_concurrent_tasks: None,
            pid: None,
        }
    }

    #[test]
    fn a_matching_worker_is_accepted_with_the_manifest_concurrency() {
        assert_eq!(check_ready(&ready("math", "1.2.0", &["MUL", "ADD"]), &manifest()), Ok(3));
        assert_eq!(check_ready(&ready("math", "", &["ADD", "MUL"]), &manifest()), Ok(3));
        let mut r = ready("math", "1.2.0", &["ADD", "MUL"]);
        r.max_concurrent_tasks = Some(8);
        assert_eq!(check_ready(&r, &manifest()), Ok(8));
    }

    #[test]
    fn every_difference_is_named() {
        let mut r = ready("maths", "1.2.0", &["ADD", "DIV"]);
        r.protocol_version = 2;
        let e = check_ready(&r, &manifest()).unwrap_err();
        assert!(e.contains("protocol version 2"), "{e}");
        assert!(e.contains("manifest `maths`, the bank runs `math`"), "{e}");
        assert!(e.contains("lacks the actions MUL"), "{e}");
        assert!(e.contains("does not declare: DIV"), "{e}");
        let e = check_ready(&ready("math", "0.9.0", &["ADD", "MUL"]), &manifest()).unwrap_err();
        assert!(e.contains("version 0.9.0, the bank runs version 1.2.0"), "{e}");
    }

    #[test]
    fn backoff_doubles_and_a_loop_is_seen_at_the_threshold() {
        let config = Supervision {
            restart_backoff: Duration::from_millis(100),
            max_restart_backoff: Duration::from_millis(350),
            crash_loop_threshold: 3,
            crash_loop_window: Duration::from_secs(60),
            ..Supervision::default()
        };
        let mut tracker = CrashTracker::default();
        let t = |s: u64| Timestamp::from_millis(1_000_000 + s as i64 * 1000);
        let plans: Vec<RestartPlan> = (0..4).map(|i| tracker.crashed(&config, t(i), t(i))).collect();
        let backoffs: Vec<u128> = plans.iter().map(|p| p.backoff.as_millis()).collect();
        assert_eq!(backoffs, [100, 200, 350, 350]);
        assert_eq!(plans.iter().map(|p| p.crash_loop).collect::<Vec<_>>(), [None, None, Some(3), Some(4)]);
        // Long after, a worker that lived long starts the count over.
        let plan = tracker.crashed(&config, t(100), t(200));
        assert_eq!(plan, RestartPlan { backoff: Duration::from_millis(100), crash_loop: None });
    }
}
