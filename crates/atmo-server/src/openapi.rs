//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations.
//!
//! The engine's models serialize to JSON but do not implement `ToSchema` (the core crate stays
//! free of documentation dependencies), so this module describes them with small mirror types
//! that exist only for the document.
#![allow(dead_code)]

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes;

/// An error: `{code, message, details}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// Stable code (`VALIDATION_FAILED`, `NOT_FOUND`, `QUEUE_FULL`, ...).
    code: String,
    /// What went wrong and what would be right.
    message: String,
    /// Structured details: `errors` (every validation problem), `knownTasks`, `index` (batch), ...;
    /// `null` when there are none.
    #[schema(value_type = Object, nullable)]
    details: Value,
}

/// Where a request is in its lifecycle.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RequestStatus)]
pub(crate) enum StatusSchema {
    Pending,
    Scheduled,
    Assigned,
    Processing,
    Completed,
    Failed,
    TimedOut,
    Cancelled,
}

/// A submission's answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubmitResponse {
    /// The request's id.
    request_id: String,
    /// Its status now.
    status: StatusSchema,
    /// The result, when `?wait=` was given and the request finished in time.
    result: Option<RequestResultSchema>,
}

/// A batch submission's answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchResponse {
    /// The ids, in the order of the batch.
    request_ids: Vec<String>,
}

/// A request's id and status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatusResponse {
    /// The request's id.
    request_id: String,
    /// Its status.
    status: StatusSchema,
}

/// One status change.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = HistoryEntry)]
pub(crate) struct HistoryEntrySchema {
    /// Previous status (absent for the submission).
    from: Option<StatusSchema>,
    /// New status.
    to: StatusSchema,
    /// When (RFC 3339).
    #[schema(format = DateTime)]
    at: String,
    /// Why.
    reason: String,
    /// The bank involved.
    bank_id: Option<String>,
    /// The worker involved.
    worker_id: Option<String>,
    /// The attempt.
    attempt: u32,
}

/// A request with its history.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Request)]
pub(crate) struct RequestSchema {
    /// Unique id (UUID v7).
    request_id: String,
    /// The task.
    task_id: String,
    /// Validated parameters, defaults filled in.
    #[schema(value_type = Object)]
    parameters: Value,
    /// Status.
    status: StatusSchema,
    /// 1–10.
    priority: u8,
    /// Submitter.
    client_id: Option<String>,
    /// Labels.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// Idempotency key.
    idempotency_key: Option<String>,
    /// Attempts started.
    attempts: u32,
    /// Bank holding or last holding it.
    bank_id: Option<String>,
    /// Worker holding or last holding it.
    worker_id: Option<String>,
    /// Submission time.
    #[schema(format = DateTime)]
    created_at: String,
    /// Last change.
    #[schema(format = DateTime)]
    updated_at: String,
    /// When a scheduled request becomes pending.
    #[schema(format = DateTime)]
    run_at: Option<String>,
    /// When it finished.
    #[schema(format = DateTime)]
    completed_at: Option<String>,
    /// Per-attempt timeout in milliseconds.
    timeout: Option<u64>,
    /// The handler's result: any JSON value.
    #[schema(value_type = Option<Value>)]
    result: Option<Value>,
    /// One error per failed attempt: `{code, message, category, severity, retryable, attempt, at, details}`;
    /// absent when no attempt failed.
    #[schema(value_type = Vec<Object>, required = false)]
    errors: Vec<Value>,
    /// Every status change.
    history: Vec<HistoryEntrySchema>,
}

/// The outcome of a finished request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RequestResult)]
pub(crate) struct RequestResultSchema {
    /// The request.
    request_id: String,
    /// Its terminal status.
    status: StatusSchema,
    /// Completed?
    success: bool,
    /// The handler's result: any JSON value.
    #[schema(value_type = Option<Value>)]
    payload: Option<Value>,
    /// The error, when not completed.
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
    /// Processing time of the last attempt.
    processing_time_ms: Option<f64>,
    /// Attempts used.
    attempts: u32,
    /// When it finished.
    #[schema(format = DateTime)]
    completed_at: Option<String>,
}

/// One page of a query.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = QueryPage)]
pub(crate) struct QueryPageSchema {
    /// The requests.
    requests: Vec<RequestSchema>,
    /// How many match in all.
    total: usize,
    /// Pass as `cursor` for the next page; `null` on the last.
    #[schema(required)]
    next_cursor: Option<String>,
}

/// Everything about a request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RequestLifecycle)]
pub(crate) struct RequestLifecycleSchema {
    /// The request.
    request: RequestSchema,
    /// The task record.
    #[schema(value_type = Option<Object>)]
    task: Option<Value>,
    /// The bank that handled it.
    #[schema(value_type = Option<Object>)]
    bank: Option<Value>,
    /// The bank's capability for the task.
    #[schema(value_type = Option<Object>)]
    capability: Option<Value>,
    /// Where and when it ran.
    #[schema(value_type = Option<Object>)]
    assignment: Option<Value>,
    /// The result, once finished.
    result: Option<RequestResultSchema>,
}

/// Banks with live figures, registered tasks and manifests.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BanksResponse {
    /// Bank records, each with `performance`, `capabilities` and `workers` (ids).
    #[schema(value_type = Vec<Object>)]
    banks: Vec<Value>,
    /// Registered tasks (`taskId`, `name`, `description`, `manifest`).
    #[schema(value_type = Vec<Object>)]
    tasks: Vec<Value>,
    /// Registered manifests with their actions and parameter schemas.
    #[schema(value_type = Vec<Object>)]
    manifests: Vec<Value>,
}

/// Workers' live state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkersResponse {
    /// `workerId`, `bankId`, `status` (idle, busy, error, offline), `currentLoad`,
    /// `currentRequest`, `messagesSent`, `messagesCompleted`, `errors`,
    /// `averageResponseTimeMs`, `lastActivity`.
    #[schema(value_type = Vec<Object>)]
    workers: Vec<Value>,
}

/// One parameter of an action.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ParameterSpec)]
pub(crate) struct ParameterSchema {
    /// Its name.
    name: String,
    /// string, number, integer, boolean, object, array or any.
    #[serde(rename = "type")]
    param_type: String,
    /// Whether it must be given.
    required: bool,
    /// The value used when it is absent: any JSON value.
    #[schema(value_type = Option<Value>)]
    default: Option<Value>,
    /// What it means.
    description: Option<String>,
    /// The only values accepted: JSON values of the parameter's type.
    #[schema(value_type = Option<Vec<Value>>)]
    allowed_values: Option<Vec<Value>>,
    /// Smallest number accepted.
    minimum: Option<f64>,
    /// Largest number accepted.
    maximum: Option<f64>,
    /// Fewest characters (strings) or items (arrays).
    min_length: Option<usize>,
    /// Most characters (strings) or items (arrays).
    max_length: Option<usize>,
    /// The type of every array item.
    items: Option<String>,
}

/// A task: what it takes and how it runs.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TaskDescription)]
pub(crate) struct TaskSchema {
    /// The id to submit (`taskId`).
    task_id: String,
    /// A readable name.
    name: String,
    /// What it does.
    description: Option<String>,
    /// The manifest declaring it.
    manifest: Option<String>,
    /// The manifest's version.
    manifest_version: Option<String>,
    /// Banks that run it.
    banks: Vec<String>,
    /// Its parameters (empty for a task without a manifest, which takes anything).
    parameters: Vec<ParameterSchema>,
    /// Whether undeclared parameters are refused.
    strict: bool,
    /// Whether failures are retried.
    retryable: Option<bool>,
    /// Timeout of each attempt.
    timeout_ms: Option<u64>,
    /// The retry policy (`maxRetries`, `baseDelay`, `multiplier`, `maxDelay`, `jitter`, ...).
    #[schema(value_type = Option<Object>)]
    retry: Option<Value>,
    /// Expected duration.
    estimated_duration_ms: Option<u64>,
    /// What its result holds.
    response_type: Option<String>,
    /// Only in `GET /v1/tasks/{id}`: the limits of every submission (as in `GET /v1/tasks`).
    #[schema(value_type = Option<Object>)]
    limits: Option<Value>,
}

/// Every task, and the limits of every submission.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TasksResponse {
    /// The tasks, by id.
    tasks: Vec<TaskSchema>,
    /// `priority` (`min`, `max`, `default`), `maxParameters`, `maxListedProblems`,
    /// `maxBodyBytes`, `maxJsonDepth`, `maxIdempotencyKeyBytes`, `maxClientIdBytes`,
    /// `maxMetadataEntries`, `maxMetadataKeyBytes`.
    #[schema(value_type = Object)]
    limits: Value,
}

/// The system at a glance.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SystemMetrics)]
pub(crate) struct MetricsSchema {
    /// When measured.
    #[schema(format = DateTime)]
    generated_at: String,
    /// Requests held.
    total_requests: u64,
    /// By status name.
    #[schema(value_type = Object)]
    requests_by_status: Value,
    /// Completed / finished.
    success_rate: f64,
    /// (Failed + timed out) / finished.
    error_rate: f64,
    /// Mean processing time (ms).
    average_processing_time: f64,
    /// `count`, `meanMs`, `p50Ms`, `p95Ms`, `p99Ms`, `maxMs`.
    #[schema(value_type = Object)]
    processing_time: Value,
    /// Finished in the last 60 s.
    requests_per_minute: f64,
    /// Most frequent errors.
    #[schema(value_type = Vec<Object>)]
    top_errors: Vec<Value>,
    /// Banks taking work.
    active_banks: usize,
    /// Requests all banks may hold.
    total_worker_capacity: usize,
    /// Requests held now.
    current_load: usize,
    /// Pending plus scheduled.
    queue_depth: u64,
    /// Per bank.
    #[schema(value_type = Vec<Object>)]
    bank_performance: Vec<Value>,
}

/// Metric samples, oldest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryResponse {
    /// Sampling interval.
    interval_ms: u64,
    /// `at`, `submitted`, `completed`, `failed`, `cancelled` (per interval), `p50Ms`,
    /// `p99Ms`, `queueDepth`, `currentLoad`, `byStatus`.
    #[schema(value_type = Vec<Object>)]
    samples: Vec<Value>,
}

/// A cron schedule with its state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CronJob)]
pub(crate) struct CronJobSchema {
    /// Id.
    id: String,
    /// Name.
    name: String,
    /// Cron expression.
    schedule: String,
    /// Task of the runs.
    task_id: String,
    /// Parameters of the runs.
    #[schema(value_type = Object)]
    parameters: Value,
    /// Submission options of the runs.
    #[schema(value_type = Object)]
    options: Value,
    /// `skip`, `run-once` or `run-all`.
    missed_run_policy: String,
    /// Paused?
    paused: bool,
    /// Created.
    #[schema(format = DateTime)]
    created_at: String,
    /// Occurrences up to here were handled.
    #[schema(format = DateTime)]
    checked_through: String,
    /// Scheduled time of the last run.
    #[schema(format = DateTime)]
    last_run_at: Option<String>,
    /// Request of the last run.
    last_request_id: Option<String>,
    /// Why the last submission failed.
    last_error: Option<String>,
    /// Runs submitted.
    run_count: u64,
    /// Missed runs dropped by the policy.
    skipped_count: u64,
    /// Next occurrence.
    #[schema(format = DateTime)]
    next_run_at: Option<String>,
}

/// Every schedule.
#[derive(Serialize, ToSchema)]
pub(crate) struct CronListResponse {
    /// The schedules.
    schedules: Vec<CronJobSchema>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security =
            Some(vec![utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Atmo Workers", description = "Submit requests to banks of workers; query requests, results, lifecycles and metrics; subscribe to events."),
    paths(
        routes::requests::submit,
        routes::requests::submit_batch,
        routes::requests::query,
        routes::requests::get_request,
        routes::requests::delete_request,
        routes::requests::get_result,
        routes::requests::get_lifecycle,
        routes::requests::cancel,
        routes::tasks::list,
        routes::tasks::get,
        routes::system::banks,
        routes::system::workers,
        routes::system::metrics,
        routes::system::history,
        routes::events::events,
        routes::cron::list,
        routes::cron::create,
        routes::cron::get,
        routes::cron::remove,
        routes::cron::pause,
        routes::cron::resume,
        routes::system::prometheus,
        routes::system::openapi,
        routes::system::healthz,
        routes::system::readyz,
        routes::system::dashboard,
    ),
    components(schemas(ErrorBody, StatusSchema, RequestSchema, RequestResultSchema, QueryPageSchema)),
    modifiers(&BearerAuth),
    tags(
        (name = "requests", description = "Submit, query, wait for and cancel requests"),
        (name = "events", description = "Server-sent events"),
        (name = "tasks", description = "What can be submitted: parameters, defaults and limits"),
        (name = "cron", description = "Requests on a schedule"),
        (name = "system", description = "Banks, workers, metrics, probes, documents"),
    )
)]
struct ApiDoc;

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    serde_json::to_value(&doc).unwrap_or(Value::Null)
});

/// The OpenAPI 3 document of every route.
pub fn document() -> Value {
    DOCUMENT.clone()
}
