//! # atmo-builtin-worker
//!
//! Serves a built-in manifest ([`atmo_builtins`]) as a process worker: the same handlers the
//! thread banks run, in a separate process, over the worker protocol (`docs/protocol.md`). Use
//! it for crash isolation, or to run the built-ins on other machines' cores behind one engine.
//!
//! ```text
//! atmo-builtin-worker computation          # serve the computation manifest on stdin/stdout
//! atmo-builtin-worker --list               # the manifests it can serve
//! ```
//!
//! A process bank runs it with the manifest's name as its argument:
//!
//! ```no_run
//! # async fn f(manager: atmo_workers::WorkerManager) -> atmo_workers::Result<()> {
//! use atmo_workers::{BankSpec, manifest::CommandSpec};
//! let command = CommandSpec {
//!     program: "atmo-builtin-worker".into(),
//!     args: vec!["crypto".into()],
//!     env: Default::default(),
//!     working_dir: None,
//! };
//! manager
//!     .initialize_process_bank(BankSpec::new("crypto-procs", atmo_builtins::crypto_manifest()).workers(2).command(command))
//!     .await?;
//! # Ok(()) }
//! ```

use atmo_workers::Manifest;
use atmo_workers::responder::WorkerResponder;

/// The names of the manifests [`responder`] serves.
pub fn manifest_names() -> Vec<String> {
    atmo_builtins::all().into_iter().map(|(m, _)| m.name).collect()
}

/// The built-in manifest named `name`.
pub fn manifest(name: &str) -> Option<Manifest> {
    atmo_builtins::all().into_iter().map(|(m, _)| m).find(|m| m.name == name)
}

/// A responder serving the built-in manifest `name` with its handlers, announcing the
/// manifest's `maxConcurrentTasks` and running that many tasks at once.
///
/// # Errors
/// A message listing the known manifests when there is none by that name.
pub fn responder(name: &str) -> Result<WorkerResponder, String> {
    let (manifest, handlers) = atmo_builtins::all()
        .into_iter()
        .find(|(m, _)| m.name == name)
        .ok_or_else(|| format!("no built-in manifest `{name}` (known: {})", manifest_names().join(", ")))?;
    Ok(WorkerResponder::for_manifest(&manifest).handlers(handlers))
}
