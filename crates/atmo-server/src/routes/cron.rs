//! `/v1/cron`: schedules that submit requests.

use std::time::Duration;

use atmo_workers::{RetryPolicy, SubmitOptions};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::cron::{CronError, CronSpec, MissedRunPolicy};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::openapi::{CronJobSchema, CronListResponse, ErrorBody};
use crate::server::AppState;

/// A schedule to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CronBody {
    /// A unique name.
    name: String,
    /// Cron expression: `min hour day month weekday`, or six fields with seconds first (UTC).
    schedule: String,
    /// The task every run submits.
    task_id: String,
    /// Its parameters.
    #[serde(default)]
    #[schema(value_type = Object)]
    parameters: Value,
    /// Priority of the runs (1–10).
    #[schema(value_type = Option<u8>)]
    priority: Option<i64>,
    /// Client id of the runs.
    client_id: Option<String>,
    /// Metadata of the runs (`cronId`, `cronName`, `cronScheduledAt` are added).
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
    /// Timeout of each attempt in milliseconds.
    timeout_ms: Option<f64>,
    /// Retries after the first attempt.
    #[schema(value_type = Option<u32>)]
    max_retries: Option<u32>,
    /// `skip` (default), `run-once` or `run-all` (bounded).
    #[schema(value_type = Option<String>)]
    missed_run_policy: Option<MissedRunPolicy>,
}

fn cron_error(e: CronError) -> ApiError {
    let message = e.to_string();
    match e {
        CronError::InvalidSchedule { schedule, .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, "INVALID_SCHEDULE", message)
                .with_details(json!({"schedule": schedule}))
        }
        CronError::UnknownTask { task_id, known } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "UNKNOWN_TASK", message)
                .with_details(json!({"taskId": crate::error::echo(&task_id), "knownTasks": known}))
        }
        CronError::NotFound(id) => {
            ApiError::new(StatusCode::NOT_FOUND, "CRON_NOT_FOUND", message).with_details(json!({"id": id}))
        }
        CronError::Duplicate { id, .. } => {
            ApiError::new(StatusCode::CONFLICT, "CONFLICT", message).with_details(json!({"id": id}))
        }
        CronError::Invalid(_) => ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_FAILED", message),
        _ => ApiError::internal(message),
    }
}

fn to_spec(b: CronBody) -> Result<CronSpec, ApiError> {
    let mut problems = Vec::new();
    let priority = match b.priority {
        Some(p) if (1..=10).contains(&p) => Some(p as u8),
        Some(p) => {
            problems
                .push(json!({"field": "priority", "message": format!("priority must be between 1 and 10, got {p}")}));
            None
        }
        None => None,
    };
    let timeout = match b.timeout_ms {
        Some(ms) if ms.is_finite() && ms > 0.0 => Some(Duration::from_secs_f64(ms.min(1e15) / 1000.0)),
        Some(ms) => {
            problems.push(
                json!({"field": "timeoutMs", "message": format!("timeoutMs must be a positive number, got {ms}")}),
            );
            None
        }
        None => None,
    };
    if !problems.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_FAILED", "invalid cron schedule options")
            .with_details(json!({"errors": problems})));
    }
    let options = SubmitOptions {
        priority,
        client_id: b.client_id,
        metadata: b.metadata,
        timeout,
        retry: b.max_retries.map(|n| RetryPolicy { max_retries: n, ..RetryPolicy::default() }),
        ..SubmitOptions::default()
    };
    Ok(CronSpec {
        name: b.name,
        schedule: b.schedule,
        task_id: b.task_id,
        parameters: b.parameters,
        options,
        missed_run_policy: b.missed_run_policy.unwrap_or_default(),
    })
}

/// Every schedule.
#[utoipa::path(
    get, path = "/v1/cron", tag = "cron",
    responses(
        (status = 200, description = "Schedules", body = CronListResponse),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<AppState>) -> Response {
    Json(json!({"schedules": state.0.cron.list()})).into_response()
}

/// Create a schedule.
#[utoipa::path(
    post, path = "/v1/cron", tag = "cron",
    request_body = CronBody,
    responses(
        (status = 201, description = "Created", body = CronJobSchema),
        (status = 400, description = "Invalid expression or options", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "A `Host` that does not name the service (`HOST_NOT_ALLOWED`), or a write from another site's page (`ORIGIN_NOT_ALLOWED`)", body = ErrorBody),
        (status = 415, description = "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`)", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "Unknown task", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CronBody>,
) -> Result<Response, ApiError> {
    let job = state.0.cron.add(to_spec(body)?).map_err(cron_error)?;
    Ok((StatusCode::CREATED, Json(job)).into_response())
}

/// One schedule.
#[utoipa::path(
    get, path = "/v1/cron/{id}", tag = "cron",
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The schedule", body = CronJobSchema),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub(crate) async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let job = state.0.cron.get(&id).ok_or_else(|| cron_error(CronError::NotFound(id)))?;
    Ok(Json(job).into_response())
}

/// Pause a schedule.
#[utoipa::path(
    post, path = "/v1/cron/{id}/pause", tag = "cron",
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "Paused", body = CronJobSchema),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub(crate) async fn pause(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(state.0.cron.pause(&id).map_err(cron_error)?).into_response())
}

/// Resume a schedule (occurrences while paused are not run).
#[utoipa::path(
    post, path = "/v1/cron/{id}/resume", tag = "cron",
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "Resumed", body = CronJobSchema),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub(crate) async fn resume(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(state.0.cron.resume(&id).map_err(cron_error)?).into_response())
}

/// Delete a schedule (its past runs stay).
#[utoipa::path(
    delete, path = "/v1/cron/{id}", tag = "cron",
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "Deleted", body = CronJobSchema),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub(crate) async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(state.0.cron.remove(&id).map_err(cron_error)?).into_response())
}
