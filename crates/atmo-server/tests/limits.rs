//! Errors stay small and hostile text is refused: at most the first problems listed, echoed
//! values cut, control characters and overlong keys refused with 400 (never a 500).

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::common::app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_undeclared_parameters_gives_a_short_error() {
    let app = app().await;
    // 1,000 undeclared parameters of a strict action: every one is a problem.
    let mut params: Map<String, Value> = (0..1000).map(|i| (format!("p{i:04}"), json!(1))).collect();
    params.insert("a".into(), json!(1));
    params.insert("b".into(), json!(2));
    let r = app.post("/v1/requests", json!({"taskId": "add", "parameters": params})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let errors = r.body["details"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 21, "20 listed and one count: {}", r.text);
    assert_eq!(errors[0]["parameter"], "p0000");
    assert_eq!(errors[20]["kind"], "truncated");
    assert!(errors[20]["message"].as_str().unwrap().contains("980 more"), "{}", errors[20]);
    assert_eq!(r.body["message"], "invalid parameters for task `add`: 1000 problems");
    assert!(r.text.len() < 16 * 1024, "{} bytes", r.text.len());

    // Beyond the parameter limit nothing is looked at: one problem.
    let params: Map<String, Value> = (0..90_000).map(|i| (format!("q{i}"), json!(1))).collect();
    let r = app.post("/v1/requests", json!({"taskId": "add", "parameters": params})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["details"]["errors"][0]["kind"], "too_many_parameters", "{}", r.text);
    assert!(r.text.len() < 4 * 1024, "{} bytes", r.text.len());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_ids_are_not_echoed_whole() {
    let app = app().await;
    let task = "T".repeat(1_000_000);
    let r = app.post("/v1/requests", json!({"taskId": task})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.len() < 4 * 1024, "{} bytes", r.text.len());
    assert!(r.body["message"].as_str().unwrap().contains("1000000 characters"), "{}", r.body["message"]);

    let id = "x".repeat(30_000);
    let r = app.get(&format!("/v1/requests/{id}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.len() < 1024, "{} bytes", r.text.len());

    let r = app.get(&format!("/v1/requests?status={}", "y".repeat(30_000))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.len() < 2048, "{} bytes", r.text.len());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_and_overlong_options_are_refused() {
    let app = app().await;
    // A NUL in a queried metadata key was a 500 STORE_ERROR on SQLite.
    let r = app.get("/v1/requests?metadata.%00=x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["code"], "INVALID_QUERY");
    let r = app.get("/v1/requests?metadata=%7B%22a%1Bb%22%3A1%7D").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    let add = |extra: Value| {
        let mut body = json!({"taskId": "add", "parameters": {"a": 1, "b": 2}});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, field) in [
        (json!({"metadata": {"bad\u{0}key": 1}}), "metadata.bad\\u{0}key"),
        (json!({"metadata": {"k".repeat(200): 1}}), ""),
        (json!({"idempotencyKey": "k".repeat(257)}), "idempotencyKey"),
        (json!({"idempotencyKey": ""}), "idempotencyKey"),
        (json!({"clientId": "c".repeat(257)}), "clientId"),
    ] {
        let r = app.post("/v1/requests", add(extra.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{extra}: {}", r.text);
        assert_eq!(r.body["code"], "VALIDATION_FAILED");
        if !field.is_empty() {
            assert_eq!(r.body["details"]["errors"][0]["field"], field, "{}", r.text);
        }
    }
    // At the limits they are accepted.
    let r =
        app.post("/v1/requests", add(json!({"idempotencyKey": "k".repeat(256), "clientId": "c".repeat(256)}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let cron =
        |name: String| json!({"name": name, "schedule": "0 0 * * *", "taskId": "add", "parameters": {"a": 1, "b": 2}});
    let r = app.post("/v1/cron", cron("n".repeat(129))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app.post("/v1/cron", cron("bad\u{1b}[2J".into())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app.post("/v1/cron", cron("n".repeat(128))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.stop().await;
}
