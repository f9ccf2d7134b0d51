//! `/v1/tasks`: what can be submitted, with each action's parameter schema, defaults and
//! limits, so that a client can discover a task's parameters without reading manifests.

use atmo_workers::manifest::{MAX_ISSUES, MAX_PARAMETERS};
use atmo_workers::{DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, Task};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{ApiError, echo};
use crate::openapi::{ErrorBody, TaskSchema, TasksResponse};
use crate::server::AppState;

/// One task as JSON: its record, and when a manifest declares it, the action's parameters
/// (name, type, required, default, allowed values, ranges, lengths), whether undeclared
/// parameters are refused, the effective timeout and retry policy, and the banks that run it.
fn describe(state: &AppState, task: &Task) -> Value {
    let m = state.manager();
    let manifests = m.manifests();
    // The most recently registered manifest declaring the action wins, as in the engine.
    let declared = manifests
        .iter()
        .rev()
        .find_map(|man| man.actions.iter().find(|a| a.action_id == *task.task_id).map(|a| (man.clone(), a.clone())));
    let banks: Vec<String> =
        m.capabilities().into_iter().filter(|c| *c.task_id == *task.task_id).map(|c| c.bank_id.to_string()).collect();
    let mut v = json!({
        "taskId": task.task_id,
        "name": task.name,
        "description": task.description,
        "manifest": task.manifest,
        "banks": banks,
    });
    match declared {
        Some((man, action)) => {
            v["manifestVersion"] = json!(man.version);
            if task.description.as_deref().is_none_or(str::is_empty) && !action.description.is_empty() {
                v["description"] = json!(action.description);
            }
            v["parameters"] = json!(action.parameters);
            v["strict"] = json!(action.strict);
            v["retryable"] = json!(action.retryable);
            v["timeoutMs"] = json!(u64::try_from(man.timeout_for(&action).as_millis()).unwrap_or(u64::MAX));
            v["retry"] = json!(man.retry_for(&action));
            if let Some(d) = action.estimated_duration {
                v["estimatedDurationMs"] = json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            }
            if let Some(r) = &action.response_type {
                v["responseType"] = json!(r);
            }
        }
        // A task registered without a manifest takes any parameters.
        None => {
            v["parameters"] = json!([]);
            v["strict"] = json!(false);
        }
    }
    v
}

/// The limits every submission is held to, whatever its task.
fn limits(state: &AppState) -> Value {
    use atmo_workers::request::{
        MAX_CLIENT_ID_BYTES, MAX_IDEMPOTENCY_KEY_BYTES, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_BYTES,
    };
    json!({
        "priority": {"min": MIN_PRIORITY, "max": MAX_PRIORITY, "default": DEFAULT_PRIORITY},
        "maxParameters": MAX_PARAMETERS,
        "maxListedProblems": MAX_ISSUES,
        "maxBodyBytes": state.config().max_body_bytes,
        "maxJsonDepth": state.config().max_json_depth,
        "maxIdempotencyKeyBytes": MAX_IDEMPOTENCY_KEY_BYTES,
        "maxClientIdBytes": MAX_CLIENT_ID_BYTES,
        "maxMetadataEntries": MAX_METADATA_ENTRIES,
        "maxMetadataKeyBytes": MAX_METADATA_KEY_BYTES,
    })
}

/// Every registered task with its parameter schema, and the limits of every submission.
#[utoipa::path(
    get, path = "/v1/tasks", tag = "tasks",
    responses(
        (status = 200, description = "Tasks and limits", body = TasksResponse),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<AppState>) -> Response {
    let tasks: Vec<Value> = state.manager().tasks().iter().map(|t| describe(&state, t)).collect();
    Json(json!({"tasks": tasks, "limits": limits(&state)})).into_response()
}

/// One task with its parameter schema and the limits of every submission.
#[utoipa::path(
    get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id (a manifest action's id), e.g. HASH")),
    responses(
        (status = 200, description = "The task", body = TaskSchema),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such task (`details.knownTasks`)", body = ErrorBody),
    )
)]
pub(crate) async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let tasks = state.manager().tasks();
    let Some(task) = tasks.iter().find(|t| *t.task_id == *id) else {
        let known: Vec<String> = tasks.iter().map(|t| t.task_id.to_string()).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "TASK_NOT_FOUND",
            format!("no task `{}`; known tasks: {}", echo(&id), known.join(", ")),
        )
        .with_details(json!({"taskId": echo(&id), "knownTasks": known})));
    };
    let mut v = describe(&state, task);
    v["limits"] = limits(&state);
    Ok(Json(v).into_response())
}
