//! `atmo-test-worker`: a process worker for the tests, built on
//! [`WorkerResponder`], that misbehaves on demand.
//!
//! Usage: `atmo-test-worker [MODE]` where MODE is
//! - `serve` (default): answer the `test` manifest's actions (see [`handlers`]);
//! - `never-ready`: never send `worker-ready`;
//! - `wrong-manifest`: announce manifest `other` with an action the bank lacks;
//! - `exit-at-start`: exit with status 3 at once.
//!
//! `ATMO_TEST_CONCURRENCY` sets the announced concurrency (default 4).

use std::io::Write;
use std::time::Duration;

use atmo_workers::responder::WorkerResponder;
use atmo_workers::{ErrorCategory, Handler, Handlers, TaskError};
use serde_json::{Value, json};

fn main() -> std::io::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let concurrency = std::env::var("ATMO_TEST_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    match mode.as_str() {
        "never-ready" => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        "exit-at-start" => std::process::exit(3),
        "wrong-manifest" => {
            WorkerResponder::new("other", "1.0.0").on("SOMETHING_ELSE", Handler::sync(|_, _| Ok(Value::Null))).run()
        }
        _ => WorkerResponder::new("test", "1.0.0").concurrency(concurrency).handlers(handlers()).run(),
    }
}

/// The `test` manifest's actions:
/// - `ECHO`: returns `{params, pid, attempt}`;
/// - `SLEEP {ms}`: sleeps, stopping early (with a `cancelled` error) on `cancel-task`;
/// - `HANG`: sleeps for an hour, ignoring `cancel-task`;
/// - `PID_FILE {path, ms}`: on the first attempt writes its pid to `path` and sleeps `ms`;
///   later attempts return at once;
/// - `GARBAGE`: writes malformed, unknown, stray and oversize lines to stdout, then succeeds;
/// - `PROGRESS`: reports 50 % then succeeds;
/// - `EXIT`: exits the process with status 7 mid-task.
fn handlers() -> Handlers {
    Handlers::new()
        .on(
            "ECHO",
            Handler::sync(|ctx, p| Ok(json!({"params": p, "pid": std::process::id(), "attempt": ctx.attempt}))),
        )
        .on(
            "SLEEP",
            Handler::sync(|ctx, p| {
                let ms = p["ms"].as_u64().unwrap_or(100);
                let end = std::time::Instant::now() + Duration::from_millis(ms);
                while std::time::Instant::now() < end {
                    if ctx.is_cancelled() {
                        return Err(TaskError::fatal("STOPPED", "cancelled").with_category(ErrorCategory::Cancelled));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(json!({"slept": ms, "pid": std::process::id()}))
            }),
        )
        .on(
            "HANG",
            Handler::sync(|_, _| {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(Value::Null)
            }),
        )
        .on(
            "PID_FILE",
            Handler::sync(|ctx, p| {
                if ctx.attempt == 1 {
                    let path = p["path"].as_str().unwrap_or_default();
                    std::fs::write(path, std::process::id().to_string())
                        .map_err(|e| TaskError::system("IO", e.to_string()))?;
                    std::thread::sleep(Duration::from_millis(p["ms"].as_u64().unwrap_or(10_000)));
                }
                Ok(json!({"attempt": ctx.attempt, "pid": std::process::id()}))
            }),
        )
        .on(
            "GARBAGE",
            Handler::sync(|_, _| {
                let mut out = std::io::stdout().lock();
                let stray = r#"{"type":"task-complete","requestId":"0190a4a1-0000-7000-8000-00000000beef","success":true,"result":"forged"}"#;
                let oversize = format!("{{\"type\":\"heartbeat\",\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
                for line in ["this is not json", r#"{"type":"launch-missiles"}"#, stray, &oversize] {
                    writeln!(out, "{line}").map_err(|e| TaskError::system("IO", e.to_string()))?;
                }
                out.flush().map_err(|e| TaskError::system("IO", e.to_string()))?;
                Ok(json!({"garbage": "sent"}))
            }),
        )
        .on(
            "PROGRESS",
            Handler::sync(|ctx, p| {
                ctx.progress(50.0, Some("half way"));
                std::thread::sleep(Duration::from_millis(p["ms"].as_u64().unwrap_or(50)));
                Ok(json!({"done": true}))
            }),
        )
        .on(
            "EXIT",
            Handler::sync(|_, _| {
                std::process::exit(7);
            }),
        )
}
