//! Starting banks: a bank's executor is made from a [`BankContext`], then the bank is
//! installed (registered with its manifest, tasks and capabilities, announced, dispatched to).

use std::sync::Arc;

use atmo_core::{BankStatus, Capability, Clock, Error, EventKind, Manifest, Result};
use serde_json::Value;

use super::bank::BankRuntime;
use super::executor::{Executor, Reporter};
use super::reducer::ReducerExecutor;
use super::state::Engine;
use super::supervision::{Supervision, SupervisionStats};
use crate::runtime::Runtime;

/// What an executor is made from: who the bank is, where to report, how to supervise. Given
/// to the factory of [`WorkerManager::initialize_bank_with`](crate::WorkerManager::initialize_bank_with).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BankContext {
    /// The bank's id.
    pub bank_id: Arc<str>,
    /// Its workers' ids (`<bank>/<index>`); a [`Job`](crate::Job)'s `worker` indexes them.
    pub worker_ids: Vec<Arc<str>>,
    /// What the workers must be able to do.
    pub manifest: Arc<Manifest>,
    /// Where the executor reports what its workers do.
    pub reporter: Reporter,
    /// How workers that speak the protocol are supervised (the spec's settings).
    pub supervision: Supervision,
    /// Counters the executor keeps (protocol errors, restarts), shown in the bank's figures.
    pub stats: Arc<SupervisionStats>,
    /// The engine's runtime, to spawn the executor's tasks and timers on.
    pub runtime: Arc<dyn Runtime>,
    /// The engine's clock: every time an executor reports or sends comes from it.
    pub clock: Arc<dyn Clock>,
}

/// A bank about to be installed: what the spec says besides how its workers run.
pub(crate) struct NewBank {
    pub(crate) bank_id: Arc<str>,
    pub(crate) name: Option<String>,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) worker_ids: Vec<Arc<str>>,
    pub(crate) config: Value,
    pub(crate) capacity: Option<usize>,
    pub(crate) proficiency: f64,
    pub(crate) supervision: Supervision,
}

impl Engine {
    /// Checks that a bank can be added: intake open, workers, a free id.
    pub(crate) fn check_new_bank(&self, bank_id: &str, worker_count: usize) -> Result<()> {
        if !self.intake.is_accepting() {
            return Err(Error::ShuttingDown);
        }
        if worker_count == 0 {
            return Err(Error::InvalidBank {
                bank_id: bank_id.to_owned(),
                problems: vec!["it needs at least one worker".into()],
            });
        }
        if self.registry.has_bank(bank_id) {
            return Err(Error::BankExists { bank_id: bank_id.to_owned() });
        }
        Ok(())
    }

    /// The context an executor for `bank` is made from.
    pub(crate) fn bank_context(&self, bank: &NewBank) -> Result<BankContext> {
        Ok(BankContext {
            bank_id: bank.bank_id.clone(),
            worker_ids: bank.worker_ids.clone(),
            manifest: bank.manifest.clone(),
            reporter: self.reporter(),
            supervision: bank.supervision.clone(),
            stats: Arc::new(SupervisionStats::default()),
            runtime: self.runtime_or_err()?.clone(),
            clock: self.clock.clone(),
        })
    }

    /// Registers a started bank; gives the executor back if the id was taken meanwhile.
    pub(crate) fn install_bank(
        &self,
        bank: NewBank,
        ctx: &BankContext,
        executor: Box<dyn Executor>,
    ) -> std::result::Result<(), (Error, Box<dyn Executor>)> {
        let NewBank { bank_id, name, manifest, worker_ids, config, capacity, proficiency, .. } = bank;
        let capacity = capacity.unwrap_or(worker_ids.len() * manifest.concurrency_per_worker()).max(1);
        let added = self.registry.add_bank(&bank_id, executor, |index, executor| {
            let activity = self.tracer.initialize_bank(bank_id.clone(), worker_ids.clone());
            let mut runtime = BankRuntime::new(
                index,
                bank_id.clone(),
                name.unwrap_or_else(|| bank_id.to_string()),
                manifest.clone(),
                config,
                self.clock.now(),
                worker_ids.clone(),
                capacity,
                proficiency,
                activity,
                executor,
            );
            runtime.supervision_stats = Some(ctx.stats.clone());
            runtime
        });
        let bank = match added {
            Ok(b) => b,
            Err(executor) => return Err((Error::BankExists { bank_id: bank_id.to_string() }, executor)),
        };
        let manifest = self.registry.register_manifest((*manifest).clone());
        ctx.reporter.installed(bank.index);
        for task in manifest.action_ids() {
            let mut c = Capability::new(bank_id.clone(), task, capacity);
            c.proficiency = proficiency;
            self.registry.register_capability(c);
        }
        self.events.emit_with(|| EventKind::BankInitialized {
            bank_id: bank_id.clone(),
            manifest: Some(manifest.name.clone()),
            worker_count: worker_ids.len(),
        });
        for w in &worker_ids {
            self.events.emit_with(|| EventKind::WorkerCreated { worker_id: w.clone(), bank_id: bank_id.clone() });
        }
        self.wake.banks_changed();
        Ok(())
    }

    /// Test mode's bank: the reducer, on every registered task, not listed with the banks.
    pub(super) fn install_reducer_bank(&self) -> Result<()> {
        let Some(reducer) = self.reducer.clone() else { return Ok(()) };
        let bank_id: Arc<str> = Arc::from("test-mode");
        let worker_ids: Vec<Arc<str>> = vec![Arc::from("test-mode/reducer")];
        let reporter = self.reporter();
        let executor = ReducerExecutor::new(reducer, reporter.clone(), self.clock.clone());
        let manifest = Arc::new(Manifest::empty("test-mode"));
        let activity = self.tracer.initialize_bank(bank_id.clone(), worker_ids.clone());
        let capacity = self.config.claim_batch.max(1);
        let added = self.registry.add_bank(&bank_id, Box::new(executor), |index, executor| {
            let mut bank = BankRuntime::new(
                index,
                bank_id.clone(),
                "test mode".into(),
                manifest,
                Value::Null,
                self.clock.now(),
                worker_ids,
                capacity,
                1.0,
                activity,
                executor,
            );
            bank.listed = false;
            bank.catch_all = true;
            bank
        });
        let bank = added.map_err(|_| Error::BankExists { bank_id: bank_id.to_string() })?;
        reporter.installed(bank.index);
        self.wake.banks_changed();
        Ok(())
    }

    /// Pauses (`Inactive`), resumes (`Active`) or drains a bank.
    pub(crate) fn set_bank_status(&self, bank_id: &str, status: BankStatus) -> Result<()> {
        let bank =
            self.registry.find_bank(bank_id).ok_or_else(|| Error::BankNotFound { bank_id: bank_id.to_owned() })?;
        bank.set_status(status);
        self.events.emit_with(|| EventKind::BankStatusChanged { bank_id: bank.id.clone(), status });
        self.wake.banks_changed();
        Ok(())
    }

    pub(crate) fn workers(&self) -> Vec<atmo_core::WorkerInfo> {
        self.tracer.workers(None)
    }
}

/// The executor of a bank of in-process handlers: OS threads for synchronous handlers (feature
/// `native`), tasks of the runtime otherwise.
pub(crate) fn handler_executor(
    engine: &Engine,
    ctx: &BankContext,
    handlers: &atmo_core::Handlers,
    resources: atmo_core::Resources,
    background: bool,
) -> Result<Box<dyn Executor>> {
    let env = super::tasks::WorkerEnv {
        bank_id: ctx.bank_id.clone(),
        worker_ids: ctx.worker_ids.clone(),
        handlers: super::tasks::WorkerEnv::index_handlers(handlers),
        resources: Arc::new(resources),
        reporter: ctx.reporter.clone(),
        progress: Arc::new(ctx.reporter.clone()),
        events: engine.events.clone(),
        clock: ctx.clock.clone(),
        runtime: ctx.runtime.clone(),
    };
    #[cfg(feature = "native")]
    if handlers.action_ids().any(|a| handlers.get(a).is_some_and(atmo_core::Handler::is_sync)) {
        let executor = super::thread::ThreadExecutor::start(
            env,
            ctx.worker_ids.len(),
            ctx.supervision.cancel_grace,
            ctx.stats.clone(),
            background,
        )
        .map_err(|e| Error::BankStart { bank_id: ctx.bank_id.to_string(), source: Box::new(e) })?;
        return Ok(Box::new(executor));
    }
    Ok(Box::new(super::tasks::TaskExecutor::new(env)))
}
