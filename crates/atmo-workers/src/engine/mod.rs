//! The engine's insides. [`RequestManager`](crate::RequestManager) and
//! [`WorkerManager`](crate::WorkerManager) are its faces; [`state::Engine`] holds its parts,
//! whose fields only the modules here see:
//!
//! - [`intake`]: whether submissions are taken and how many accepted requests are unfinished;
//! - [`registry`]: tasks, manifests, bank records, capabilities and the banks with workers;
//! - [`wake`]: the wake-ups between the engine's tasks, named by what happened;
//! - [`submit`]: validation and storage of new requests; [`ledger`]: reads, cancel, waits,
//!   events; [`banks`]: starting banks on executors; [`lifecycle`]: start and shutdown;
//! - the five loops: [`dispatcher`] (claims ready requests for banks with room), [`applier`]
//!   (turns worker reports into transitions, enforces timeouts, decides retries) and
//!   [`maintenance`] (scheduler, lease keeper, retention sweeper); every state change goes
//!   through [`commit`];
//! - the executors, behind [`executor::Executor`]: [`thread`] (OS threads and async tasks,
//!   feature `native`), [`tasks`] (handlers as tasks on the runtime), [`process`] (worker
//!   processes, feature `native`), [`reducer`] (test mode), with [`supervision`] shared by those
//!   whose workers speak the protocol.
//!
//! The engine spawns, sleeps and reads the time only through its [`Runtime`](crate::runtime::Runtime).

pub(crate) mod applier;
pub(crate) mod bank;
pub(crate) mod banks;
pub(crate) mod commit;
pub(crate) mod config;
pub(crate) mod dispatcher;
pub(crate) mod executor;
pub(crate) mod intake;
pub(crate) mod ledger;
pub(crate) mod lifecycle;
pub(crate) mod maintenance;
#[cfg(feature = "native")]
pub(crate) mod priority;
#[cfg(feature = "native")]
pub(crate) mod process;
pub(crate) mod reducer;
pub(crate) mod registry;
pub(crate) mod running;
pub(crate) mod state;
pub(crate) mod submit;
pub(crate) mod supervision;
pub(crate) mod tasks;
#[cfg(feature = "native")]
pub(crate) mod thread;
pub(crate) mod waiters;
pub(crate) mod wake;

use std::sync::Arc;

use atmo_core::TaskError;
use serde_json::Value;

pub(crate) use self::commit::{CommitScratch, trim_scratch};
pub(crate) use self::registry::TaskEntry;
pub(crate) use self::state::Engine;

/// The test-mode reducer: computes a result from a task id and parameters.
pub type Reducer = Arc<dyn Fn(&str, &Value) -> Result<Value, TaskError> + Send + Sync>;

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_owned()
    }
}
