//! [`TokioRuntime`]: the engine on tokio (the default).

use std::time::Duration;

use atmo_core::{Clock, Timestamp};
use futures::future::BoxFuture;

use super::Runtime;
use crate::clock::TokioClock;

/// The engine on a tokio runtime: tasks are spawned on the given handle, sleeps are tokio's,
/// time is a [`TokioClock`] (so `tokio::time::pause` moves the engine's clock in tests).
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: tokio::runtime::Handle,
    clock: TokioClock,
}

impl TokioRuntime {
    /// The runtime the caller runs on.
    ///
    /// # Errors
    /// [`Error::NoRuntime`](atmo_core::Error::NoRuntime) outside a tokio runtime.
    pub fn current() -> atmo_core::Result<Self> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| atmo_core::Error::NoRuntime)?;
        Ok(Self::new(handle))
    }

    /// A runtime spawning on `handle`.
    pub fn new(handle: tokio::runtime::Handle) -> Self {
        TokioRuntime { handle, clock: TokioClock::new() }
    }

    /// The tokio handle tasks are spawned on.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        drop(self.handle.spawn(task));
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }

    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep_until(self.clock.instant_at(deadline)))
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
