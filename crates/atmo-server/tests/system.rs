//! Banks, workers, metrics, Prometheus, probes, the dashboard page.

use axum::http::{StatusCode, header};
use serde_json::json;

use crate::common::app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banks_workers_and_metrics() {
    let app = app().await;
    let id = app.submit(json!({"taskId": "add", "parameters": {"a": 1, "b": 1}})).await;
    app.result(&id).await;
    let f = app.submit(json!({"taskId": "fail"})).await;
    app.result(&f).await;

    let r = app.get("/v1/banks").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let bank = &r.body["banks"][0];
    assert_eq!(bank["bankId"], "math-bank");
    assert_eq!(bank["workerCount"], 2);
    assert_eq!(bank["workers"], json!(["math-bank/0", "math-bank/1"]));
    assert_eq!(bank["performance"]["completed"], 1);
    assert!(bank["capabilities"].as_array().unwrap().iter().any(|c| c["taskId"] == "add"));
    assert!(r.body["tasks"].as_array().unwrap().iter().any(|t| t["taskId"] == "slow"));
    assert_eq!(r.body["manifests"][0]["name"], "math");

    let r = app.get("/v1/workers").await;
    assert_eq!(r.status, StatusCode::OK);
    let workers = r.body["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    let done: u64 = workers.iter().map(|w| w["messagesCompleted"].as_u64().unwrap()).sum();
    assert_eq!(done, 2);
    assert!(workers.iter().all(|w| w["status"] == "idle"));

    // A busy worker names the task it runs.
    let slow = app.submit(json!({"taskId": "slow", "parameters": {"ms": 500}})).await;
    let busy = crate::common::eventually(std::time::Duration::from_secs(3), || async {
        let r = app.get("/v1/workers").await;
        r.body["workers"].as_array()?.iter().find(|w| w["currentRequest"] == slow.as_str()).cloned()
    })
    .await
    .expect("a busy worker");
    assert_eq!(busy["status"], "busy");
    assert_eq!(busy["currentTaskId"], "slow");
    app.result(&slow).await;

    let r = app.get("/v1/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["requestsByStatus"]["completed"], 2);
    assert_eq!(r.body["requestsByStatus"]["failed"], 1);
    assert_eq!(r.body["totalRequests"], 3);
    assert_eq!(r.body["topErrors"][0]["code"], "BOOM");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_text_format() {
    let app = app().await;
    let id = app.submit(json!({"taskId": "add", "parameters": {"a": 1, "b": 1}})).await;
    app.result(&id).await;
    // The counters follow the event stream, which the server reads in the background: wait
    // until it has caught up with the completion and the worker going idle.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let r = loop {
        let r = app.get("/metrics").await;
        let caught_up = ["atmo_requests_completed_total 1", "atmo_workers{state=\"idle\"} 2"]
            .iter()
            .all(|want| r.text.lines().any(|l| l == *want));
        if caught_up || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let t = &r.text;
    for line in [
        "# TYPE atmo_requests gauge",
        "atmo_requests{status=\"completed\"} 1",
        "atmo_requests{status=\"timed_out\"} 0",
        "# TYPE atmo_requests_submitted_total counter",
        "atmo_requests_submitted_total 1",
        "atmo_requests_completed_total 1",
        "atmo_queue_depth 0",
        "atmo_bank_utilization{bank=\"math-bank\"} 0",
        "atmo_workers{state=\"idle\"} 2",
        "# TYPE atmo_request_processing_seconds summary",
        "atmo_request_processing_seconds_count 1",
        "atmo_ready 1",
    ] {
        assert!(t.lines().any(|l| l == line), "missing `{line}` in\n{t}");
    }
    // Every sample line is `name{labels} value` with a numeric value.
    for l in t.lines().filter(|l| !l.starts_with('#')) {
        let value = l.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value), "{l}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_the_dashboard() {
    let app = app().await;
    let r = app.get("/healthz").await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let r = app.get("/readyz").await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("ready")));
    let r = app.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    for id in ["count-completed", "count-failed", "failures", "throughput-chart", "submit-form", "banks"] {
        assert!(r.text.contains(&format!("data-testid=\"{id}\"")), "dashboard lacks {id}");
    }
    assert!(!r.text.contains("http://") && !r.text.contains("https://"), "the page loads nothing from elsewhere");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_describe_their_parameters_defaults_and_limits() {
    let app = crate::common::app().await;
    let r = app.get("/v1/tasks").await;
    assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.text);
    let tasks = r.body["tasks"].as_array().unwrap();
    let slow = tasks.iter().find(|t| t["taskId"] == "slow").unwrap();
    assert_eq!(slow["parameters"][0]["name"], "ms");
    assert_eq!(slow["parameters"][0]["type"], "integer");
    assert_eq!(slow["parameters"][0]["default"], 300);
    assert_eq!(slow["strict"], true);
    assert_eq!(slow["banks"], serde_json::json!(["math-bank"]));
    assert!(slow["timeoutMs"].as_u64().unwrap() > 0);
    assert_eq!(r.body["limits"]["priority"], serde_json::json!({"min": 1, "max": 10, "default": 5}));
    assert_eq!(r.body["limits"]["maxParameters"], 1024);

    let r = app.get("/v1/tasks/add").await;
    assert_eq!(r.status, axum::http::StatusCode::OK);
    assert_eq!(r.body["parameters"][1]["name"], "b");
    assert_eq!(r.body["parameters"][1]["required"], true);
    assert_eq!(r.body["limits"]["maxMetadataEntries"], 64);

    let r = app.get("/v1/tasks/nope").await;
    assert_eq!(r.status, axum::http::StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "TASK_NOT_FOUND");
    assert!(r.body["details"]["knownTasks"].as_array().unwrap().iter().any(|t| t == "add"));
    app.stop().await;
}
