//! `/v1/events`: ids and types, filters, resuming with `Last-Event-ID`, lag notices.

use std::time::Duration;

use atmo_server::ServerConfig;
use axum::body::{Body, BodyDataStream};
use axum::http::{Method, StatusCode, header};
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{TestApp, app, app_with, config, engine};

#[derive(Debug, Clone)]
struct SseEvent {
    id: Option<u64>,
    event: String,
    data: Value,
}

struct SseReader {
    body: BodyDataStream,
    buf: String,
}

impl SseReader {
    async fn open(app: &TestApp, uri: &str, last_event_id: Option<u64>) -> SseReader {
        let mut req = app.request(Method::GET, uri, None);
        if let Some(id) = last_event_id {
            req.headers_mut().insert("last-event-id", id.to_string().parse().unwrap());
        }
        let res = app.router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
        SseReader { body: Body::into_data_stream(res.into_body()), buf: String::new() }
    }

    /// The next event (keep-alive comments skipped), or `None` after `limit`.
    async fn next(&mut self, limit: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && id.is_none() {
                    continue; // a comment
                }
                return Some(SseEvent { id, event, data: serde_json::from_str(&data).unwrap_or(Value::Null) });
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next()).await.ok()??.ok()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads until `f` holds; returns everything read.
    async fn until(&mut self, limit: Duration, mut f: impl FnMut(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        while let Some(e) = self.next(limit).await {
            let done = f(&e);
            seen.push(e);
            if done {
                return seen;
            }
        }
        panic!("condition not met; read {seen:#?}");
    }
}

const T: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_ids_and_types_and_follow_a_request() {
    let app = app().await;
    let mut sse = SseReader::open(&app, "/v1/events", None).await;
    let id = app.submit(json!({"taskId": "add", "parameters": {"a": 1, "b": 2}})).await;
    let seen = sse.until(T, |e| e.event == "request-completed" && e.data["requestId"] == id.as_str()).await;
    let types: Vec<&str> =
        seen.iter().filter(|e| e.data["requestId"] == id.as_str()).map(|e| e.event.as_str()).collect();
    assert!(types.contains(&"request-submitted") && types.contains(&"request-processing"), "{types:?}");
    for e in &seen {
        assert_eq!(e.data["type"], e.event.as_str());
        assert_eq!(e.data["seq"].as_u64(), e.id);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_by_request_bank_and_type() {
    let app = app().await;
    let a = app.submit(json!({"taskId": "echo", "delayMs": 300})).await;
    let b = app.submit(json!({"taskId": "echo", "delayMs": 300})).await;
    let mut only_a = SseReader::open(&app, &format!("/v1/events?requestId={a}"), None).await;
    let mut completions = SseReader::open(&app, "/v1/events?type=request-completed,request-failed", None).await;
    let mut bank = SseReader::open(&app, "/v1/events?bankId=math-bank&type=worker-busy", None).await;
    let seen = only_a.until(T, |e| e.event == "request-completed").await;
    assert!(seen.iter().all(|e| e.data["requestId"] == a.as_str()), "{seen:#?}");
    let mut done = Vec::new();
    while done.len() < 2 {
        let e = completions.next(T).await.unwrap();
        assert_eq!(e.event, "request-completed");
        done.push(e.data["requestId"].as_str().unwrap().to_owned());
    }
    assert!(done.contains(&a) && done.contains(&b));
    let e = bank.next(T).await.unwrap();
    assert_eq!(e.event, "worker-busy");
    assert!(e.data["workerId"].as_str().unwrap().starts_with("math-bank/"));

    let r = app.get("/v1/events?type=request-exploded").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["details"]["knownTypes"].as_array().unwrap().contains(&json!("request-completed")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_from_the_buffer() {
    let app = app().await;
    let mut sse = SseReader::open(&app, "/v1/events", None).await;
    let first = app.submit(json!({"taskId": "add", "parameters": {"a": 1, "b": 1}})).await;
    let seen = sse.until(T, |e| e.event == "request-completed" && e.data["requestId"] == first.as_str()).await;
    let mark = seen.last().unwrap().id.unwrap();
    drop(sse);
    // While disconnected:
    let second = app.submit(json!({"taskId": "add", "parameters": {"a": 2, "b": 2}})).await;
    app.result(&second).await;
    let mut resumed = SseReader::open(&app, "/v1/events", Some(mark)).await;
    let replay = resumed.until(T, |e| e.event == "request-completed" && e.data["requestId"] == second.as_str()).await;
    assert_eq!(replay.first().unwrap().id, Some(mark + 1), "the replay starts right after the mark");
    assert!(replay.iter().all(|e| e.id.unwrap() > mark));
    assert!(replay.iter().any(|e| e.event == "request-submitted" && e.data["requestId"] == second.as_str()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_past_the_buffer_or_lagging_yields_a_lagged_event() {
    let app = app_with(engine().await, ServerConfig { event_buffer: 16, ..config() }).await;
    // A live subscriber that does not read.
    let mut slow = SseReader::open(&app, "/v1/events", None).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(app.submit(json!({"taskId": "add", "parameters": {"a": i, "b": 0}})).await);
    }
    for id in &ids {
        app.result(id).await;
    }
    // Far more than 16 events were emitted: resuming from 1 starts with a gap notice.
    let mut resumed = SseReader::open(&app, "/v1/events", Some(1)).await;
    let first = resumed.next(T).await.unwrap();
    assert_eq!(first.event, "lagged");
    assert!(first.id.is_none());
    assert!(first.data["missed"].as_u64().unwrap() > 0);
    let next = resumed.next(T).await.unwrap();
    assert!(next.id.unwrap() > 2);
    // The subscriber that fell behind is told so instead of silently skipping.
    let seen = slow.until(T, |e| e.event == "lagged").await;
    assert!(seen.last().unwrap().data["missed"].as_u64().unwrap() > 0);
    app.stop().await;
}
