//! The runtime seam: where the engine's tasks run, how they wait, and what time it is.
//!
//! The engine (dispatcher, applier, scheduler, lease keeper, retention sweeper, waiters, event
//! callbacks, shutdown) never names a runtime: it spawns, sleeps and reads the time through a
//! [`Runtime`]. [`TokioRuntime`] (feature `native`, the default) runs it on tokio; the browser
//! build supplies one made of `spawn_local` and `setTimeout`; tests can supply a
//! single-threaded one with virtual time.
//!
//! Everything the engine needs beyond the trait's three operations (handles that join or abort
//! a task, a time limit on a future, yielding) is built here on top of them, once.

#[cfg(feature = "native")]
mod tokio_rt;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use atmo_core::{Clock, Timestamp};
use futures::future::{AbortHandle, Abortable, BoxFuture, Either};
#[cfg(feature = "native")]
pub use tokio_rt::TokioRuntime;

/// Where the engine runs: spawn a future, sleep, tell the time.
///
/// Implementations must be cheap to call from any engine task; `spawn` must not run the
/// future inline (the caller may hold locks the future needs).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use atmo_workers::runtime::Runtime;
/// use atmo_workers::{Timestamp, WorkerManager};
/// use futures::future::BoxFuture;
///
/// /// Tokio's runtime under another name: any executor with timers fits the same way.
/// #[derive(Debug)]
/// struct MyRuntime;
///
/// impl Runtime for MyRuntime {
///     fn spawn(&self, task: BoxFuture<'static, ()>) {
///         tokio::spawn(task);
///     }
///     fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
///         Box::pin(tokio::time::sleep(duration))
///     }
///     fn now(&self) -> Timestamp {
///         atmo_workers::clock::SystemClock.now()
///     }
/// }
/// # use atmo_workers::Clock;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let manager = WorkerManager::builder().runtime(Arc::new(MyRuntime)).start().await?;
/// manager.shutdown(Duration::ZERO).await?;
/// # Ok::<_, atmo_workers::Error>(())
/// # }).unwrap();
/// ```
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs `task` in the background until it completes.
    fn spawn(&self, task: BoxFuture<'static, ()>);

    /// A future that completes once `duration` has passed.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        self.sleep(deadline.saturating_since(self.now()))
    }

    /// The current time, as the runtime's sleeps count it. The engine's clock defaults to it.
    fn now(&self) -> Timestamp;
}

/// The time of a [`Runtime`] as a [`Clock`]: the engine's default clock, so that timestamps and
/// sleeps agree (under tokio's paused time in tests, or virtual time in a simulation).
#[derive(Debug, Clone)]
pub struct RuntimeClock(pub Arc<dyn Runtime>);

impl Clock for RuntimeClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

/// A task spawned through [`spawn`]: it can be aborted or awaited, whatever the runtime.
#[derive(Debug)]
pub(crate) struct Task {
    abort: AbortHandle,
    done: tokio::sync::oneshot::Receiver<()>,
}

impl Task {
    /// Stops the task at its next suspension point.
    pub(crate) fn abort(&self) {
        self.abort.abort();
    }

    /// Waits until the task finished (or was aborted).
    pub(crate) async fn join(self) {
        // An error means the task was dropped by its runtime: it is over either way.
        let _ = self.done.await;
    }
}

/// Spawns `future` on `runtime`, returning a handle to abort or join it.
pub(crate) fn spawn<F>(runtime: &dyn Runtime, future: F) -> Task
where
    F: Future<Output = ()> + Send + 'static,
{
    let (abort, registration) = AbortHandle::new_pair();
    let (tx, done) = tokio::sync::oneshot::channel();
    runtime.spawn(Box::pin(async move {
        let _ = Abortable::new(future, registration).await;
        let _ = tx.send(());
    }));
    Task { abort, done }
}

/// `future`'s output, or `None` if `limit` passes first.
pub(crate) async fn timeout<F: Future>(runtime: &dyn Runtime, limit: Duration, future: F) -> Option<F::Output> {
    let future = std::pin::pin!(future);
    match futures::future::select(future, runtime.sleep(limit)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(((), _)) => None,
    }
}

/// Gives other tasks a turn: completes on its second poll.
pub(crate) fn yield_now() -> impl Future<Output = ()> {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false)
}
