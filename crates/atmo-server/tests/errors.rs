//! Every error status: 400 (validation, malformed, deep, query), 401, 404, 405, 409 (in
//! requests.rs), 413, 422, 429, 503.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use atmo_server::ServerConfig;
use atmo_testkit::hooked::{Health, HookedStore};
use atmo_workers::store::MemoryStore;
use atmo_workers::{BankSpec, StoreError, Task, WorkerManager};
use axum::http::{Method, StatusCode, header};
use serde_json::json;

use crate::common::{app, app_with, config, engine, eventually, handlers, manifest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_lists_every_problem() {
    let app = app().await;
    // Parameter problems only: the engine lists them all.
    let r = app.post("/v1/requests", json!({"taskId": "add", "parameters": {"a": "five"}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["code"], "VALIDATION_FAILED");
    let errors = r.body["details"]["errors"].as_array().unwrap();
    let fields: Vec<&str> = errors.iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"parameters.a") && fields.contains(&"parameters.b"), "{fields:?}");

    // Option problems and parameter problems together.
    let r = app
        .post(
            "/v1/requests",
            json!({"taskId": "add", "parameters": {"a": "five"}, "priority": 11, "timeoutMs": 0, "delayMs": -5, "runAt": "tomorrow", "maxRetries": -1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let fields: Vec<String> = r.body["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    for f in ["priority", "timeoutMs", "delayMs", "runAt", "maxRetries", "parameters.a", "parameters.b"] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    // Unknown fields are refused rather than ignored.
    let r = app.post("/v1/requests", json!({"taskId": "echo", "prio": 3})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("prio"), "{}", r.text);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tasks_are_422_with_the_known_ones() {
    let app = app().await;
    let r = app.post("/v1/requests", json!({"taskId": "multiply", "parameters": {}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["code"], "UNKNOWN_TASK");
    let known = r.body["details"]["knownTasks"].as_array().unwrap();
    assert!(known.contains(&json!("add")) && known.contains(&json!("slow")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_deep_json_are_400_and_large_bodies_413() {
    let app = app_with(engine().await, ServerConfig { max_body_bytes: 4096, ..config() }).await;
    let r = app.post_raw("/v1/requests", r#"{"taskId": "add", "#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "MALFORMED_JSON");
    assert!(r.body["details"]["line"].is_number());
    let r = app.post_raw("/v1/requests", "").await;
    assert_eq!(r.body["code"], "MALFORMED_JSON");
    let r = app.post_raw("/v1/requests", r#"{"taskId": 7}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let deep = format!(r#"{{"taskId":"echo","parameters":{{"x":{}}}}}"#, "[".repeat(10_000));
    let app2 = app_with(engine().await, config()).await;
    let r = app2.post_raw("/v1/requests", deep).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["code"], "JSON_TOO_DEEP");

    let big = json!({"taskId": "echo", "parameters": {"s": "x".repeat(10_000)}});
    let r = app.post("/v1/requests", big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.body["code"], "PAYLOAD_TOO_LARGE");
    app.stop().await;
    app2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_query_parameters_and_routes() {
    let app = app().await;
    let r = app.get("/v1/requests/not-a-uuid").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "INVALID_REQUEST_ID");
    let missing = "0190a6f2-1b2c-7d3e-8f40-5a6b7c8d9e0f";
    for uri in [
        format!("/v1/requests/{missing}"),
        format!("/v1/requests/{missing}/result"),
        format!("/v1/requests/{missing}/lifecycle"),
    ] {
        let r = app.get(&uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(r.body["code"], "NOT_FOUND");
    }
    let r = app.post(&format!("/v1/requests/{missing}/cancel"), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app.get("/v1/requests?status=done&limit=abc&sort=size&priorityMin=0").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["details"]["errors"].as_array().unwrap().len(), 4, "{}", r.text);
    let r = app.get("/v1/requests?stauts=pending").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["details"]["unknown"], json!(["stauts"]));
    let r = app.get("/v1/requests?cursor=garbage").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.get(&format!("/v1/requests/{missing}/result?wait=soon")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = app.get("/v2/nothing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "ROUTE_NOT_FOUND");
    let r = app.send(app.request(Method::PUT, "/v1/requests", None)).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["code"], "METHOD_NOT_ALLOWED");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_everything_but_probes_and_the_page() {
    let mut app = app_with(engine().await, ServerConfig { auth_token: Some("s3cret".into()), ..config() }).await;
    assert_eq!(app.get("/v1/metrics").await.status, StatusCode::OK);
    app.token = None;
    for uri in ["/v1/metrics", "/v1/requests", "/v1/banks", "/metrics", "/openapi.json", "/v1/events", "/v1/cron"] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(r.body["code"], "UNAUTHORIZED");
        assert_eq!(r.headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    }
    let r = app.post("/v1/requests", json!({"taskId": "echo"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    app.token = Some("wrong".into());
    assert_eq!(app.get("/v1/metrics").await.status, StatusCode::UNAUTHORIZED);
    // Only the event stream takes the token in the query.
    assert_eq!(app.get("/v1/metrics?token=s3cret").await.status, StatusCode::UNAUTHORIZED);
    app.token = None;
    for uri in ["/healthz", "/readyz", "/"] {
        assert_eq!(app.get(uri).await.status, StatusCode::OK, "{uri}");
    }
    let res = tower::ServiceExt::oneshot(app.router.clone(), app.request(Method::GET, "/v1/events?token=s3cret", None))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_429_with_retry_after() {
    // No bank: nothing drains the queue of two.
    let manager = WorkerManager::builder().configure(|b| b.queue_capacity(2)).start().await.unwrap();
    manager.register_task(Task::new("noop", "No-op"));
    let app = app_with(manager, ServerConfig { retry_after_secs: 3, ..config() }).await;
    app.submit(json!({"taskId": "noop"})).await;
    app.submit(json!({"taskId": "noop"})).await;
    let r = app.post("/v1/requests", json!({"taskId": "noop"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.body["code"], "QUEUE_FULL");
    assert_eq!(r.headers.get(header::RETRY_AFTER).unwrap(), "3");
    assert_eq!(r.body["details"]["capacity"], 2);
    let r = app.post("/v1/requests/batch", json!({"requests": [{"taskId": "noop"}]})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_is_503_with_retry_after_and_not_ready() {
    let app = app().await;
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    app.manager.shutdown(Duration::from_millis(100)).await.unwrap();
    let r = app.post("/v1/requests", json!({"taskId": "echo"})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["code"], "SHUTTING_DOWN");
    assert!(r.headers.get(header::RETRY_AFTER).is_some());
    let ready = eventually(Duration::from_secs(2), || async {
        let r = app.get("/readyz").await;
        (r.status == StatusCode::SERVICE_UNAVAILABLE).then_some(r)
    })
    .await
    .expect("readyz turns 503");
    assert!(ready.headers.get(header::RETRY_AFTER).is_some());
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    assert!(!app.server.is_ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_shutdown_turns_readiness_off() {
    let app = app().await;
    app.server.begin_shutdown();
    assert_eq!(app.get("/readyz").await.status, StatusCode::SERVICE_UNAVAILABLE);
    app.stop().await;
}

#[test]
fn binding_beyond_loopback_needs_a_token() {
    use atmo_server::check_bind;
    assert!(check_bind("127.0.0.1:80".parse().unwrap(), None).is_ok());
    assert!(check_bind("[::1]:80".parse().unwrap(), None).is_ok());
    assert!(check_bind("0.0.0.0:80".parse().unwrap(), None).is_err());
    assert!(check_bind("0.0.0.0:80".parse().unwrap(), Some("  ")).is_err());
    assert!(check_bind("10.1.2.3:80".parse().unwrap(), Some("t")).is_ok());
}

/// A store that stopped taking writes makes the service unready and refuses submissions with
/// 503 `STORE_FAILED`, with the store's reason and without `Retry-After` (it does not pass by
/// itself); liveness and reads are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_store_makes_the_service_unready() {
    let stopped = Arc::new(AtomicBool::new(false));
    let health: Health = {
        let stopped = stopped.clone();
        Arc::new(move || {
            if stopped.load(Ordering::SeqCst) {
                // What the SQLite store answers after a failed fsync.
                return Err(StoreError::Backend(Box::new(std::io::Error::other(
                    "fsync of the write-ahead log failed",
                ))));
            }
            Ok(())
        })
    };
    let store = HookedStore { health: Some(health), ..HookedStore::<MemoryStore>::default() };
    let manager = WorkerManager::builder().name("test").store(store).start().await.unwrap();
    manager.initialize_worker_bank(BankSpec::new("math-bank", manifest()).workers(1).handlers(handlers())).unwrap();
    let app = app_with(manager, config()).await;
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    assert!(app.server.is_ready());

    stopped.store(true, Ordering::SeqCst);
    let r = app.get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["code"], "STORE_FAILED");
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains("fsync of the write-ahead log failed"), "{message}");
    assert!(r.headers.get(header::RETRY_AFTER).is_none());
    assert!(!app.server.is_ready());
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    let metrics = app.get("/metrics").await;
    assert!(metrics.text.lines().any(|l| l == "atmo_ready 0"), "{}", metrics.text);
    // Submissions are refused the same way, not as an internal error; reads keep working.
    for (path, body) in
        [("/v1/requests", json!({"taskId": "echo"})), ("/v1/requests/batch", json!({"requests": [{"taskId": "echo"}]}))]
    {
        let r = app.post(path, body).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {}", r.text);
        assert_eq!(r.body["code"], "STORE_FAILED", "{path}");
        assert!(r.body["message"].as_str().unwrap().contains("fsync of the write-ahead log failed"), "{}", r.text);
        assert!(r.headers.get(header::RETRY_AFTER).is_none(), "{path}");
    }
    assert_eq!(app.get("/v1/requests").await.status, StatusCode::OK);

    stopped.store(false, Ordering::SeqCst);
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    assert_eq!(app.post("/v1/requests", json!({"taskId": "echo"})).await.status, StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_beyond_the_engine_limit_is_refused_naming_it() {
    let app = app().await;
    // 2^70 ms: once clamped to ~31,700 years, which switched the timeout off.
    let r = app
        .post(
            "/v1/requests",
            json!({"taskId": "add", "parameters": {"a": 1, "b": 2}, "timeoutMs": 1_180_591_620_717_411_303_424.0_f64}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["code"], "VALIDATION_FAILED");
    assert!(r.text.contains("max_timeout"), "{}", r.text);
}
