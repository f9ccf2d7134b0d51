//! The routes: one table ([`table`]) that both the router and [`routes`](crate::routes) read,
//! so the served routes, the documented ones and the tested ones cannot drift apart.

pub(crate) mod cron;
pub(crate) mod events;
pub(crate) mod requests;
pub(crate) mod system;
pub(crate) mod tasks;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use serde_json::json;

use crate::error::ApiError;
use crate::server::AppState;

/// Paths answered without a token: probes, and the dashboard page (its API calls carry one).
pub(crate) const PUBLIC_PATHS: &[&str] = &["/healthz", "/readyz", "/"];

struct RouteDef {
    method: Method,
    path: &'static str,
    handler: MethodRouter<AppState>,
}

fn def(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> RouteDef {
    RouteDef { method, path, handler }
}

fn table() -> Vec<RouteDef> {
    use routing::{delete, get, post};
    vec![
        def(Method::POST, "/v1/requests", post(requests::submit)),
        def(Method::GET, "/v1/requests", get(requests::query)),
        def(Method::POST, "/v1/requests/batch", post(requests::submit_batch)),
        def(Method::GET, "/v1/requests/{id}", get(requests::get_request)),
        def(Method::DELETE, "/v1/requests/{id}", delete(requests::delete_request)),
        def(Method::GET, "/v1/requests/{id}/result", get(requests::get_result)),
        def(Method::GET, "/v1/requests/{id}/lifecycle", get(requests::get_lifecycle)),
        def(Method::POST, "/v1/requests/{id}/cancel", post(requests::cancel)),
        def(Method::GET, "/v1/tasks", get(tasks::list)),
        def(Method::GET, "/v1/tasks/{id}", get(tasks::get)),
        def(Method::GET, "/v1/banks", get(system::banks)),
        def(Method::GET, "/v1/workers", get(system::workers)),
        def(Method::GET, "/v1/metrics", get(system::metrics)),
        def(Method::GET, "/v1/metrics/history", get(system::history)),
        def(Method::GET, "/v1/events", get(events::events)),
        def(Method::GET, "/v1/cron", get(cron::list)),
        def(Method::POST, "/v1/cron", post(cron::create)),
        def(Method::GET, "/v1/cron/{id}", get(cron::get)),
        def(Method::DELETE, "/v1/cron/{id}", delete(cron::remove)),
        def(Method::POST, "/v1/cron/{id}/pause", post(cron::pause)),
        def(Method::POST, "/v1/cron/{id}/resume", post(cron::resume)),
        def(Method::GET, "/metrics", get(system::prometheus)),
        def(Method::GET, "/openapi.json", get(system::openapi)),
        def(Method::GET, "/healthz", get(system::healthz)),
        def(Method::GET, "/readyz", get(system::readyz)),
        def(Method::GET, "/", get(system::dashboard)),
    ]
}

/// Every route the router serves, as (method, path) with `{param}` placeholders, the way the
/// OpenAPI document writes them.
pub fn routes() -> Vec<(Method, &'static str)> {
    table().into_iter().map(|r| (r.method, r.path)).collect()
}

pub(crate) fn router(state: AppState) -> Router {
    let limit = state.config().max_body_bytes;
    let mut router: Router<AppState> = Router::new();
    for r in table() {
        router = router.route(r.path, r.handler);
    }
    let cors = crate::guard::cors_layer(&state.config().cors_origins);
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        // Before authentication: a forged page learns nothing, not even whether a token is set.
        .layer(middleware::from_fn_with_state(state.clone(), crate::guard::guard))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state);
    // Outermost, so that preflight requests (which carry no token) are answered.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND", format!("no route for {method} {}", uri.path()))
        .with_details(json!({"routes": routes().iter().map(|(m, p)| format!("{m} {p}")).collect::<Vec<_>>()}))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    let allowed: Vec<String> =
        routes().iter().filter(|(_, p)| path_matches(p, uri.path())).map(|(m, _)| m.to_string()).collect();
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{method} is not allowed on {}; allowed: {}", uri.path(), allowed.join(", ")),
    )
    .with_details(json!({"allowed": allowed}))
}

/// Whether a concrete path matches a route pattern with `{param}` segments.
fn path_matches(pattern: &str, path: &str) -> bool {
    let (mut a, mut b) = (pattern.split('/'), path.split('/'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p == s || (p.starts_with('{') && !s.is_empty()) => {}
            _ => return false,
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn query_token(uri: &axum::http::Uri) -> Option<String> {
    let q = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    q.0.into_iter().rev().find(|(k, _)| k == "token").map(|(_, v)| v)
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.config().auth_token.as_deref().filter(|t| !t.is_empty()) else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if PUBLIC_PATHS.contains(&path) {
        return next.run(req).await;
    }
    // `EventSource` cannot send headers: the event stream also takes `?token=`.
    let presented = match bearer(req.headers()) {
        Some(t) => Some(t.to_owned()),
        None if path == "/v1/events" => query_token(req.uri()),
        None => None,
    };
    match presented {
        Some(t) if same_secret(t.as_bytes(), expected.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "the bearer token is wrong").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "a bearer token is required: send `Authorization: Bearer <token>`",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_concrete_paths() {
        assert!(path_matches("/v1/requests/{id}", "/v1/requests/abc"));
        assert!(!path_matches("/v1/requests/{id}", "/v1/requests/abc/result"));
        assert!(!path_matches("/v1/requests/{id}", "/v1/requests/"));
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
