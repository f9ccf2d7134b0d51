//! Request parsing: JSON bodies (size and depth checked before parsing), query pairs,
//! durations and request ids, each failing with a JSON [`ApiError`].

use std::time::Duration;

use atmo_workers::RequestId;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::json;

use atmo_workers::manifest::MAX_ISSUES;

use crate::error::{ApiError, echo};
use crate::server::AppState;

/// A JSON body: `Content-Type: application/json` (415 otherwise), at most `max_body_bytes` (413 beyond), nested at most `max_json_depth` deep
/// (checked on the raw bytes before parsing, so a pathological body cannot exhaust the
/// stack), then parsed into `T` (400 `MALFORMED_JSON` with the line and column of the problem).
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        // A page on any site may send `text/plain` (or a typeless blob) without a preflight;
        // only JSON is taken.
        let content_type = req.headers().get(axum::http::header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?"));
        if !content_type.is_some_and(crate::guard::is_json_content_type) {
            let got = content_type.map_or_else(|| "none".to_owned(), |c| format!("`{}`", echo(c)));
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("the request body must be JSON: send `Content-Type: application/json` (got {got})"),
            ));
        }
        let limit = state.config().max_body_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    format!("the request body exceeds the limit of {limit} bytes"),
                )
                .with_details(json!({"limit": limit}))
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", rejection.body_text())
            }
        })?;
        parse_json(&bytes, state.config().max_json_depth).map(JsonBody)
    }
}

/// Parses `bytes` as JSON into `T` after checking the nesting depth.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
            "the request body is empty: send a JSON object",
        ));
    }
    if let Some(depth) = exceeds_depth(bytes, max_depth) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "JSON_TOO_DEEP",
            format!("the JSON body nests deeper than {max_depth} levels (reached {depth})"),
        )
        .with_details(json!({"maxDepth": max_depth})));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", format!("invalid JSON body: {e}"))
            .with_details(json!({"line": e.line(), "column": e.column()}))
    })
}

/// The depth reached when it goes past `max` (brackets inside strings do not count), or `None`.
pub(crate) fn exceeds_depth(bytes: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The query string as `(key, value)` pairs, in order, repeated keys kept.
#[derive(Debug, Default)]
pub(crate) struct QueryPairs(pub(crate) Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|q| QueryPairs(q.0))
            .map_err(|e| ApiError::bad_param(format!("malformed query string: {}", e.body_text())))
    }
}

impl QueryPairs {
    /// Refuses keys outside `allowed` (a typo would otherwise silently match everything).
    pub(crate) fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        let unknown: Vec<&str> = self
            .0
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| {
                let prefixed = allowed.contains(&"metadata.*") && k.starts_with("metadata.");
                !(allowed.contains(k) || prefixed)
            })
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let n = unknown.len();
        let unknown: Vec<String> = unknown.iter().take(MAX_ISSUES).map(|k| echo(k)).collect();
        let more = if n > unknown.len() { format!(" and {} more", n - unknown.len()) } else { String::new() };
        Err(ApiError::bad_param(format!("unknown query parameter(s): {}{more}", unknown.join(", ")))
            .with_details(json!({"unknown": unknown, "allowed": allowed})))
    }

    /// The last value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, comma lists split.
    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Parses a wait such as `30s`, `500ms`, `2m` or a bare number of seconds.
pub(crate) fn parse_duration(name: &str, s: &str) -> Result<Duration, ApiError> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs.min(1e9)));
        }
    } else if let Ok(d) = humantime::parse_duration(s) {
        return Ok(d);
    }
    Err(ApiError::bad_param(format!(
        "`{name}={s}` is not a duration: use e.g. `30s`, `500ms`, `2m` or a number of seconds"
    )))
}

/// The `?wait=` of a query, capped at `max`.
pub(crate) fn wait_param(q: &QueryPairs, max: Duration) -> Result<Option<Duration>, ApiError> {
    q.get("wait").map(|w| parse_duration("wait", w).map(|d| d.min(max))).transpose()
}

/// Parses a request id from a path segment.
pub(crate) fn request_id(s: &str) -> Result<RequestId, ApiError> {
    s.parse().map_err(|e: atmo_workers::InvalidRequestId| {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST_ID", e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert_eq!(exceeds_depth(br#"{"a":[1,{"b":2}]}"#, 3), None);
        assert_eq!(exceeds_depth(br#"{"a":[1,{"b":2}]}"#, 2), Some(3));
        assert_eq!(exceeds_depth(br#"{"a":"[[[[[[\"[[[["}"#, 1), None);
        let deep = "[".repeat(10_000);
        assert_eq!(exceeds_depth(deep.as_bytes(), 64), Some(65));
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("wait", "1.5").ok(), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("wait", "250ms").ok(), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("wait", "2m").ok(), Some(Duration::from_secs(120)));
        assert!(parse_duration("wait", "soon").is_err());
        assert!(parse_duration("wait", "-1").is_err());
    }
}
