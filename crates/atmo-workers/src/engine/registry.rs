//! The registry: tasks (with the policies that apply to them), manifests, bank records,
//! capabilities, and the banks that run workers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use atmo_core::manifest::ManifestRegistry;
use atmo_core::{Bank, Capability, Manifest, RetryPolicy, Task};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::bank::BankRuntime;
use super::executor::Executor;

/// A registered task and the policies that apply to it.
#[derive(Debug)]
pub(crate) struct TaskEntry {
    pub(crate) task: Task,
    pub(crate) manifest: Option<Arc<Manifest>>,
    pub(crate) action: Option<usize>,
    pub(crate) timeout: Duration,
    pub(crate) policy: Arc<RetryPolicy>,
    pub(crate) retryable: bool,
}

impl TaskEntry {
    /// A task without a manifest: any parameters, the default timeout, `policy`.
    fn plain(task: Task, policy: Arc<RetryPolicy>) -> Self {
        TaskEntry {
            task,
            manifest: None,
            action: None,
            timeout: atmo_core::manifest::DEFAULT_TIMEOUT,
            policy,
            retryable: true,
        }
    }

    fn from_manifest(manifest: &Arc<Manifest>, index: usize) -> Option<Self> {
        let action = manifest.actions.get(index)?;
        let mut task = Task::new(action.action_id.as_str(), action.action_id.clone());
        task.description = (!action.description.is_empty()).then(|| action.description.clone());
        task.manifest = Some(manifest.name.clone());
        Some(TaskEntry {
            task,
            manifest: Some(manifest.clone()),
            action: Some(index),
            timeout: manifest.timeout_for(action),
            policy: Arc::new(manifest.retry_for(action)),
            retryable: action.retryable,
        })
    }

    pub(crate) fn action(&self) -> Option<&atmo_core::ActionDefinition> {
        self.manifest.as_ref().zip(self.action).and_then(|(m, i)| m.actions.get(i))
    }
}

#[derive(Debug, Default)]
struct Records {
    tasks: FxHashMap<Arc<str>, Arc<TaskEntry>>,
    banks: BTreeMap<Arc<str>, Bank>,
    capabilities: BTreeMap<(Arc<str>, Arc<str>), Capability>,
    manifests: ManifestRegistry,
}

#[derive(Debug)]
pub(crate) struct Registry {
    records: RwLock<Records>,
    /// Banks with workers, by index (a job names its bank by index).
    running: RwLock<Vec<Arc<BankRuntime>>>,
    /// The retry policy of tasks registered without a manifest.
    plain_policy: Arc<RetryPolicy>,
}

impl Registry {
    pub(crate) fn new(plain_policy: RetryPolicy) -> Self {
        Registry { records: RwLock::default(), running: RwLock::default(), plain_policy: Arc::new(plain_policy) }
    }

    // ===== tasks and manifests =====

    pub(crate) fn register_task(&self, task: Task) {
        let entry = Arc::new(TaskEntry::plain(task, self.plain_policy.clone()));
        self.records.write().tasks.insert(entry.task.task_id.clone(), entry);
    }

    pub(crate) fn register_manifest(&self, manifest: Manifest) -> Arc<Manifest> {
        let mut reg = self.records.write();
        let m = reg.manifests.register(manifest);
        for i in 0..m.actions.len() {
            if let Some(entry) = TaskEntry::from_manifest(&m, i) {
                reg.tasks.insert(entry.task.task_id.clone(), Arc::new(entry));
            }
        }
        m
    }

    pub(crate) fn task(&self, task_id: &str) -> Option<Arc<TaskEntry>> {
        self.records.read().tasks.get(task_id).cloned()
    }

    /// Every registered task id, sorted.
    pub(crate) fn known_tasks(&self) -> Vec<String> {
        let mut v: Vec<String> = self.records.read().tasks.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// Every registered task id, unsorted (what a catch-all bank claims).
    pub(crate) fn task_ids(&self) -> Vec<Arc<str>> {
        self.records.read().tasks.keys().cloned().collect()
    }

    pub(crate) fn tasks(&self) -> Vec<Task> {
        let mut v: Vec<Task> = self.records.read().tasks.values().map(|e| e.task.clone()).collect();
        v.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        v
    }

    pub(crate) fn manifests(&self) -> Vec<Arc<Manifest>> {
        self.records.read().manifests.manifests().cloned().collect()
    }

    // ===== bank records and capabilities =====

    pub(crate) fn register_bank(&self, bank: Bank) {
        self.records.write().banks.insert(bank.bank_id.clone(), bank);
    }

    pub(crate) fn register_capability(&self, capability: Capability) {
        let key = (capability.bank_id.clone(), capability.task_id.clone());
        self.records.write().capabilities.insert(key, capability);
    }

    /// Banks: those with workers (live figures) and registered records.
    pub(crate) fn banks(&self) -> Vec<Bank> {
        let mut out: Vec<Bank> = self.running.read().iter().filter(|b| b.listed).map(|b| b.record()).collect();
        let reg = self.records.read();
        for (id, bank) in &reg.banks {
            if !out.iter().any(|b| &b.bank_id == id) {
                out.push(bank.clone());
            }
        }
        out
    }

    /// A bank's record, live if it runs workers.
    pub(crate) fn bank_record(&self, bank_id: &str) -> Option<Bank> {
        let live = self.running.read().iter().find(|r| &*r.id == bank_id).map(|r| r.record());
        live.or_else(|| self.records.read().banks.get(bank_id).cloned())
    }

    pub(crate) fn capability(&self, bank_id: &Arc<str>, task_id: &Arc<str>) -> Option<Capability> {
        self.records.read().capabilities.get(&(bank_id.clone(), task_id.clone())).cloned()
    }

    /// Capabilities, with live load and success figures for banks with workers.
    pub(crate) fn capabilities(&self) -> Vec<Capability> {
        let running = self.running_banks();
        let reg = self.records.read();
        reg.capabilities
            .values()
            .map(|c| {
                let mut c = c.clone();
                if let Some(b) = running.iter().find(|b| b.id == c.bank_id) {
                    c.current_load = b.load();
                    c.success_rate = b.success_rate();
                    c.average_processing_time_ms = b.average_processing_ms();
                }
                c
            })
            .collect()
    }

    /// Registered bank records that are active (metrics count them with the running banks).
    pub(crate) fn active_records(&self) -> usize {
        self.records.read().banks.values().filter(|b| b.status == atmo_core::BankStatus::Active).count()
    }

    // ===== banks with workers =====

    /// A snapshot of the banks with workers.
    pub(crate) fn running_banks(&self) -> Vec<Arc<BankRuntime>> {
        self.running.read().clone()
    }

    /// The listed banks with workers (not the engine's own, such as test mode's reducer).
    pub(crate) fn listed_banks(&self) -> Vec<Arc<BankRuntime>> {
        self.running.read().iter().filter(|b| b.listed).cloned().collect()
    }

    pub(crate) fn bank_at(&self, index: u32) -> Option<Arc<BankRuntime>> {
        self.running.read().get(index as usize).cloned()
    }

    pub(crate) fn find_bank(&self, bank_id: &str) -> Option<Arc<BankRuntime>> {
        self.running.read().iter().find(|b| &*b.id == bank_id).cloned()
    }

    pub(crate) fn has_bank(&self, bank_id: &str) -> bool {
        self.running.read().iter().any(|b| &*b.id == bank_id)
    }

    pub(crate) fn any_busy(&self) -> bool {
        self.running.read().iter().any(|b| b.load() > 0)
    }

    /// Adds a bank built by `make` from its index and `executor`, unless the id is taken (then
    /// the executor is given back).
    pub(crate) fn add_bank(
        &self,
        bank_id: &str,
        executor: Box<dyn Executor>,
        make: impl FnOnce(u32, Box<dyn Executor>) -> BankRuntime,
    ) -> Result<Arc<BankRuntime>, Box<dyn Executor>> {
        let mut banks = self.running.write();
        if banks.iter().any(|b| &*b.id == bank_id) {
            return Err(executor);
        }
        let Ok(index) = u32::try_from(banks.len()) else { return Err(executor) };
        let bank = Arc::new(make(index, executor));
        banks.push(bank.clone());
        Ok(bank)
    }
}
