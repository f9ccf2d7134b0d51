//! Wake-ups between the engine's tasks, named by what happened rather than by who listens.
//!
//! Three tasks sleep until there is work: the dispatcher (ready requests and spare capacity),
//! the applier (dispatched work whose start it watches for) and the scheduler (the next due
//! time). Whoever changes what they wait for calls the method that says what changed.

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    dispatch: Notify,
    applier: Notify,
    schedule: Notify,
}

impl Wakeups {
    /// Requests became ready to run (submitted, promoted, rescued).
    pub(crate) fn requests_ready(&self) {
        self.dispatch.notify_one();
    }

    /// A worker slot or a bank's capacity was freed.
    pub(crate) fn capacity_freed(&self) {
        self.dispatch.notify_one();
    }

    /// A bank was added or changed status.
    pub(crate) fn banks_changed(&self) {
        self.dispatch.notify_one();
    }

    /// Requests were handed to workers: the applier watches for their starts.
    pub(crate) fn work_dispatched(&self) {
        self.applier.notify_one();
    }

    /// A request was scheduled for later (a delayed submission, a retry's backoff).
    pub(crate) fn scheduled(&self) {
        self.schedule.notify_one();
    }

    /// The dispatcher's wait.
    pub(super) async fn dispatch_needed(&self) {
        self.dispatch.notified().await;
    }

    /// The applier's wait for dispatched work.
    pub(super) async fn dispatched(&self) {
        self.applier.notified().await;
    }

    /// The scheduler's wait for a new scheduled request.
    pub(super) async fn schedule_changed(&self) {
        self.schedule.notified().await;
    }
}
