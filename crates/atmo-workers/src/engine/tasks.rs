//! Handlers as tasks on the engine's runtime: async handlers are awaited there (I/O work);
//! without OS threads (the browser, or a bank of only async handlers) synchronous handlers run
//! there too, one job at a time per task.
//!
//! [`WorkerEnv`] is what every in-process worker needs to run a job; the thread executor
//! shares it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use atmo_core::{Clock, Handler, Handlers, Resources, TaskContext, TaskError};
use futures::FutureExt;

use super::executor::{Executor, Job, Outcome, Reporter, StartedJob};
use super::panic_message;
use crate::events::EventBus;
use crate::runtime::Runtime;

/// Everything an in-process worker needs to run a job.
pub(crate) struct WorkerEnv {
    pub(crate) bank_id: Arc<str>,
    pub(crate) worker_ids: Vec<Arc<str>>,
    /// Handlers by task id; looked up twice per job, so with a fast hash.
    pub(crate) handlers: rustc_hash::FxHashMap<Box<str>, Handler>,
    pub(crate) resources: Arc<Resources>,
    pub(crate) reporter: Reporter,
    /// The reporter as a progress sink, allocated once rather than per job.
    pub(crate) progress: Arc<dyn atmo_core::ProgressSink>,
    #[cfg_attr(not(feature = "native"), allow(dead_code))]
    pub(crate) events: Arc<EventBus>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) runtime: Arc<dyn Runtime>,
}

impl std::fmt::Debug for WorkerEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerEnv").field("bank_id", &self.bank_id).field("workers", &self.worker_ids.len()).finish()
    }
}

impl WorkerEnv {
    /// Indexes a bank's handlers by task id.
    pub(crate) fn index_handlers(handlers: &Handlers) -> rustc_hash::FxHashMap<Box<str>, Handler> {
        handlers.action_ids().filter_map(|id| Some((Box::from(id), handlers.get(id)?.clone()))).collect()
    }

    pub(crate) fn context(&self, job: &Job) -> TaskContext {
        TaskContext::new(
            job.request_id,
            job.task_id.clone(),
            job.attempt,
            self.bank_id.clone(),
            self.worker_ids.get(job.worker).cloned().unwrap_or_else(|| self.bank_id.clone()),
            None,
            job.cancel.clone(),
            self.resources.clone(),
            self.progress.clone(),
        )
    }

    #[cfg_attr(not(feature = "native"), allow(dead_code))]
    pub(crate) fn worker_id(&self, idx: usize) -> Arc<str> {
        self.worker_ids.get(idx).cloned().unwrap_or_else(|| self.bank_id.clone())
    }

    /// Runs `job` as a task of the runtime, whatever its handler's kind.
    pub(crate) fn spawn_job(self: &Arc<Self>, job: Job) {
        let Some(handler) = self.handlers.get(&*job.task_id).cloned() else {
            self.reporter.finished(&job, Outcome::Failed(no_handler(&job)), Default::default());
            return;
        };
        let env = self.clone();
        self.runtime.spawn(Box::pin(async move {
            if job.cancel.is_cancelled() {
                env.reporter.skipped(&job);
                return;
            }
            env.reporter.started(&job);
            let ctx = env.context(&job);
            let started = env.clock.now();
            let result = match &handler {
                Handler::Async(h) => AssertUnwindSafe(h.call(ctx, job.parameters.clone())).catch_unwind().await,
                Handler::Sync(h) => catch_unwind(AssertUnwindSafe(|| h.call(&ctx, &job.parameters))),
            };
            let outcome = match result {
                Ok(Ok(v)) => Outcome::Completed(v),
                Ok(Err(e)) => Outcome::Failed(e),
                Err(panic) => Outcome::Panicked(panic_message(&*panic)),
            };
            env.reporter.finished(&job, outcome, env.clock.now().saturating_since(started));
        }));
    }
}

pub(crate) fn no_handler(job: &Job) -> TaskError {
    TaskError::fatal("NO_HANDLER", format!("bank has no handler for task `{}`", job.task_id))
        .with_category(atmo_core::ErrorCategory::System)
}

/// A bank whose handlers run as tasks of the runtime.
#[derive(Debug)]
pub(crate) struct TaskExecutor {
    env: Arc<WorkerEnv>,
}

impl TaskExecutor {
    pub(crate) fn new(env: WorkerEnv) -> Self {
        TaskExecutor { env: Arc::new(env) }
    }
}

impl Executor for TaskExecutor {
    fn kind(&self) -> &'static str {
        "task"
    }

    fn dispatch(&self, job: Job) {
        self.env.spawn_job(job);
    }

    fn shutdown(&self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    fn harvest_starts(&self, _older_than: std::time::Duration) -> Vec<StartedJob> {
        // Every start is reported as it happens.
        Vec::new()
    }
}
