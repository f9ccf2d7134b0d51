//! [`CronScheduler`]: requests submitted on a schedule.
//!
//! A schedule names a task, its parameters and submission options, and a cron expression
//! (five fields, or six with seconds first; parsed by `croner`, in UTC). Every run is an
//! ordinary request whose metadata records `cronId`, `cronName` and `cronScheduledAt`, and whose
//! idempotency key is `cron:<id>:<scheduled time>`, so a run re-submitted after a crash with a
//! durable store is the same request.
//!
//! With a state file, schedules and how far each was handled are written after every change
//! (to a temporary file, then renamed over the old one), so a restarted service knows which
//! runs it missed while it was down. [`due_runs`] decides what to run then, by the schedule's
//! [`MissedRunPolicy`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use atmo_workers::{RequestId, RequestManager, SubmitOptions, Timestamp};
use croner::Cron;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{Notify, watch};

/// What to do with runs a schedule missed (the service was down, or paused the runtime).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissedRunPolicy {
    /// Drop them; the next run is the next occurrence.
    #[default]
    Skip,
    /// Run once for all of them, as soon as possible.
    RunOnce,
    /// Run each of them (at most the server's `cron_max_catch_up`, oldest first).
    RunAll,
}

/// A schedule as submitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronSpec {
    /// A unique name.
    pub name: String,
    /// The cron expression: `min hour day month weekday`, or with seconds first.
    pub schedule: String,
    /// The task every run submits.
    pub task_id: String,
    /// Its parameters.
    #[serde(default)]
    pub parameters: Value,
    /// Submission options of every run (`runAt`, `delay` and `idempotencyKey` are ignored).
    #[serde(default)]
    pub options: SubmitOptions,
    /// What to do with missed runs.
    #[serde(default)]
    pub missed_run_policy: MissedRunPolicy,
}

/// A schedule with its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronJob {
    /// The id (`cron-…`).
    pub id: String,
    /// The definition.
    #[serde(flatten)]
    pub spec: CronSpec,
    /// Paused schedules submit nothing; occurrences while paused are not missed runs.
    pub paused: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// Occurrences up to this time have been handled (run, skipped or missed by policy).
    pub checked_through: Timestamp,
    /// The scheduled time of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<Timestamp>,
    /// The request of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request_id: Option<RequestId>,
    /// Why the last submission failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Runs submitted.
    #[serde(default)]
    pub run_count: u64,
    /// Missed occurrences dropped by the policy.
    #[serde(default)]
    pub skipped_count: u64,
    /// The next occurrence (absent while paused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<Timestamp>,
}

/// Why a schedule operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// The cron expression does not parse.
    #[error("invalid cron expression `{schedule}`: {message}")]
    InvalidSchedule {
        /// The expression.
        schedule: String,
        /// What is wrong.
        message: String,
    },
    /// The task is not registered.
    #[error("unknown task `{}`; known tasks: {}", atmo_workers::manifest::Echo(task_id), known.join(", "))]
    UnknownTask {
        /// What was asked for.
        task_id: String,
        /// What exists.
        known: Vec<String>,
    },
    /// No schedule has this id.
    #[error("no cron schedule with id `{0}`")]
    NotFound(String),
    /// A schedule with this name exists.
    #[error("a cron schedule named `{name}` exists already (id `{id}`)")]
    Duplicate {
        /// The name.
        name: String,
        /// The existing schedule's id.
        id: String,
    },
    /// The definition is invalid otherwise (an empty name, ...).
    #[error("invalid cron schedule: {0}")]
    Invalid(String),
    /// The state file could not be written or read.
    #[error("cron state file {path}: {source}")]
    Persist {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Parses a cron expression (five fields, or six with seconds first, or `@hourly`-style).
///
/// # Errors
/// Longest schedule name (and cron expression) accepted, in bytes; names must also be free of
/// control characters.
pub const MAX_CRON_NAME_BYTES: usize = 128;

/// [`CronError::InvalidSchedule`] with the parser's explanation.
pub fn parse_schedule(schedule: &str) -> Result<Cron, CronError> {
    Cron::from_str(schedule.trim())
        .map_err(|e| CronError::InvalidSchedule { schedule: schedule.to_owned(), message: e.to_string() })
}

/// The runs due for a schedule handled through `after`, at `now`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DueRuns {
    /// The scheduled times to submit now, oldest first.
    pub runs: Vec<Timestamp>,
    /// Missed occurrences the policy dropped (counted up to `max_catch_up + 1`).
    pub skipped: usize,
}

/// What to run for a schedule whose occurrences up to `after` were handled, at time `now`.
///
/// Occurrences in `(after, now]` no older than `grace` are on time and always run. Older ones
/// are missed: [`MissedRunPolicy::Skip`] drops them, [`MissedRunPolicy::RunOnce`] runs the
/// latest of them once, [`MissedRunPolicy::RunAll`] runs up to `max_catch_up` of them, oldest
/// first. The work is bounded whatever the downtime: at most `max_catch_up + 1` missed
/// occurrences are enumerated.
///
/// ```
/// use atmo_server::cron::{due_runs, parse_schedule, MissedRunPolicy};
/// use atmo_workers::Timestamp;
/// use std::time::Duration;
/// let every_minute = parse_schedule("* * * * *").unwrap();
/// let down_at = Timestamp::parse("2026-01-01T00:00:30Z").unwrap();
/// let back_at = Timestamp::parse("2026-01-01T00:05:00.5Z").unwrap();
/// let grace = Duration::from_secs(2);
/// // 00:01 … 00:04 were missed (00:05 is on time and runs anyway).
/// let skip = due_runs(&every_minute, down_at, back_at, MissedRunPolicy::Skip, grace, 100);
/// assert_eq!((skip.runs.len(), skip.skipped), (1, 4));
/// let once = due_runs(&every_minute, down_at, back_at, MissedRunPolicy::RunOnce, grace, 100);
/// assert_eq!(once.runs.len(), 2);
/// let all = due_runs(&every_minute, down_at, back_at, MissedRunPolicy::RunAll, grace, 100);
/// assert_eq!(all.runs.len(), 5);
/// ```
pub fn due_runs(
    schedule: &Cron,
    after: Timestamp,
    now: Timestamp,
    policy: MissedRunPolicy,
    grace: Duration,
    max_catch_up: usize,
) -> DueRuns {
    if now <= after {
        return DueRuns::default();
    }
    let cutoff = now.saturating_sub(grace);
    let mut missed = Vec::new();
    if after < cutoff {
        for t in schedule.iter_after(after.to_datetime()) {
            let t = Timestamp::from_datetime(t);
            if t >= cutoff || missed.len() > max_catch_up {
                break;
            }
            missed.push(t);
        }
    }
    let mut on_time = Vec::new();
    let from = if after < cutoff { cutoff.saturating_sub(Duration::from_micros(1)) } else { after };
    for t in schedule.iter_after(from.to_datetime()) {
        let t = Timestamp::from_datetime(t);
        if t > now {
            break;
        }
        on_time.push(t);
    }
    let (mut runs, skipped) = match policy {
        MissedRunPolicy::Skip => (Vec::new(), missed.len()),
        MissedRunPolicy::RunOnce => match missed.last() {
            Some(t) => (vec![*t], missed.len() - 1),
            None => (Vec::new(), 0),
        },
        MissedRunPolicy::RunAll => {
            let n = missed.len().min(max_catch_up);
            let skipped = missed.len() - n;
            missed.truncate(n);
            (missed, skipped)
        }
    };
    runs.extend(on_time);
    DueRuns { runs, skipped }
}

fn next_after(schedule: &Cron, t: Timestamp) -> Option<Timestamp> {
    schedule.find_next_occurrence(&t.to_datetime(), false).ok().map(Timestamp::from_datetime)
}

/// The state file's format.
#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    jobs: Vec<CronJob>,
}

struct Entry {
    job: CronJob,
    cron: Cron,
}

struct Inner {
    manager: RequestManager,
    jobs: Mutex<BTreeMap<String, Entry>>,
    path: Option<PathBuf>,
    write: Mutex<()>,
    grace: Duration,
    max_catch_up: usize,
    wake: Notify,
}

/// Submits requests on cron schedules (see the [module docs](self)).
///
/// Cloning is cheap: clones share the schedules. The server starts its loop; the binary adds
/// schedules from its configuration with [`CronScheduler::ensure`].
#[derive(Clone)]
pub struct CronScheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CronScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CronScheduler").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl CronScheduler {
    /// A scheduler submitting to `manager`, loading the schedules persisted at `path` (if
    /// the file exists).
    ///
    /// # Errors
    /// [`CronError::Persist`] when the file exists but cannot be read or parsed, or holds an
    /// expression that no longer parses.
    pub(crate) fn new(
        manager: RequestManager,
        path: Option<PathBuf>,
        grace: Duration,
        max_catch_up: usize,
    ) -> Result<Self, CronError> {
        let mut jobs = BTreeMap::new();
        if let Some(p) = &path {
            for job in load(p)? {
                let cron = parse_schedule(&job.spec.schedule).map_err(|e| CronError::Persist {
                    path: p.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?;
                jobs.insert(job.id.clone(), Entry { job, cron });
            }
        }
        Ok(CronScheduler {
            inner: Arc::new(Inner {
                manager,
                jobs: Mutex::new(jobs),
                path,
                write: Mutex::new(()),
                grace,
                max_catch_up,
                wake: Notify::new(),
            }),
        })
    }

    /// Every schedule, by id.
    pub fn list(&self) -> Vec<CronJob> {
        self.inner.jobs.lock().values().map(|e| e.job.clone()).collect()
    }

    /// One schedule.
    pub fn get(&self, id: &str) -> Option<CronJob> {
        self.inner.jobs.lock().get(id).map(|e| e.job.clone())
    }

    fn check(&self, spec: &CronSpec) -> Result<Cron, CronError> {
        if spec.name.trim().is_empty() {
            return Err(CronError::Invalid("`name` must not be empty".into()));
        }
        if spec.name.len() > MAX_CRON_NAME_BYTES {
            return Err(CronError::Invalid(format!(
                "`name` has {} bytes; at most {MAX_CRON_NAME_BYTES} are accepted",
                spec.name.len()
            )));
        }
        if spec.name.chars().any(char::is_control) {
            return Err(CronError::Invalid(format!(
                "`name` `{}` holds a control character, which names may not",
                atmo_workers::manifest::Echo(&spec.name)
            )));
        }
        if spec.schedule.len() > MAX_CRON_NAME_BYTES {
            return Err(CronError::Invalid(format!(
                "`schedule` has {} bytes; a cron expression has at most {MAX_CRON_NAME_BYTES}",
                spec.schedule.len()
            )));
        }
        // The options every run submits with, checked once here rather than at every run.
        spec.options.check().map_err(|e| CronError::Invalid(e.to_string()))?;
        let cron = parse_schedule(&spec.schedule)?;
        let tasks = self.inner.manager.tasks();
        if !tasks.iter().any(|t| *t.task_id == *spec.task_id) {
            return Err(CronError::UnknownTask {
                task_id: spec.task_id.clone(),
                known: tasks.iter().map(|t| t.task_id.to_string()).collect(),
            });
        }
        Ok(cron)
    }

    /// Adds a schedule; its first run is its next occurrence from now.
    ///
    /// # Errors
    /// `InvalidSchedule`, `UnknownTask`, `Invalid` (empty name), `Duplicate` (the name is
    /// taken), `Persist`.
    pub fn add(&self, spec: CronSpec) -> Result<CronJob, CronError> {
        let cron = self.check(&spec)?;
        let now = self.inner.manager.now();
        let job = {
            let mut jobs = self.inner.jobs.lock();
            if let Some(e) = jobs.values().find(|e| e.job.spec.name == spec.name) {
                return Err(CronError::Duplicate { name: spec.name, id: e.job.id.clone() });
            }
            let id = format!("cron-{:016x}", fastrand::u64(..));
            let job = CronJob {
                id: id.clone(),
                next_run_at: next_after(&cron, now),
                spec,
                paused: false,
                created_at: now,
                checked_through: now,
                last_run_at: None,
                last_request_id: None,
                last_error: None,
                run_count: 0,
                skipped_count: 0,
            };
            jobs.insert(id, Entry { job: job.clone(), cron });
            job
        };
        self.persist()?;
        self.inner.wake.notify_one();
        Ok(job)
    }

    /// Adds the schedule, or updates the one with the same name, keeping its id and run state
    /// (what a service does with the schedules of its configuration file at every start).
    ///
    /// # Errors
    /// As [`CronScheduler::add`], without `Duplicate`.
    pub fn ensure(&self, spec: CronSpec) -> Result<CronJob, CronError> {
        let cron = self.check(&spec)?;
        let now = self.inner.manager.now();
        let updated = {
            let mut jobs = self.inner.jobs.lock();
            jobs.values_mut().find(|e| e.job.spec.name == spec.name).map(|e| {
                e.job.next_run_at = if e.job.paused { None } else { next_after(&cron, now) };
                e.job.spec = spec.clone();
                e.cron = cron;
                e.job.clone()
            })
        };
        match updated {
            Some(job) => {
                self.persist()?;
                self.inner.wake.notify_one();
                Ok(job)
            }
            None => self.add(spec),
        }
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Entry, Timestamp)) -> Result<CronJob, CronError> {
        let now = self.inner.manager.now();
        let job = {
            let mut jobs = self.inner.jobs.lock();
            let e = jobs.get_mut(id).ok_or_else(|| CronError::NotFound(id.to_owned()))?;
            f(e, now);
            e.job.clone()
        };
        self.persist()?;
        self.inner.wake.notify_one();
        Ok(job)
    }

    /// Pauses a schedule.
    ///
    /// # Errors
    /// `NotFound`, `Persist`.
    pub fn pause(&self, id: &str) -> Result<CronJob, CronError> {
        self.update(id, |e, _| {
            e.job.paused = true;
            e.job.next_run_at = None;
        })
    }

    /// Resumes a paused schedule; occurrences while it was paused are not run.
    ///
    /// # Errors
    /// `NotFound`, `Persist`.
    pub fn resume(&self, id: &str) -> Result<CronJob, CronError> {
        self.update(id, |e, now| {
            if e.job.paused {
                e.job.paused = false;
                e.job.checked_through = now;
            }
            e.job.next_run_at = next_after(&e.cron, e.job.checked_through.max(now));
        })
    }

    /// Deletes a schedule (its past runs stay, as ordinary requests).
    ///
    /// # Errors
    /// `NotFound`, `Persist`.
    pub fn remove(&self, id: &str) -> Result<CronJob, CronError> {
        let removed = self.inner.jobs.lock().remove(id).ok_or_else(|| CronError::NotFound(id.to_owned()))?;
        self.persist()?;
        Ok(removed.job)
    }

    fn persist(&self) -> Result<(), CronError> {
        let Some(path) = &self.inner.path else { return Ok(()) };
        // Snapshot under the write lock, so a later snapshot is never overwritten by an older one.
        let _w = self.inner.write.lock();
        let jobs: Vec<CronJob> = self.inner.jobs.lock().values().map(|e| e.job.clone()).collect();
        save(path, &StateFile { version: 1, jobs }).map_err(|source| CronError::Persist { path: path.clone(), source })
    }

    /// Submits what is due; returns when the next check is due.
    async fn tick(&self) -> Timestamp {
        let inner = &self.inner;
        let now = inner.manager.now();
        let mut fires: Vec<(String, CronSpec, Vec<Timestamp>)> = Vec::new();
        let mut changed = false;
        let mut next_wake = now + Duration::from_secs(60);
        {
            let mut jobs = inner.jobs.lock();
            for e in jobs.values_mut().filter(|e| !e.job.paused) {
                let due = due_runs(
                    &e.cron,
                    e.job.checked_through,
                    now,
                    e.job.spec.missed_run_policy,
                    inner.grace,
                    inner.max_catch_up,
                );
                if !due.runs.is_empty() || due.skipped > 0 {
                    changed = true;
                    e.job.skipped_count += due.skipped as u64;
                    if due.skipped > 0 {
                        tracing::info!(schedule = %e.job.spec.name, skipped = due.skipped, "missed cron runs skipped");
                    }
                    if !due.runs.is_empty() {
                        fires.push((e.job.id.clone(), e.job.spec.clone(), due.runs));
                    }
                }
                if e.job.checked_through < now {
                    e.job.checked_through = now;
                }
                e.job.next_run_at = next_after(&e.cron, now);
                if let Some(n) = e.job.next_run_at {
                    next_wake = next_wake.min(n);
                }
            }
        }
        for (id, spec, runs) in fires {
            for at in runs {
                // Paused or deleted meanwhile: the rest of its runs are dropped.
                if inner.jobs.lock().get(&id).is_none_or(|e| e.job.paused) {
                    break;
                }
                let outcome = submit_run(&inner.manager, &id, &spec, at).await;
                let mut jobs = inner.jobs.lock();
                let Some(e) = jobs.get_mut(&id) else { break };
                match outcome {
                    Ok(rid) => {
                        e.job.run_count += 1;
                        e.job.last_run_at = Some(at);
                        e.job.last_request_id = Some(rid);
                        e.job.last_error = None;
                    }
                    Err(err) => {
                        tracing::warn!(schedule = %spec.name, error = %err, "cron run not submitted");
                        e.job.last_error = Some(err.to_string());
                    }
                }
            }
        }
        if changed && let Err(e) = self.persist() {
            tracing::error!(error = %e, "cannot persist cron state");
        }
        next_wake
    }

    /// The scheduler's loop, until `stop` turns true or its sender goes away.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let next = self.tick().await;
            let now = self.inner.manager.now();
            // Wake a little after the occurrence, so it is due when checked.
            let wait = next.saturating_since(now).max(Duration::from_millis(5)) + Duration::from_millis(1);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.wake.notified() => {}
                _ = crate::monitor::stopped(&mut stop) => return,
            }
        }
    }
}

async fn submit_run(
    manager: &RequestManager,
    id: &str,
    spec: &CronSpec,
    at: Timestamp,
) -> atmo_workers::Result<RequestId> {
    let mut options = spec.options.clone();
    options.run_at = None;
    options.delay = None;
    options.idempotency_key = Some(format!("cron:{id}:{}", at.as_micros()));
    let meta = options.metadata.get_or_insert_with(Map::new);
    meta.insert("cronId".into(), Value::from(id));
    meta.insert("cronName".into(), Value::from(spec.name.as_str()));
    meta.insert("cronScheduledAt".into(), Value::from(at.to_string()));
    manager.submit(&spec.task_id, spec.parameters.clone(), options).await
}

fn load(path: &Path) -> Result<Vec<CronJob>, CronError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CronError::Persist { path: path.to_owned(), source }),
    };
    let state: StateFile = serde_json::from_str(&text).map_err(|e| CronError::Persist {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    Ok(state.jobs)
}

/// Writes the file atomically: a reader sees the old content or the new, never a torn one.
fn save(path: &Path, state: &StateFile) -> std::io::Result<()> {
    use std::io::Write as _;
    let text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "cron".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap_or_default()
    }

    #[test]
    fn on_time_runs_always_run_and_missed_ones_follow_the_policy() {
        let every_sec = parse_schedule("* * * * * *").unwrap_or_else(|_| unreachable!());
        let g = Duration::from_secs(2);
        // Running normally: one occurrence due, on time.
        let d = due_runs(
            &every_sec,
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:01.003Z"),
            MissedRunPolicy::Skip,
            g,
            10,
        );
        assert_eq!(d.runs, vec![ts("2026-01-01T00:00:01Z")]);
        // Down for a minute: 57 missed (00:00:01 … 00:00:57), 58–60 on time.
        let after = ts("2026-01-01T00:00:00Z");
        let now = ts("2026-01-01T00:01:00Z");
        let d = due_runs(&every_sec, after, now, MissedRunPolicy::Skip, g, 100);
        assert_eq!(d.runs.len(), 3);
        assert_eq!(d.skipped, 57);
        let d = due_runs(&every_sec, after, now, MissedRunPolicy::RunOnce, g, 100);
        assert_eq!(d.runs.first(), Some(&ts("2026-01-01T00:00:57Z")));
        assert_eq!((d.runs.len(), d.skipped), (4, 56));
        let d = due_runs(&every_sec, after, now, MissedRunPolicy::RunAll, g, 10);
        assert_eq!(d.runs.len(), 13, "10 caught up, 3 on time");
        assert_eq!(d.runs.first(), Some(&ts("2026-01-01T00:00:01Z")));
        // Bounded whatever the downtime.
        let d = due_runs(&every_sec, after, ts("2027-01-01T00:00:00Z"), MissedRunPolicy::RunAll, g, 5);
        assert_eq!(d.runs.len(), 5 + 3);
        // Nothing due before the next occurrence, nor when time did not move.
        let d = due_runs(&every_sec, now, now, MissedRunPolicy::RunAll, g, 5);
        assert!(d.runs.is_empty());
    }

    #[test]
    fn bad_expressions_are_refused_with_the_reason() {
        let e = parse_schedule("every tuesday").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("every tuesday"), "{e}");
    }
}
