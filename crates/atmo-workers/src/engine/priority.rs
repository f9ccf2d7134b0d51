//! The CPU priority of a background bank's worker threads.
//!
//! A bank of long, CPU-bound work on every core makes every other bank's requests wait for a
//! core at each hand-off between threads (submit, dispatch, the worker, the applier): the
//! scheduler lets a running thread finish its time slice before a woken one gets the core, and
//! a short request crosses several such hand-offs. A background bank's threads run at the
//! lowest priority the OS offers without privileges (Linux: `SCHED_IDLE`; elsewhere the lowest
//! priority of the normal policy): they take the CPU that other work leaves, all of it on an
//! otherwise idle machine, and give way at once when another thread wakes.

/// Lowers the calling thread's CPU priority for the rest of its life (an unprivileged thread
/// cannot raise it again). A failure is logged, and the thread runs at its normal priority.
pub(crate) fn lower_current_thread(bank_id: &str) {
    if let Err(e) = lower() {
        tracing::warn!(bank = bank_id, error = ?e, "cannot lower a background worker thread's CPU priority");
    }
}

#[cfg(target_os = "linux")]
fn lower() -> Result<(), thread_priority::Error> {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
    };
    set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    )
}

#[cfg(not(target_os = "linux"))]
fn lower() -> Result<(), thread_priority::Error> {
    thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
}
