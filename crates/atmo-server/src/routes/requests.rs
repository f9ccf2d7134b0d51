//! `/v1/requests`: submit (one or a batch), query, read, wait for the result, cancel.

use std::time::Duration;

use atmo_workers::{
    Error, Manifest, PriorityRange, RequestId, RequestQuery, RequestStatus, RetryPolicy, SortField, SortOrder,
    SubmitOptions, SubmitRequest, Timestamp,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use atmo_workers::manifest::MAX_ISSUES;

use crate::error::{ApiError, echo, parameter_issues};
use crate::extract::{JsonBody, QueryPairs, request_id, wait_param};
use crate::openapi::{
    BatchResponse, ErrorBody, QueryPageSchema, RequestLifecycleSchema, RequestResultSchema, RequestSchema,
    StatusResponse, SubmitResponse,
};
use crate::server::AppState;

/// One request to submit.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SubmitBody {
    /// The task (a manifest action's id).
    task_id: String,
    /// Its parameters, validated against the action's schema.
    #[serde(default)]
    #[schema(value_type = Object)]
    parameters: Value,
    /// 1–10, 10 runs first (default 5).
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 10)]
    priority: Option<i64>,
    /// Who submits.
    client_id: Option<String>,
    /// Labels, queryable by equality (`?metadata.key=value`).
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
    /// Makes the submission idempotent (the `Idempotency-Key` header does the same).
    idempotency_key: Option<String>,
    /// Run no sooner than this (RFC 3339, or milliseconds since the epoch).
    #[schema(value_type = Option<String>, format = DateTime)]
    run_at: Option<Value>,
    /// Run no sooner than this many milliseconds from now.
    delay_ms: Option<f64>,
    /// Timeout of each attempt in milliseconds.
    timeout_ms: Option<f64>,
    /// Retries after the first attempt (the rest of the action's retry policy is kept).
    #[schema(value_type = Option<u32>)]
    max_retries: Option<i64>,
    /// A whole retry policy (`maxRetries`, `baseDelay`, `multiplier`, `maxDelay`, `jitter`,
    /// `retryableCategories`; delays in milliseconds).
    #[schema(value_type = Option<Object>)]
    retry: Option<Value>,
}

/// A batch to submit, all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BatchBody {
    /// The requests.
    requests: Vec<SubmitBody>,
}

/// What a time in a body or a query looks like.
const TIME_HINT: &str = "an RFC 3339 time (2026-01-02T03:04:05Z) or milliseconds since the epoch";

/// One problem with a submission, in `details.errors`.
fn issue(field: &str, message: impl Into<String>) -> Value {
    json!({"field": field, "message": message.into()})
}

fn action_of(manifests: &[std::sync::Arc<Manifest>], task_id: &str) -> Option<(std::sync::Arc<Manifest>, usize)> {
    // The most recently registered manifest declaring the action wins, as in the engine.
    manifests.iter().rev().find_map(|m| m.actions.iter().position(|a| a.action_id == task_id).map(|i| (m.clone(), i)))
}

fn millis(field: &str, v: Option<f64>, positive: bool, issues: &mut Vec<Value>) -> Option<Duration> {
    let ms = v?;
    if !ms.is_finite() || ms < 0.0 || (positive && ms == 0.0) {
        let bound = if positive { "a positive" } else { "a non-negative" };
        issues.push(issue(field, format!("`{field}` must be {bound} number of milliseconds, got {ms}")));
        return None;
    }
    Some(Duration::from_secs_f64(ms.min(1e15) / 1000.0))
}

/// Turns a body into what the engine takes, listing every problem of its options (and then
/// of its parameters too, so one answer lists them all).
fn to_submit(state: &AppState, body: SubmitBody, header_key: Option<&str>) -> Result<SubmitRequest, Vec<Value>> {
    let mut issues = Vec::new();
    let SubmitBody {
        task_id,
        parameters,
        priority,
        client_id,
        metadata,
        idempotency_key,
        run_at,
        delay_ms,
        timeout_ms,
        max_retries,
        retry,
    } = body;
    let priority = match priority {
        Some(p) if (1..=10).contains(&p) => Some(p as u8),
        Some(p) => {
            issues.push(issue("priority", format!("priority must be between 1 and 10 (10 runs first), got {p}")));
            None
        }
        None => None,
    };
    let run_at = match run_at {
        None | Some(Value::Null) => None,
        Some(v) => serde_json::from_value::<Timestamp>(v.clone())
            .map_err(|_| issues.push(issue("runAt", format!("runAt must be {TIME_HINT}, got {v}"))))
            .ok(),
    };
    let delay = millis("delayMs", delay_ms, false, &mut issues);
    let timeout = millis("timeoutMs", timeout_ms, true, &mut issues);
    let idempotency_key = match (idempotency_key, header_key) {
        (Some(b), Some(h)) if b != h => {
            issues.push(issue(
                "idempotencyKey",
                format!("the body's idempotencyKey `{b}` differs from the Idempotency-Key header `{h}`"),
            ));
            None
        }
        (Some(b), _) => Some(b),
        (None, h) => h.map(str::to_owned),
    };
    // The action's schema and policy are looked up only when needed, not on every submission.
    let action = || action_of(&state.manager().manifests(), &task_id);
    let mut policy = match retry {
        None | Some(Value::Null) => None,
        Some(v) => match serde_json::from_value::<RetryPolicy>(v) {
            Ok(p) => Some(p),
            Err(e) => {
                issues.push(issue("retry", format!("invalid retry policy: {e}")));
                None
            }
        },
    };
    match max_retries {
        Some(n) if (0..=1000).contains(&n) => {
            let base = policy.take().unwrap_or_else(|| match action() {
                Some((m, i)) => m.retry_for(&m.actions[i]),
                None => RetryPolicy::default(),
            });
            policy = Some(RetryPolicy { max_retries: n as u32, ..base });
        }
        Some(n) => issues.push(issue("maxRetries", format!("maxRetries must be between 0 and 1000, got {n}"))),
        None => {}
    }
    let options =
        SubmitOptions { priority, client_id, metadata, idempotency_key, run_at, delay, timeout, retry: policy };
    // Lengths and characters of the free-text options, as the engine checks them.
    if let Err(errors) = options.check() {
        issues.extend(errors.issues().iter().map(|i| issue(&i.parameter, i.message.clone())));
    }
    if !issues.is_empty() {
        match action() {
            Some((m, i)) => {
                if issues.len() < MAX_ISSUES
                    && let Err(errors) = m.actions[i].validate(parameters)
                {
                    issues.extend(parameter_issues(&errors));
                }
            }
            None if !state.manager().tasks().iter().any(|t| *t.task_id == *task_id) => {
                let known: Vec<String> = state.manager().tasks().iter().map(|t| t.task_id.to_string()).collect();
                issues.push(json!({
                    "field": "taskId",
                    "message": format!("unknown task `{}`; known tasks: {}", echo(&task_id), known.join(", ")),
                    "knownTasks": known,
                }));
            }
            None => {}
        }
        return Err(issues);
    }
    Ok(SubmitRequest { task_id, parameters, options })
}

fn validation_error(mut issues: Vec<Value>, index: Option<usize>) -> ApiError {
    // The engine's issues may already end in a count of the unlisted ones.
    let mut n = 0;
    for i in &issues {
        n += match i["kind"].as_str() {
            Some("truncated") => i["message"].as_str().and_then(|m| m.split(' ').nth(1)?.parse().ok()).unwrap_or(0),
            _ => 1,
        };
    }
    let listed = issues.iter().filter(|i| i["kind"] != "truncated").count();
    if listed > MAX_ISSUES {
        issues.retain(|i| i["kind"] != "truncated");
        issues.truncate(MAX_ISSUES);
        let more = n - MAX_ISSUES;
        issues.push(json!({
            "field": "",
            "kind": "truncated",
            "message": format!("and {more} more problem{} (only the first {MAX_ISSUES} are listed)", if more == 1 { "" } else { "s" }),
        }));
    }
    let mut details = json!({"errors": issues});
    let mut message = format!("the request has {n} problem{}", if n == 1 { "" } else { "s" });
    if let Some(i) = index {
        details["index"] = json!(i);
        message = format!("request {i} of the batch has {n} problem{}", if n == 1 { "" } else { "s" });
    }
    ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_FAILED", message).with_details(details)
}

/// Maps an engine error with [`ApiError::from_engine`], telling it whether the store stopped
/// taking writes (asked only for store errors).
pub(crate) fn engine_error(state: &AppState, e: &Error) -> ApiError {
    let store_error =
        matches!(e, Error::Store(_)) || matches!(e, Error::Batch { source, .. } if matches!(**source, Error::Store(_)));
    ApiError::from_engine(e, state.config().retry_after_secs, store_error && state.store_health().is_err())
}

fn header_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get("idempotency-key")
        .map(|v| v.to_str().map_err(|_| ApiError::bad_param("the Idempotency-Key header must be visible ASCII")))
        .transpose()
}

/// Submit one request.
///
/// With `?wait=`, waits up to that long (capped by the server's `max_wait`) and includes the
/// result when the request finished in time.
#[utoipa::path(
    post, path = "/v1/requests", tag = "requests",
    request_body = SubmitBody,
    params(
        ("wait" = Option<String>, Query, description = "Wait this long for the result (`10s`, `500ms`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the submission idempotent"),
    ),
    responses(
        (status = 201, description = "Accepted", body = SubmitResponse),
        (status = 400, description = "Malformed JSON, JSON too deep, or invalid options/parameters (every problem in `details.errors`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "A `Host` that does not name the service (`HOST_NOT_ALLOWED`), or a write from another site's page (`ORIGIN_NOT_ALLOWED`)", body = ErrorBody),
        (status = 415, description = "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`)", body = ErrorBody),
        (status = 413, description = "Body or parameters too large", body = ErrorBody),
        (status = 422, description = "Unknown task (`details.knownTasks`)", body = ErrorBody),
        (status = 429, description = "Queue full; see Retry-After", body = ErrorBody),
        (status = 503, description = "Shutting down (`SHUTTING_DOWN`, see Retry-After), or the store stopped taking writes (`STORE_FAILED`)", body = ErrorBody),
    )
)]
pub(crate) async fn submit(
    State(state): State<AppState>,
    q: QueryPairs,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SubmitBody>,
) -> Result<Response, ApiError> {
    q.only(&["wait"])?;
    let wait = wait_param(&q, state.config().max_wait)?;
    let key = header_key(&headers)?;
    let req = to_submit(&state, body, key).map_err(|issues| validation_error(issues, None))?;
    let m = state.manager();
    // Without an idempotency key the request is new, and its status is known without a read:
    // scheduled when it waits for a time, else pending (it may already be further along).
    let known = if req.options.idempotency_key.is_some() {
        None
    } else if req.options.delay.is_some() || req.options.run_at.is_some_and(|t| t > m.now()) {
        Some(RequestStatus::Scheduled)
    } else {
        Some(RequestStatus::Pending)
    };
    let id = m.submit(&req.task_id, req.parameters, req.options).await.map_err(|e| engine_error(&state, &e))?;
    let mut result = None;
    if let Some(w) = wait {
        result = wait_for(&state, id, w).await?;
    }
    let status = match (&result, known) {
        (Some(r), _) => r.status,
        (None, Some(s)) => s,
        (None, None) => m.get_request(id).await.map(|r| r.status).map_err(|e| engine_error(&state, &e))?,
    };
    let mut body = json!({"requestId": id, "status": status});
    if let Some(r) = result {
        body["result"] = json!(r);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Submit many requests: all are accepted or none.
#[utoipa::path(
    post, path = "/v1/requests/batch", tag = "requests",
    request_body = BatchBody,
    responses(
        (status = 201, description = "All accepted, ids in order", body = BatchResponse),
        (status = 400, description = "A request is invalid; `details.index` names it", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "A `Host` that does not name the service (`HOST_NOT_ALLOWED`), or a write from another site's page (`ORIGIN_NOT_ALLOWED`)", body = ErrorBody),
        (status = 415, description = "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "A request names an unknown task; `details.index` names it", body = ErrorBody),
        (status = 429, description = "Queue full; see Retry-After", body = ErrorBody),
        (status = 503, description = "Shutting down (`SHUTTING_DOWN`, see Retry-After), or the store stopped taking writes (`STORE_FAILED`)", body = ErrorBody),
    )
)]
pub(crate) async fn submit_batch(
    State(state): State<AppState>,
    q: QueryPairs,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<Response, ApiError> {
    q.only(&[])?;
    if body.requests.is_empty() {
        return Err(validation_error(vec![issue("requests", "the batch is empty: send at least one request")], None));
    }
    let mut reqs = Vec::with_capacity(body.requests.len());
    for (i, b) in body.requests.into_iter().enumerate() {
        reqs.push(to_submit(&state, b, None).map_err(|issues| validation_error(issues, Some(i)))?);
    }
    let ids = state.manager().submit_many(reqs).await.map_err(|e| engine_error(&state, &e))?;
    // Serialized straight from the ids (no intermediate JSON value per id).
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Accepted<'a> {
        request_ids: &'a [RequestId],
    }
    Ok((StatusCode::CREATED, Json(Accepted { request_ids: &ids })).into_response())
}

const QUERY_PARAMS: &[&str] = &[
    "status",
    "taskId",
    "clientId",
    "bankId",
    "priorityMin",
    "priorityMax",
    "createdFrom",
    "createdTo",
    "metadata",
    "metadata.*",
    "sort",
    "order",
    "limit",
    "offset",
    "cursor",
];

fn parse_time(name: &str, v: &str, problems: &mut Vec<String>) -> Option<Timestamp> {
    if let Ok(ms) = v.parse::<i64>() {
        return Some(Timestamp::from_millis(ms));
    }
    match Timestamp::parse(v) {
        Ok(t) => Some(t),
        Err(_) => {
            problems.push(format!("`{name}={}`: expected {TIME_HINT}", echo(v)));
            None
        }
    }
}

fn parse_query(q: &QueryPairs) -> Result<RequestQuery, ApiError> {
    q.only(QUERY_PARAMS)?;
    let mut problems = Vec::new();
    let mut query = RequestQuery::new();
    for s in q.all("status") {
        match s.parse::<RequestStatus>() {
            Ok(st) => query.status.push(st),
            Err(_) => problems.push(format!(
                "`status={}`: expected one of {}",
                echo(s),
                RequestStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )),
        }
    }
    query.task_id = q.get("taskId").map(str::to_owned);
    query.client_id = q.get("clientId").map(str::to_owned);
    query.bank_id = q.get("bankId").map(str::to_owned);
    let mut prio = |name: &str| -> Option<u8> {
        let v = q.get(name)?;
        match v.parse::<u8>() {
            Ok(p) if (1..=10).contains(&p) => Some(p),
            _ => {
                problems.push(format!("`{name}={}`: expected a priority from 1 to 10", echo(v)));
                None
            }
        }
    };
    let (pmin, pmax) = (prio("priorityMin"), prio("priorityMax"));
    if pmin.is_some() || pmax.is_some() {
        query.priority_range = Some(PriorityRange { min: pmin.unwrap_or(1), max: pmax.unwrap_or(10) });
    }
    let from = q.get("createdFrom").and_then(|v| parse_time("createdFrom", v, &mut problems));
    let to = q.get("createdTo").and_then(|v| parse_time("createdTo", v, &mut problems));
    if from.is_some() || to.is_some() {
        query = query.created_between(from, to);
    }
    if let Some(m) = q.get("metadata") {
        match serde_json::from_str::<Map<String, Value>>(m) {
            Ok(map) => query.metadata.extend(map),
            Err(_) => problems
                .push(format!("`metadata={}`: expected a JSON object such as {{\"team\":\"billing\"}}", echo(m))),
        }
    }
    for (k, v) in &q.0 {
        if let Some(key) = k.strip_prefix("metadata.") {
            // A value that parses as JSON matches as such (`7`, `true`, `"7"`); anything else
            // matches as a string.
            let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.clone()));
            query.metadata.insert(key.to_owned(), value);
        }
    }
    if let Some(s) = q.get("sort") {
        match serde_json::from_value::<SortField>(Value::String(s.to_owned())) {
            Ok(f) => query.pagination.sort_by = f,
            Err(_) => problems.push(format!("`sort={}`: expected created, updated, priority or status", echo(s))),
        }
    }
    if let Some(o) = q.get("order") {
        match o.to_ascii_lowercase().as_str() {
            "asc" => query.pagination.sort_order = SortOrder::Asc,
            "desc" => query.pagination.sort_order = SortOrder::Desc,
            _ => problems.push(format!("`order={}`: expected asc or desc", echo(o))),
        }
    }
    let num = |name: &str, problems: &mut Vec<String>| -> Option<usize> {
        let v = q.get(name)?;
        v.parse().map_err(|_| problems.push(format!("`{name}={}`: expected a non-negative integer", echo(v)))).ok()
    };
    if let Some(l) = num("limit", &mut problems) {
        if l == 0 || l > atmo_workers::query::MAX_PAGE_SIZE {
            problems.push(format!("`limit={l}`: expected 1 to {}", atmo_workers::query::MAX_PAGE_SIZE));
        }
        query.pagination.limit = l;
    }
    if let Some(o) = num("offset", &mut problems) {
        query.pagination.offset = o;
    }
    if let Some(c) = q.get("cursor") {
        if let Err(e) = atmo_workers::Cursor::decode(c) {
            problems.push(e.to_string());
        }
        query.pagination.cursor = Some(c.to_owned());
    }
    if let (Some(a), Some(b)) = (pmin, pmax)
        && a > b
    {
        problems.push(format!("priorityMin {a} is above priorityMax {b}"));
    }
    if problems.is_empty() {
        Ok(query)
    } else {
        // The message counts the problems; `details.errors` lists them (at most `MAX_ISSUES`).
        let n = problems.len();
        if n > MAX_ISSUES {
            problems.truncate(MAX_ISSUES);
            problems.push(format!("and {} more (only the first {MAX_ISSUES} are listed)", n - MAX_ISSUES));
        }
        let mut message = format!("{n} invalid query parameter{}", if n == 1 { "" } else { "s" });
        if n == 1 {
            message = format!("{message}: {}", problems[0]);
        }
        Err(ApiError::bad_param(message).with_details(json!({"errors": problems})))
    }
}

/// Query requests: filters, sorting, offset or cursor pagination.
#[utoipa::path(
    get, path = "/v1/requests", tag = "requests",
    params(
        ("status" = Option<String>, Query, description = "Status(es): repeat or comma-separate (pending, scheduled, assigned, processing, completed, failed, timed_out, cancelled)"),
        ("taskId" = Option<String>, Query, description = "Task"),
        ("clientId" = Option<String>, Query, description = "Client"),
        ("bankId" = Option<String>, Query, description = "Bank that handled it"),
        ("priorityMin" = Option<u8>, Query, description = "Lowest priority"),
        ("priorityMax" = Option<u8>, Query, description = "Highest priority"),
        ("createdFrom" = Option<String>, Query, description = "Created at or after (RFC 3339 or epoch ms)"),
        ("createdTo" = Option<String>, Query, description = "Created before (RFC 3339 or epoch ms)"),
        ("metadata" = Option<String>, Query, description = "JSON object every entry of which must equal the request's metadata; or `metadata.<key>=<value>`"),
        ("sort" = Option<String>, Query, description = "created (default), updated, priority, status"),
        ("order" = Option<String>, Query, description = "desc (default) or asc"),
        ("limit" = Option<usize>, Query, description = "Page size (default 50, at most 10000)"),
        ("offset" = Option<usize>, Query, description = "Skip this many (ignored with a cursor)"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = QueryPageSchema),
        (status = 400, description = "Invalid parameters (every problem in `details.errors`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn query(State(state): State<AppState>, q: QueryPairs) -> Result<Response, ApiError> {
    let query = parse_query(&q)?;
    let page = state.manager().query(query).await.map_err(|e| engine_error(&state, &e))?;
    Ok(Json(page).into_response())
}

/// A request with its history.
#[utoipa::path(
    get, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "Request id (UUID)")),
    responses(
        (status = 200, description = "The request", body = RequestSchema),
        (status = 400, description = "Not a request id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
    )
)]
pub(crate) async fn get_request(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = request_id(&id)?;
    let r = state.manager().get_request(id).await.map_err(|e| engine_error(&state, &e))?;
    Ok(Json(r).into_response())
}

/// Waits up to `limit` for the result; `None` when it did not finish in time (or the server
/// began shutting down).
async fn wait_for(
    state: &AppState,
    id: RequestId,
    limit: Duration,
) -> Result<Option<atmo_workers::RequestResult>, ApiError> {
    let m = state.manager();
    tokio::select! {
        r = m.wait_timeout(id, limit) => match r {
            Ok(r) => Ok(Some(r)),
            Err(Error::WaitTimeout(_)) => Ok(None),
            Err(e) => Err(engine_error(state, &e)),
        },
        _ = state.closing_signal() => Ok(None),
    }
}

/// The result of a request; long-polls with `?wait=`.
#[utoipa::path(
    get, path = "/v1/requests/{id}/result", tag = "requests",
    params(
        ("id" = String, Path, description = "Request id"),
        ("wait" = Option<String>, Query, description = "Wait up to this long (`30s`; capped by the server's max wait)"),
    ),
    responses(
        (status = 200, description = "Finished", body = RequestResultSchema),
        (status = 202, description = "Not finished (yet)", body = StatusResponse),
        (status = 400, description = "Not a request id, or a bad wait", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
    )
)]
pub(crate) async fn get_result(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    q.only(&["wait"])?;
    let id = request_id(&id)?;
    let wait = wait_param(&q, state.config().max_wait)?;
    let m = state.manager();
    let result = match wait {
        Some(w) if !w.is_zero() => wait_for(&state, id, w).await?,
        _ => m.get_result(id).await.map_err(|e| engine_error(&state, &e))?,
    };
    match result {
        Some(r) => Ok(Json(r).into_response()),
        None => {
            let status = m.get_request(id).await.map_err(|e| engine_error(&state, &e))?.status;
            Ok((StatusCode::ACCEPTED, Json(json!({"requestId": id, "status": status}))).into_response())
        }
    }
}

/// Everything about a request: history, errors, task, bank, capability, assignment, result.
#[utoipa::path(
    get, path = "/v1/requests/{id}/lifecycle", tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The lifecycle", body = RequestLifecycleSchema),
        (status = 400, description = "Not a request id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
    )
)]
pub(crate) async fn get_lifecycle(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = request_id(&id)?;
    let l = state.manager().get_lifecycle(id).await.map_err(|e| engine_error(&state, &e))?;
    Ok(Json(l).into_response())
}

async fn do_cancel(state: &AppState, id: &str) -> Result<Response, ApiError> {
    let id = request_id(id)?;
    state.manager().cancel(id).await.map_err(|e| engine_error(state, &e))?;
    Ok(Json(json!({"requestId": id, "status": RequestStatus::Cancelled})).into_response())
}

/// Cancel a request that has not finished.
#[utoipa::path(
    post, path = "/v1/requests/{id}/cancel", tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Cancelled", body = StatusResponse),
        (status = 400, description = "Not a request id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Already finished (`details.status`)", body = ErrorBody),
    )
)]
pub(crate) async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    do_cancel(&state, &id).await
}

/// Cancel a request (alias of `POST /v1/requests/{id}/cancel`; the record is kept).
#[utoipa::path(
    delete, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Cancelled", body = StatusResponse),
        (status = 400, description = "Not a request id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Already finished (`details.status`)", body = ErrorBody),
    )
)]
pub(crate) async fn delete_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    do_cancel(&state, &id).await
}
