//! The worker protocol, version 1: the messages an engine and an out-of-process worker exchange.
//!
//! Process workers speak it as one JSON object per line on stdin (engine → worker) and stdout
//! (worker → engine); web workers as `postMessage` objects. `docs/protocol.md` is the reference;
//! these types are its single implementation, shared by the process executor, the Rust SDK
//! (`WorkerResponder`) and the browser build.
//!
//! ```
//! use atmo_core::protocol::{WorkerMessage, TaskOutcome};
//! let line = r#"{"type":"task-complete","requestId":"0190a4a1-0000-7000-8000-000000000001","success":true,"result":{"sum":3},"executionTime":0.4}"#;
//! let WorkerMessage::TaskComplete(done) = serde_json::from_str(line).unwrap() else { panic!() };
//! assert!(matches!(done.outcome().unwrap(), TaskOutcome::Success(v) if v["sum"] == 3));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::failure::{ErrorCategory, TaskError};
use crate::id::RequestId;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest line either side accepts by default (16 MiB); longer lines are protocol errors.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Engine → worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EngineMessage {
    /// Run one attempt of a request.
    ExecuteTask(ExecuteTask),
    /// Stop working on a request (it timed out or was cancelled); the reply, if any, is ignored.
    CancelTask(CancelTask),
    /// A liveness probe; the worker answers with its own `heartbeat`.
    Heartbeat(Heartbeat),
    /// Finish what is running and exit within `graceMs`.
    Shutdown(Shutdown),
}

/// Worker → engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WorkerMessage {
    /// The first message: who the worker is and what it can do.
    WorkerReady(WorkerReady),
    /// An attempt ended.
    TaskComplete(TaskComplete),
    /// A running attempt's progress.
    TaskProgress(TaskProgress),
    /// An answer to the engine's heartbeat, or a spontaneous sign of life.
    Heartbeat(Heartbeat),
}

/// `execute-task`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteTask {
    /// Correlates the reply.
    pub request_id: RequestId,
    /// The action to run.
    pub task_id: String,
    /// Validated parameters (defaults filled in).
    pub parameters: Value,
    /// The attempt, from 1.
    pub attempt: u32,
    /// When the engine sent it, in milliseconds since the Unix epoch (as `Date.now()`).
    pub timestamp: i64,
    /// The attempt's timeout in milliseconds; the engine enforces it.
    pub timeout_ms: u64,
    /// When the attempt times out, in milliseconds since the Unix epoch.
    pub deadline: i64,
}

/// `cancel-task`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelTask {
    /// The request to stop.
    pub request_id: RequestId,
    /// Why: `timeout`, `cancelled` or `shutdown`.
    pub reason: String,
}

/// `heartbeat`, either way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// Milliseconds since the Unix epoch, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// `shutdown`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shutdown {
    /// How long the worker has before it is killed.
    pub grace_ms: u64,
}

/// `worker-ready`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerReady {
    /// Must equal [`PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// The manifest the worker implements.
    pub manifest: ManifestId,
    /// The actions it can run.
    pub actions: Vec<String>,
    /// How many tasks it runs at once (default: the manifest's `maxConcurrentTasks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_tasks: Option<usize>,
    /// Its process id, for the logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// A manifest's name and version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestId {
    /// Name.
    pub name: String,
    /// Version (empty when the worker does not say).
    #[serde(default)]
    pub version: String,
}

/// `task-complete`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskComplete {
    /// The request it answers.
    pub request_id: RequestId,
    /// Whether the handler succeeded.
    pub success: bool,
    /// The result, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, when it failed: an [`ErrorObject`], or a plain string as the original
    /// package's workers send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
    /// How long the handler ran, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_time: Option<f64>,
}

/// What a `task-complete` says happened.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskOutcome {
    /// The result.
    Success(Value),
    /// The error.
    Failure(TaskError),
}

impl TaskComplete {
    /// A success.
    pub fn success(request_id: RequestId, result: Value, execution_ms: f64) -> Self {
        TaskComplete {
            request_id,
            success: true,
            result: Some(result),
            error: None,
            execution_time: Some(execution_ms),
        }
    }

    /// A failure.
    pub fn failure(request_id: RequestId, error: &TaskError, execution_ms: f64) -> Self {
        TaskComplete {
            request_id,
            success: false,
            result: None,
            error: Some(WireError::Object(ErrorObject::from(error))),
            execution_time: Some(execution_ms),
        }
    }

    /// The outcome, checking that the message is coherent.
    ///
    /// # Errors
    /// A message naming what is wrong: a failure without an error.
    pub fn outcome(self) -> Result<TaskOutcome, String> {
        if self.success {
            // A handler that returns nothing (`undefined` in JavaScript) produced `null`.
            Ok(TaskOutcome::Success(self.result.unwrap_or(Value::Null)))
        } else {
            match self.error {
                Some(e) => Ok(TaskOutcome::Failure(e.into_task_error())),
                None => Err("`success` is false but there is no `error`".into()),
            }
        }
    }
}

/// An error as it travels: an object, or the original package's plain message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WireError {
    /// `{code, message, category, retryable, details}`.
    Object(ErrorObject),
    /// A message only (category `processing`, retryable by the policy).
    Message(String),
}

impl WireError {
    /// The engine's error.
    pub fn into_task_error(self) -> TaskError {
        match self {
            WireError::Object(o) => o.into(),
            WireError::Message(m) => TaskError::new("WORKER_ERROR", m),
        }
    }
}

/// The error object of `task-complete`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorObject {
    /// A stable, machine-readable code.
    #[serde(default = "default_code")]
    pub code: String,
    /// What went wrong.
    #[serde(default)]
    pub message: String,
    /// `validation`, `processing`, `timeout`, `system`, `network` or `cancelled`.
    #[serde(default = "default_category")]
    pub category: ErrorCategory,
    /// Overrides the retry policy's choice for the category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Ask for the next attempt no sooner than this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Anything else worth recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

fn default_code() -> String {
    "WORKER_ERROR".into()
}

fn default_category() -> ErrorCategory {
    ErrorCategory::Processing
}

impl From<&TaskError> for ErrorObject {
    fn from(e: &TaskError) -> Self {
        ErrorObject {
            code: e.code.clone(),
            message: e.message.clone(),
            category: e.category,
            retryable: e.retryable,
            retry_after_ms: e.retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            details: e.details.clone(),
        }
    }
}

impl From<ErrorObject> for TaskError {
    fn from(o: ErrorObject) -> Self {
        TaskError {
            code: o.code,
            message: o.message,
            category: o.category,
            retryable: o.retryable,
            retry_after: o.retry_after_ms.map(std::time::Duration::from_millis),
            details: o.details,
        }
    }
}

/// `task-progress`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskProgress {
    /// The running request.
    pub request_id: RequestId,
    /// 0–100.
    pub progress: f32,
    /// What it is doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn id() -> RequestId {
        RequestId::from_u128(0x0190_a4a1_0000_7000_8000_0000_0000_0001)
    }

    #[test]
    fn engine_messages_have_the_documented_shape() {
        let m = EngineMessage::ExecuteTask(ExecuteTask {
            request_id: id(),
            task_id: "ADD".into(),
            parameters: json!({"a": 1}),
            attempt: 2,
            timestamp: 1_700_000_000_000,
            timeout_ms: 30_000,
            deadline: 1_700_000_030_000,
        });
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], "execute-task");
        assert_eq!(v["requestId"], id().to_string());
        assert_eq!(v["taskId"], "ADD");
        assert_eq!(v["timeoutMs"], 30_000);
        let back: EngineMessage = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
        let c =
            serde_json::to_value(EngineMessage::CancelTask(CancelTask { request_id: id(), reason: "timeout".into() }))
                .unwrap();
        assert_eq!(c, json!({"type": "cancel-task", "requestId": id().to_string(), "reason": "timeout"}));
        let s = serde_json::to_value(EngineMessage::Shutdown(Shutdown { grace_ms: 5000 })).unwrap();
        assert_eq!(s, json!({"type": "shutdown", "graceMs": 5000}));
    }

    #[test]
    fn worker_ready_parses_with_optional_fields_missing() {
        let m: WorkerMessage = serde_json::from_str(
            r#"{"type":"worker-ready","protocolVersion":1,"manifest":{"name":"math"},"actions":["ADD"]}"#,
        )
        .unwrap();
        let WorkerMessage::WorkerReady(r) = m else { panic!("not ready: {m:?}") };
        assert_eq!(r.manifest, ManifestId { name: "math".into(), version: String::new() });
        assert_eq!(r.max_concurrent_tasks, None);
    }

    #[test]
    fn failures_carry_the_error_object_or_a_plain_message() {
        let line = format!(
            r#"{{"type":"task-complete","requestId":"{}","success":false,"error":{{"code":"BAD","message":"no","category":"validation","retryable":false}}}}"#,
            id()
        );
        let WorkerMessage::TaskComplete(c) = serde_json::from_str(&line).unwrap() else { panic!() };
        let TaskOutcome::Failure(e) = c.outcome().unwrap() else { panic!() };
        assert_eq!((e.code.as_str(), e.category, e.retryable), ("BAD", ErrorCategory::Validation, Some(false)));

        // The original package's workers send `error: error.message`.
        let line = format!(r#"{{"type":"task-complete","requestId":"{}","success":false,"error":"boom"}}"#, id());
        let WorkerMessage::TaskComplete(c) = serde_json::from_str(&line).unwrap() else { panic!() };
        let TaskOutcome::Failure(e) = c.outcome().unwrap() else { panic!() };
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.category),
            ("WORKER_ERROR", "boom", ErrorCategory::Processing)
        );

        let line = format!(r#"{{"type":"task-complete","requestId":"{}","success":false}}"#, id());
        let WorkerMessage::TaskComplete(c) = serde_json::from_str(&line).unwrap() else { panic!() };
        assert!(c.outcome().unwrap_err().contains("no `error`"));
    }

    #[test]
    fn a_task_error_round_trips_through_the_wire() {
        let e = TaskError::retryable("UPSTREAM", "try later")
            .retry_after(std::time::Duration::from_millis(250))
            .with_details(json!({"host": "x"}));
        let c = TaskComplete::failure(id(), &e, 1.5);
        let line = serde_json::to_string(&WorkerMessage::TaskComplete(c)).unwrap();
        let WorkerMessage::TaskComplete(c) = serde_json::from_str(&line).unwrap() else { panic!() };
        assert_eq!(c.outcome().unwrap(), TaskOutcome::Failure(e));
    }

    #[test]
    fn unknown_message_types_are_errors() {
        assert!(serde_json::from_str::<WorkerMessage>(r#"{"type":"launch-missiles"}"#).is_err());
        assert!(serde_json::from_str::<WorkerMessage>(r#"{"requestId":"x"}"#).is_err());
    }
}
