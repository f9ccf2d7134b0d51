//! Every built-in as the plain data a bank is made of: id, manifest, handlers, a worker count.

use atmo_core::{Handlers, Manifest};

/// Prefix of every built-in bank's id.
pub const BANK_ID_PREFIX: &str = "builtin-";

/// One built-in manifest, ready to become a bank.
///
/// This crate depends on `atmo-core` alone (it builds for wasm), so it cannot name the
/// engine's `BankSpec`; a `BuiltinBank` holds what one needs, and registering every built-in
/// with a `WorkerManager` (from `atmo-workers`) is one loop:
///
/// ```ignore
/// use atmo_workers::{BankSpec, WorkerManager};
///
/// fn register_builtins(manager: &WorkerManager) -> atmo_workers::Result<()> {
///     for b in atmo_builtins::banks() {
///         manager.initialize_worker_bank(
///             BankSpec::new(b.bank_id, b.manifest).handlers(b.handlers).workers(b.suggested_workers),
///         )?;
///     }
///     Ok(())
/// }
/// ```
///
/// (`atmo bench builtins` registers its banks this way.) Every built-in handler is
/// synchronous, so each worker is an OS thread: on a small machine, cap the count
/// (`.workers(b.suggested_workers.min(cores))`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BuiltinBank {
    /// `builtin-` followed by the manifest's name (`builtin-computation`).
    pub bank_id: String,
    /// The manifest: actions, parameter schemas, timeout, concurrency.
    pub manifest: Manifest,
    /// One synchronous handler per action of the manifest.
    pub handlers: Handlers,
    /// Workers the manifest asks for: its `max_concurrent_tasks` (at least 1).
    pub suggested_workers: usize,
}

/// Every built-in manifest (in the order of [`all`](crate::all)) as a [`BuiltinBank`].
///
/// ```
/// let banks = atmo_builtins::banks();
/// let computation = banks.iter().find(|b| b.bank_id == "builtin-computation").unwrap();
/// assert_eq!(computation.suggested_workers, 5);
/// for b in &banks {
///     assert!(b.manifest.action_ids().all(|a| b.handlers.get(a).is_some()));
/// }
/// ```
pub fn banks() -> Vec<BuiltinBank> {
    crate::all()
        .into_iter()
        .map(|(manifest, handlers)| BuiltinBank {
            bank_id: format!("{BANK_ID_PREFIX}{}", manifest.name),
            suggested_workers: manifest.concurrency_per_worker(),
            manifest,
            handlers,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_a_bank_with_a_unique_id() {
        let banks = banks();
        let ids: Vec<&str> = banks.iter().map(|b| b.bank_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "builtin-computation",
                "builtin-crypto",
                "builtin-data-processing",
                "builtin-geospatial",
                "builtin-image-processing",
                "builtin-simulation"
            ]
        );
        for b in &banks {
            assert_eq!(Some(b.suggested_workers), b.manifest.max_concurrent_tasks, "{}", b.bank_id);
            assert_eq!(b.handlers.len(), b.manifest.actions.len(), "{}", b.bank_id);
        }
    }
}
