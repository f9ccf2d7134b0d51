//! What keeps a web page from driving the service behind its user's back: the `Host` check
//! (DNS rebinding), the `Origin` check on state-changing requests (cross-site posts), CORS for
//! the origins the operator does want, and, during a graceful shutdown, 503 for writes.
//!
//! The `Content-Type` check (415 unless the body is JSON) is in the JSON body extractor, so
//! that it applies exactly to the routes that read a body.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::{ApiError, echo};
use crate::server::AppState;

/// The host part of a `Host` header value (`[::1]:7070` → `::1`, `localhost:7070` →
/// `localhost`), lowercased.
fn host_name(value: &str) -> String {
    let v = value.trim();
    let host = if let Some(rest) = v.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        v.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(v, |(h, _)| h)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `Host: value` names this service: an IP address (a page can only send that for a
/// URL naming the address itself, never after rebinding a name of its own), `localhost` and
/// its subdomains, or one of the configured `allowed_hosts`.
pub(crate) fn host_allowed(value: &str, allowed: &[String]) -> bool {
    let host = host_name(value);
    host.parse::<std::net::IpAddr>().is_ok()
        || host == "localhost"
        || host.ends_with(".localhost")
        || allowed.iter().any(|a| host_name(a) == host)
}

/// Whether a state-changing request from `origin` may proceed: its origin is the service's own
/// (the dashboard: `scheme://` + the `Host` it sent), or one of the configured CORS origins.
/// The opaque origin `null` (sandboxed frames, some redirects) never may.
pub(crate) fn origin_allowed(origin: &str, host: Option<&str>, cors: &[String]) -> bool {
    let origin = origin.trim().trim_end_matches('/');
    if cors.iter().any(|c| c.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    match (authority, host) {
        (Some(a), Some(h)) => a.eq_ignore_ascii_case(h.trim()),
        _ => false,
    }
}

/// Methods that change state: an `Origin` check applies, and they are refused during a drain.
fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The middleware: `Host`, then `Origin` on writes, then the drain.
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let config = state.config();
    let headers = req.headers();
    let host = header_str(headers, header::HOST);
    // A request without `Host` (HTTP/1.0, in-process calls) cannot come from a browser.
    if let Some(h) = host
        && !host_allowed(h, &config.allowed_hosts)
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "HOST_NOT_ALLOWED",
            format!(
                "`Host: {}` does not name this service; use its address or localhost, or add the name to `allowed_hosts`",
                echo(h)
            ),
        )
        .with_details(json!({"host": echo(h)}))
        .into_response();
    }
    if is_write(req.method()) {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let o = origin.to_str().unwrap_or("null");
            if !origin_allowed(o, host, &config.cors_origins) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "ORIGIN_NOT_ALLOWED",
                    format!(
                        "requests that change state are not accepted from pages of `{}`; add it to `cors` to allow it",
                        echo(o)
                    ),
                )
                .with_details(json!({"origin": echo(o)}))
                .into_response();
            }
        }
        if state.is_shutting_down() {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SHUTTING_DOWN",
                "the server is shutting down: reads and result waits still work, writes do not; retry against its successor",
            )
            .with_retry_after(config.retry_after_secs)
            .into_response();
        }
    }
    next.run(req).await
}

/// CORS for the configured origins (none: no CORS headers at all, so browsers keep other
/// sites from reading answers).
pub(crate) fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let list: Vec<HeaderValue> =
        origins.iter().filter_map(|o| HeaderValue::from_str(o.trim().trim_end_matches('/')).ok()).collect();
    if list.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(list))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("idempotency-key"),
                header::HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Whether a `Content-Type` is JSON: `application/json` or `application/<something>+json`,
/// parameters (`; charset=utf-8`) allowed.
pub(crate) fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let none: &[String] = &[];
        for ok in ["127.0.0.1:7070", "localhost:7070", "LOCALHOST", "[::1]:7070", "app.localhost", "10.0.0.5"] {
            assert!(host_allowed(ok, none), "{ok}");
        }
        for bad in ["evil.example", "evil.example:7070", "localhost.evil.example", ""] {
            assert!(!host_allowed(bad, none), "{bad}");
        }
        assert!(host_allowed("atmo.internal:7070", &["atmo.internal".to_owned()]));
    }

    #[test]
    fn origins() {
        assert!(origin_allowed("http://127.0.0.1:7070", Some("127.0.0.1:7070"), &[]));
        assert!(!origin_allowed("http://127.0.0.1:8000", Some("127.0.0.1:7070"), &[]));
        assert!(!origin_allowed("https://evil.example", Some("127.0.0.1:7070"), &[]));
        assert!(!origin_allowed("null", Some("127.0.0.1:7070"), &[]));
        assert!(origin_allowed(
            "http://localhost:3000",
            Some("127.0.0.1:7070"),
            &["http://localhost:3000/".to_owned()]
        ));
        assert!(!origin_allowed("http://127.0.0.1:7070", None, &[]));
    }

    #[test]
    fn content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/x-www-form-urlencoded"));
        assert!(!is_json_content_type("multipart/form-data; boundary=x"));
    }
}
