//! # atmo-server
//!
//! The HTTP face of Atmo Workers (`atmo serve`), as a library: a JSON API over a
//! [`WorkerManager`](atmo_workers::WorkerManager), server-sent events, Prometheus metrics,
//! cron schedules, an OpenAPI document and a dashboard.
//!
//! How the pieces relate:
//!
//! - [`Server::new`] takes a started `WorkerManager` and a [`ServerConfig`], and starts three
//!   background tasks: the event pump (one engine subscription feeding a resumable ring buffer,
//!   the live event streams and the counters), the history sampler (one sample per second for
//!   the dashboard's chart) and the [`CronScheduler`] loop.
//! - [`Server::router`] is the whole application as an axum `Router` (authentication, body and
//!   depth limits, JSON errors included): serve it, or test it with `tower::ServiceExt::oneshot`.
//! - [`Server::serve_with_drain`] serves it on a listener until a shutdown future resolves,
//!   keeps serving while the engine drains (reads and result waits work, writes and `/readyz`
//!   answer 503), then closes. [`Server::serve`] closes at once instead.
//! - [`check_bind`] refuses a non-loopback address without a token.
//!
//! ## Routes
//!
//! JSON bodies and answers use camelCase, as the engine's models serialize. Every route but
//! `/healthz`, `/readyz` and `/` needs `Authorization: Bearer <token>` when a token is set
//! (`/v1/events` also takes `?token=`).
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/requests` | submit one: `{taskId, parameters, priority?, clientId?, metadata?, idempotencyKey?, runAt?, delayMs?, timeoutMs?, maxRetries?, retry?}` (or the `Idempotency-Key` header); 201 `{requestId, status}`; `?wait=10s` adds `result` if it finished in time |
//! | `POST /v1/requests/batch` | submit many, all or nothing: `{requests: [...]}`; 201 `{requestIds}`; an error's `details.index` names the refused request |
//! | `GET /v1/requests` | query: `status` (repeat or comma list), `taskId`, `clientId`, `bankId`, `priorityMin`, `priorityMax`, `createdFrom`, `createdTo`, `metadata` (JSON object) or `metadata.<key>=<value>`, `sort` (created, updated, priority, status), `order`, `limit`, `offset`, `cursor`; answers `{requests, total, nextCursor}` (`nextCursor` is `null` on the last page) |
//! | `GET /v1/requests/{id}` | the request with its history |
//! | `DELETE /v1/requests/{id}` | cancel (alias) |
//! | `GET /v1/requests/{id}/result` | 200 with the result, or 202 `{requestId, status}`; `?wait=30s` long-polls (capped by `max_wait`) |
//! | `GET /v1/requests/{id}/lifecycle` | history, errors, task, bank, capability, assignment, result |
//! | `POST /v1/requests/{id}/cancel` | cancel; 409 if it already finished |
//! | `GET /v1/tasks` | `{tasks, limits}`: every task with its parameters (type, required, default, allowed values, ranges), `strict`, timeout and retry policy, banks; the limits of every submission (priority range and default, sizes) |
//! | `GET /v1/tasks/{id}` | one task, with `limits`; 404 `TASK_NOT_FOUND` (`details.knownTasks`) |
//! | `GET /v1/banks` | `{banks (with performance, capabilities, workers), tasks, manifests}` |
//! | `GET /v1/workers` | `{workers}` |
//! | `GET /v1/metrics` | the engine's `SystemMetrics` |
//! | `GET /v1/metrics/history` | `{intervalMs, samples: [{at, submitted, completed, failed, cancelled, p50Ms, p99Ms, queueDepth, currentLoad, byStatus}]}` |
//! | `GET /v1/events` | server-sent events; `?requestId=`, `?bankId=`, `?type=` filters; `Last-Event-ID` resumes; `lagged` events mark gaps |
//! | `GET /v1/cron`, `POST /v1/cron` | list, create `{name, schedule, taskId, parameters, priority?, clientId?, metadata?, timeoutMs?, maxRetries?, missedRunPolicy?}` |
//! | `GET /v1/cron/{id}`, `DELETE /v1/cron/{id}` | read, delete |
//! | `POST /v1/cron/{id}/pause`, `POST /v1/cron/{id}/resume` | pause, resume |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /openapi.json` | the OpenAPI 3.1 document, generated from the handlers |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (503 once shutdown began) |
//! | `GET /` | the dashboard (`?token=` if a token is set) |
//!
//! ## Errors
//!
//! Every error is `{code, message, details}` with a stable `code` (the engine's
//! `Error::code()` for engine errors). Statuses are decided in one place,
//! [`ApiError::from_engine`]: 400 invalid input (`details.errors` lists every problem), malformed
//! JSON, JSON nested deeper than `max_json_depth`, or a bad query parameter; 401 missing or
//! wrong token; 404 unknown request, schedule or route; 405 wrong method; 409 conflict (cancelling
//! a finished request, a taken schedule name); 413 body over `max_body_bytes` or parameters over
//! the engine's payload limit; 415 a body that is not `application/json`; 403 a `Host` that
//! does not name the service or a write from another site's page (see below); 422 unknown task (`details.knownTasks` lists the registered
//! ones); 429 queue full and 503 shutting down, both with `Retry-After`.
//!
//! ## Browsers
//!
//! A web page can make its visitor's browser send requests to `127.0.0.1`. So that it cannot
//! use the service: bodies must be `Content-Type: application/json` (415
//! `UNSUPPORTED_MEDIA_TYPE`; what a page may send without a CORS preflight is never JSON); a
//! `Host` header must be an IP address, `localhost` (or a subdomain of it) or one of
//! [`ServerConfig::allowed_hosts`] (403 `HOST_NOT_ALLOWED`, which defeats DNS rebinding); a
//! write (`POST`, `DELETE`) carrying an `Origin` must come from the service's own pages (the
//! dashboard) or one of [`ServerConfig::cors_origins`] (403 `ORIGIN_NOT_ALLOWED`). The CORS
//! origins also get CORS headers, preflights included.

pub mod config;
pub mod cron;
pub mod error;
mod extract;
mod guard;
mod hub;
mod monitor;
pub mod openapi;
mod prometheus;
mod routes;
mod server;

pub use config::ServerConfig;
pub use cron::{CronError, CronJob, CronScheduler, CronSpec, MissedRunPolicy};
pub use error::{ApiError, ServerError};
pub use monitor::HistorySample;
pub use routes::routes;
pub use server::{Server, check_bind};

/// The dashboard page, served at `/`.
pub const DASHBOARD_HTML: &str = include_str!("../assets/dashboard.html");
