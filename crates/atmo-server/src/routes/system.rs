//! Banks, workers, metrics (JSON, history, Prometheus), probes, the OpenAPI document and the
//! dashboard.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::openapi::{BanksResponse, ErrorBody, HistoryResponse, MetricsSchema, WorkersResponse};
use crate::routes::requests::engine_error;
use crate::server::AppState;

/// Banks (records, live performance, capabilities), registered tasks and manifests.
#[utoipa::path(
    get, path = "/v1/banks", tag = "system",
    responses(
        (status = 200, description = "Banks, tasks and manifests", body = BanksResponse),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn banks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let m = state.manager();
    let metrics = m.metrics().await.map_err(|e| engine_error(&state, &e))?;
    let capabilities = m.capabilities();
    let workers = m.workers();
    let banks: Vec<Value> = m
        .banks()
        .into_iter()
        .map(|b| {
            let performance = metrics.bank_performance.iter().find(|p| p.bank_id == b.bank_id);
            let caps: Vec<_> = capabilities.iter().filter(|c| c.bank_id == b.bank_id).collect();
            let worker_ids: Vec<_> = workers.iter().filter(|w| w.bank_id == b.bank_id).map(|w| &w.worker_id).collect();
            let mut v = json!(b);
            v["performance"] = json!(performance);
            v["capabilities"] = json!(caps);
            v["workers"] = json!(worker_ids);
            v
        })
        .collect();
    Ok(Json(json!({"banks": banks, "tasks": m.tasks(), "manifests": m.manifests()})).into_response())
}

/// Every worker's live state.
#[utoipa::path(
    get, path = "/v1/workers", tag = "system",
    responses(
        (status = 200, description = "Workers", body = WorkersResponse),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn workers(State(state): State<AppState>) -> Response {
    Json(json!({"workers": workers_with_tasks(&state).await})).into_response()
}

/// Workers as JSON, each busy one with the task of the request it runs (`currentTaskId`),
/// which the engine's `WorkerInfo` does not carry.
async fn workers_with_tasks(state: &AppState) -> Vec<Value> {
    let m = state.manager();
    let workers = m.workers();
    let tasks = futures::future::join_all(workers.iter().map(|w| async move {
        let id = w.current_request?;
        m.get_request(id).await.ok().map(|r| r.task_id)
    }))
    .await;
    workers
        .iter()
        .zip(tasks)
        .map(|(w, task)| {
            let mut v = json!(w);
            if let Some(t) = task {
                v["currentTaskId"] = json!(t);
            }
            v
        })
        .collect()
}

/// The system at a glance.
#[utoipa::path(
    get, path = "/v1/metrics", tag = "system",
    responses(
        (status = 200, description = "System metrics", body = MetricsSchema),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let m = state.manager().metrics().await.map_err(|e| engine_error(&state, &e))?;
    Ok(Json(m).into_response())
}

/// Throughput, latency and counts by status, one sample per interval, oldest first.
#[utoipa::path(
    get, path = "/v1/metrics/history", tag = "system",
    responses(
        (status = 200, description = "Samples", body = HistoryResponse),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn history(State(state): State<AppState>) -> Response {
    let monitor = &state.0.monitor;
    let interval_ms = u64::try_from(monitor.interval.as_millis()).unwrap_or(u64::MAX);
    Json(json!({"intervalMs": interval_ms, "samples": monitor.history()})).into_response()
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(
    get, path = "/metrics", tag = "system",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn prometheus(State(state): State<AppState>) -> Result<Response, ApiError> {
    let m = state.manager();
    let metrics = m.metrics().await.map_err(|e| engine_error(&state, &e))?;
    let text = crate::prometheus::render(&metrics, &m.workers(), &state.0.monitor.totals, state.is_ready());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "system",
    responses(
        (status = 200, description = "The OpenAPI 3 document", body = Object),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, description = "Alive", body = Object))
)]
pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Readiness: the engine takes work (503 once shutdown began, or when the store stopped
/// taking writes).
#[utoipa::path(
    get, path = "/readyz", tag = "system", security(()),
    responses(
        (status = 200, description = "Ready", body = Object),
        (status = 503, description = "Shutting down (`SHUTTING_DOWN`), or the store stopped taking writes \
            (`STORE_FAILED`, e.g. after a failed fsync; restart the service to reopen it)", body = ErrorBody),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_shutting_down() {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "SHUTTING_DOWN", "the server is shutting down")
            .with_retry_after(state.config().retry_after_secs)
            .into_response();
    }
    if let Err(e) = state.store_health() {
        // No Retry-After: this does not pass by itself.
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "STORE_FAILED", crate::error::error_chain(&e))
            .into_response();
    }
    Json(json!({"status": "ready"})).into_response()
}

/// The dashboard: one self-contained page.
#[utoipa::path(
    get, path = "/", tag = "system", security(()),
    responses((status = 200, description = "The dashboard", content_type = "text/html", body = String))
)]
pub(crate) async fn dashboard() -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Html(crate::DASHBOARD_HTML)).into_response()
}
