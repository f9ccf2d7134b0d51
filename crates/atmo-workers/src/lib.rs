//! # atmo-workers
//!
//! The engine of Atmo Workers. A program submits requests (a task id plus JSON parameters);
//! banks of workers, declared by manifests, process them; every request is tracked through its
//! lifecycle.
//!
//! How the pieces relate:
//!
//! - [`RequestManager`] is the ledger: registration, submission, state, queries, metrics,
//!   events. Alone, with a request reducer, it runs in test mode.
//! - [`WorkerManager`] owns a `RequestManager` and runs it: [`BankSpec`]s become banks of
//!   workers (synchronous handlers on the bank's own threads, async handlers on tokio); a
//!   dispatcher claims requests for banks with spare capacity, an applier records outcomes in
//!   batches and enforces timeouts and retries.
//! - Requests live in a [`Store`]: [`store::MemoryStore`] here, durable stores in other crates.
//! - [`tracer::ActivityTracer`] follows every worker; [`sniffer::EnvironmentSniffer`] says what
//!   the machine can do; [`mock::MockWorker`] fakes handlers for tests.
//!
//! ```
//! use atmo_workers::{ActionDefinition, BankSpec, Handler, Handlers, Manifest, SubmitOptions, WorkerManager};
//! use serde_json::json;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let manager = WorkerManager::builder().name("example").start().await?;
//! let manifest = Manifest::builder("math").action(ActionDefinition::new("add").lenient()).build().unwrap();
//! manager.initialize_worker_bank(
//!     BankSpec::new("math-bank", manifest)
//!         .workers(2)
//!         .handlers(Handlers::new().on("add", Handler::sync(|_ctx, p| {
//!             Ok(json!({"result": p["a"].as_i64().unwrap_or(0) + p["b"].as_i64().unwrap_or(0)}))
//!         }))),
//! )?;
//! let result = manager.submit_and_wait("add", json!({"a": 5, "b": 3}), SubmitOptions::new()).await?;
//! assert_eq!(result.payload.as_deref(), Some(&json!({"result": 8})));
//! manager.shutdown(Duration::from_secs(1)).await?;
//! # Ok::<_, atmo_workers::Error>(())
//! # }).unwrap();
//! ```

pub use atmo_core::*;

pub mod clock;
mod engine;
pub mod events;
pub mod mock;
mod request_manager;
pub mod responder;
pub mod sniffer;
pub mod store;
pub mod tracer;
mod worker_manager;

pub use engine::Reducer;
pub use engine::config::{EngineConfig, RetentionConfig};
pub use engine::executor::{Executor, Job, Outcome, Reporter, StartedJob};
pub use engine::process::ProcessConfig;
pub use events::{EventItem, EventStream};
pub use request_manager::{EventSubscription, RequestManager, RequestManagerBuilder};
pub use worker_manager::{BankSpec, WorkerManager, WorkerManagerBuilder};

// The README's examples are compiled and run as doc tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[doc = include_str!("../../../docs/protocol.md")]
#[cfg(doctest)]
pub struct ProtocolDoctests;
