//! A small blocking client of the service's HTTP API: base URL, bearer token, JSON in and out,
//! and API errors mapped to exit codes.

use std::io::BufRead;
use std::time::Duration;

use serde_json::Value;
use ureq::Agent;

use super::show::clean;

/// Exit codes of the client commands (also in `atmo --help`).
pub(crate) mod exit {
    /// Done; for `wait` and `submit --wait`: the request completed.
    pub(crate) const OK: u8 = 0;
    /// The request failed, timed out or was cancelled (`wait`, `submit --wait`).
    pub(crate) const REQUEST_FAILED: u8 = 1;
    /// Bad input: invalid parameters, unknown task, malformed JSON, too large (400, 413, 422).
    pub(crate) const BAD_INPUT: u8 = 2;
    /// No such request, bank or schedule (404).
    pub(crate) const NOT_FOUND: u8 = 3;
    /// The request is in a state that forbids it, e.g. cancelling a finished request (409).
    pub(crate) const CONFLICT: u8 = 4;
    /// The server is unreachable, overloaded (429, 503) or failed (5xx).
    pub(crate) const UNAVAILABLE: u8 = 5;
    /// Missing or wrong token (401).
    pub(crate) const UNAUTHORIZED: u8 = 6;
    /// `wait --timeout` ran out before the request finished.
    pub(crate) const STILL_RUNNING: u8 = 7;
}

/// A failure with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ClientError {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl ClientError {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        ClientError { code, message: message.into() }
    }
}

/// The API's base URL and token.
#[derive(Debug)]
pub(crate) struct Client {
    base: String,
    token: Option<String>,
    agent: Agent,
}

/// A successful response: its status and JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

const MAX_BODY: u64 = 256 * 1024 * 1024;

impl Client {
    pub(crate) fn new(server: &str, token: Option<String>) -> Self {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Client { base: server.trim_end_matches('/').to_owned(), token: token.filter(|t| !t.is_empty()), agent }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => req.header("Authorization", format!("Bearer {t}")),
            None => req,
        }
    }

    pub(crate) fn get(&self, path: &str) -> Result<Reply, ClientError> {
        let res = self.auth(self.agent.get(self.url(path))).call();
        self.reply(res)
    }

    pub(crate) fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Result<Reply, ClientError> {
        let mut req = self.auth(self.agent.post(self.url(path))).header("Content-Type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let text = serde_json::to_string(body).map_err(|e| ClientError::new(exit::BAD_INPUT, e.to_string()))?;
        self.reply(req.send(text))
    }

    /// Opens a server-sent event stream and calls `on_event(id, type, data)` for each event
    /// until the stream ends or `on_event` returns false.
    pub(crate) fn events(
        &self,
        path: &str,
        mut on_event: impl FnMut(Option<&str>, &str, &str) -> bool,
    ) -> Result<(), ClientError> {
        let res = self.auth(self.agent.get(self.url(path))).header("Accept", "text/event-stream").call();
        let res = match res {
            Ok(r) => r,
            Err(e) => return Err(self.unreachable(&e)),
        };
        if res.status().as_u16() >= 400 {
            let status = res.status().as_u16();
            let mut res = res;
            let body = res.body_mut().read_to_string().unwrap_or_default();
            return Err(api_error(status, &serde_json::from_str(&body).unwrap_or(Value::String(body))));
        }
        let reader = std::io::BufReader::new(res.into_body().into_reader());
        let (mut id, mut kind, mut data) = (None::<String>, String::new(), String::new());
        for line in reader.lines() {
            let line = line.map_err(|e| ClientError::new(exit::UNAVAILABLE, format!("the event stream broke: {e}")))?;
            if line.is_empty() {
                if !data.is_empty() || !kind.is_empty() {
                    let k = if kind.is_empty() { "message" } else { kind.as_str() };
                    if !on_event(id.as_deref(), k, data.trim_end_matches('\n')) {
                        return Ok(());
                    }
                }
                kind.clear();
                data.clear();
                continue;
            }
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
                data.push('\n');
            }
        }
        Ok(())
    }

    fn unreachable(&self, e: &ureq::Error) -> ClientError {
        ClientError::new(
            exit::UNAVAILABLE,
            format!("cannot reach the server at {} ({e}); is `atmo serve` running? (--server, ATMO_SERVER)", self.base),
        )
    }

    fn reply(&self, res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Reply, ClientError> {
        let mut res = res.map_err(|e| self.unreachable(&e))?;
        let status = res.status().as_u16();
        let text = res
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| ClientError::new(exit::UNAVAILABLE, format!("cannot read the server's answer: {e}")))?;
        let body: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if status >= 400 { Err(api_error(status, &body)) } else { Ok(Reply { status, body }) }
    }
}

/// An API error body `{code, message, details}` as a message and exit code.
pub(crate) fn api_error(status: u16, body: &Value) -> ClientError {
    let code = match status {
        400 | 413 | 415 | 422 => exit::BAD_INPUT,
        401 | 403 => exit::UNAUTHORIZED,
        404 => exit::NOT_FOUND,
        409 => exit::CONFLICT,
        _ => exit::UNAVAILABLE,
    };
    // Server text is cleaned of control characters before it reaches the terminal.
    let mut message = match body {
        Value::Object(o) => format!(
            "{} ({}): {}",
            clean(o.get("code").and_then(Value::as_str).unwrap_or("ERROR")),
            status,
            clean(o.get("message").and_then(Value::as_str).unwrap_or(""))
        ),
        Value::String(s) if !s.is_empty() => format!("HTTP {status}: {}", clean(s)),
        _ => format!("HTTP {status}"),
    };
    let problems = body.pointer("/details/errors").and_then(Value::as_array);
    for p in problems.into_iter().flatten() {
        let line = match (p.get("field").and_then(Value::as_str), p.get("message").and_then(Value::as_str)) {
            (Some(""), Some(m)) => clean(m).into_owned(),
            (Some(f), Some(m)) => format!("{}: {}", clean(f), clean(m)),
            _ => clean(&p.as_str().map_or_else(|| p.to_string(), str::to_owned)).into_owned(),
        };
        // A message that already names its only problem does not repeat it.
        if message.ends_with(&line) {
            continue;
        }
        message.push_str("\n  - ");
        message.push_str(&line);
    }
    ClientError::new(code, message)
}
