//! Test mode's executor: the request reducer, run at once on the dispatching task.
//!
//! Test-mode requests go through the same dispatcher and applier as any other: retries,
//! events, panics and timeouts are decided there. The reducer is meant to be quick (a test's
//! stand-in for workers), so it runs inline rather than on a thread of its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use atmo_core::Clock;

use super::executor::{Executor, Job, Outcome, Reporter};
use super::{Reducer, panic_message};

#[derive(Clone)]
pub(crate) struct ReducerExecutor {
    reducer: Reducer,
    reporter: Reporter,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ReducerExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReducerExecutor").finish_non_exhaustive()
    }
}

impl ReducerExecutor {
    pub(crate) fn new(reducer: Reducer, reporter: Reporter, clock: Arc<dyn Clock>) -> Self {
        ReducerExecutor { reducer, reporter, clock }
    }
}

impl Executor for ReducerExecutor {
    fn kind(&self) -> &'static str {
        "reducer"
    }

    fn dispatch(&self, job: Job) {
        if job.cancel.is_cancelled() {
            self.reporter.skipped(&job);
            return;
        }
        let started = self.clock.now();
        let outcome = match catch_unwind(AssertUnwindSafe(|| (self.reducer)(&job.task_id, &job.parameters))) {
            Ok(Ok(v)) => Outcome::Completed(v),
            Ok(Err(e)) => Outcome::Failed(e),
            Err(panic) => Outcome::Panicked(panic_message(&*panic)),
        };
        self.reporter.finished_without_start(&job, outcome, self.clock.now().saturating_since(started));
    }

    fn shutdown(&self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}
