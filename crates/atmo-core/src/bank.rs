//! Banks, tasks, capabilities and workers as the ledger records them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::id::RequestId;
use crate::time::Timestamp;

/// State of a bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BankStatus {
    /// Taking work.
    #[default]
    Active,
    /// Registered but not taking work.
    Inactive,
    /// Finishing what it holds, taking nothing new.
    Draining,
    /// Its workers keep failing (a crash loop); not taking work.
    Error,
    /// Shut down.
    Terminated,
}

/// A named group of workers sharing one manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bank {
    /// Unique id.
    pub bank_id: Arc<str>,
    /// Display name.
    pub name: String,
    /// State.
    #[serde(default)]
    pub status: BankStatus,
    /// The manifest's name, if the bank runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// The manifest's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_version: Option<String>,
    /// Number of workers.
    #[serde(default)]
    pub worker_count: usize,
    /// Requests the bank may hold at once (assigned plus processing).
    #[serde(default)]
    pub capacity: usize,
    /// Runtime configuration given at initialization.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub config: Value,
    /// Registration time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
}

impl Bank {
    /// A bank record with defaults (active, no workers).
    pub fn new(bank_id: impl Into<Arc<str>>, name: impl Into<String>) -> Self {
        Bank {
            bank_id: bank_id.into(),
            name: name.into(),
            status: BankStatus::Active,
            manifest: None,
            manifest_version: None,
            worker_count: 0,
            capacity: 0,
            config: Value::Null,
            created_at: None,
        }
    }
}

/// A registered kind of work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// The action id requests name.
    pub task_id: Arc<str>,
    /// Display name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The manifest declaring it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

impl Task {
    /// A task record.
    pub fn new(task_id: impl Into<Arc<str>>, name: impl Into<String>) -> Self {
        Task { task_id: task_id.into(), name: name.into(), description: None, manifest: None }
    }
}

/// A bank's ability to run a task, with its live figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    /// The bank.
    pub bank_id: Arc<str>,
    /// The task.
    pub task_id: Arc<str>,
    /// Requests of this task the bank may hold at once.
    pub max_concurrency: usize,
    /// Requests of any task the bank holds now.
    #[serde(default)]
    pub current_load: usize,
    /// 0–1: how well suited the bank is (declared).
    #[serde(default = "one")]
    pub proficiency: f64,
    /// 0–1: completed / finished, measured (1 before any result).
    #[serde(default = "one")]
    pub success_rate: f64,
    /// Mean processing time in milliseconds, measured.
    #[serde(default)]
    pub average_processing_time_ms: f64,
}

fn one() -> f64 {
    1.0
}

impl Capability {
    /// A capability with no measurements yet.
    pub fn new(bank_id: impl Into<Arc<str>>, task_id: impl Into<Arc<str>>, max_concurrency: usize) -> Self {
        Capability {
            bank_id: bank_id.into(),
            task_id: task_id.into(),
            max_concurrency,
            current_load: 0,
            proficiency: 1.0,
            success_rate: 1.0,
            average_processing_time_ms: 0.0,
        }
    }
}

/// What a worker is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    /// Waiting for work.
    #[default]
    Idle,
    /// Running at least one request.
    Busy,
    /// Failed (crashed, misbehaved); being replaced.
    Error,
    /// Stopped.
    Offline,
}

/// A worker's live state (`getWorkerStatus` in the seed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInfo {
    /// Unique id (`"<bank>/<index>"`).
    pub worker_id: Arc<str>,
    /// Its bank.
    pub bank_id: Arc<str>,
    /// State.
    pub status: WorkerStatus,
    /// Requests it holds now (queued at it or running).
    pub current_load: usize,
    /// A request it is running now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_request: Option<RequestId>,
    /// Requests handed to it.
    pub messages_sent: u64,
    /// Requests it finished (any outcome).
    pub messages_completed: u64,
    /// Requests that failed on it.
    pub errors: u64,
    /// Moving average of its processing time, milliseconds.
    pub average_response_time_ms: f64,
    /// Last time it started or finished something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<Timestamp>,
}
