//! Submit, batch, read, result, lifecycle, cancel, query.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{app, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_then_read_the_request_result_and_lifecycle() {
    let app = app().await;
    let id = app
        .submit(json!({"taskId": "add", "parameters": {"a": 5, "b": 3}, "priority": 7, "clientId": "c1", "metadata": {"team": "math"}}))
        .await;
    let result = app.result(&id).await;
    assert_eq!(result["status"], "completed");
    assert_eq!(result["success"], true);
    assert_eq!(result["payload"], json!({"sum": 8.0}));

    let r = app.get(&format!("/v1/requests/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["requestId"], id.as_str());
    assert_eq!(r.body["priority"], 7);
    assert_eq!(r.body["clientId"], "c1");
    assert_eq!(r.body["metadata"]["team"], "math");
    assert!(r.body["history"].as_array().unwrap().len() >= 4, "{}", r.text);

    let l = app.get(&format!("/v1/requests/{id}/lifecycle")).await;
    assert_eq!(l.status, StatusCode::OK);
    assert_eq!(l.body["request"]["requestId"], id.as_str());
    assert_eq!(l.body["task"]["taskId"], "add");
    assert_eq!(l.body["bank"]["bankId"], "math-bank");
    assert_eq!(l.body["assignment"]["bankId"], "math-bank");
    assert_eq!(l.body["result"]["status"], "completed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_with_wait_returns_the_result_and_options_reach_the_engine() {
    let app = app().await;
    let r = app.post("/v1/requests?wait=5s", json!({"taskId": "add", "parameters": {"a": 1, "b": 2}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "completed");
    assert_eq!(r.body["result"]["payload"]["sum"], 3.0);

    // A delay makes it scheduled; a timeout and retries are recorded on the request.
    let r = app
        .post(
            "/v1/requests",
            json!({"taskId": "echo", "parameters": {}, "delayMs": 60000, "timeoutMs": 1500, "maxRetries": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "scheduled");
    let req = app.get(&format!("/v1/requests/{}", r.body["requestId"].as_str().unwrap())).await.body;
    assert_eq!(req["timeout"], 1500);
    assert_eq!(req["retry"]["maxRetries"], 1);
    assert!(req["runAt"].is_string());

    let r = app.post("/v1/requests", json!({"taskId": "echo", "runAt": "2999-01-01T00:00:00Z"})).await;
    assert_eq!(r.body["status"], "scheduled", "{}", r.text);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_from_the_body_or_the_header_return_the_first_request() {
    let app = app().await;
    let a = app.submit(json!({"taskId": "echo", "parameters": {"n": 1}, "idempotencyKey": "k-1"})).await;
    let b = app.submit(json!({"taskId": "echo", "parameters": {"n": 2}, "idempotencyKey": "k-1"})).await;
    assert_eq!(a, b);
    let mut req = app.request(Method::POST, "/v1/requests", Some(br#"{"taskId":"echo"}"#.to_vec()));
    req.headers_mut().insert("idempotency-key", "k-1".parse().unwrap());
    let r = app.send(req).await;
    assert_eq!(r.body["requestId"], a.as_str());
    // A header and a body that disagree are refused.
    let mut req =
        app.request(Method::POST, "/v1/requests", Some(br#"{"taskId":"echo","idempotencyKey":"x"}"#.to_vec()));
    req.headers_mut().insert("idempotency-key", "y".parse().unwrap());
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_all_or_nothing_and_names_the_failing_index() {
    let app = app().await;
    let r = app
        .post(
            "/v1/requests/batch",
            json!({"requests": [
                {"taskId": "add", "parameters": {"a": 1, "b": 1}},
                {"taskId": "add", "parameters": {"a": 2, "b": 2}, "priority": 9},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let ids = r.body["requestIds"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    for id in ids {
        assert_eq!(app.result(id.as_str().unwrap()).await["status"], "completed");
    }

    let before = app.get("/v1/requests").await.body["total"].as_u64().unwrap();
    // The engine refuses the second (a parameter problem): nothing is stored.
    let r = app
        .post(
            "/v1/requests/batch",
            json!({"requests": [{"taskId": "add", "parameters": {"a": 1, "b": 1}}, {"taskId": "add", "parameters": {"a": 1}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["code"], "VALIDATION_FAILED");
    assert_eq!(r.body["details"]["index"], 1);
    // The server refuses the third (an option problem).
    let r = app
        .post(
            "/v1/requests/batch",
            json!({"requests": [{"taskId": "echo"}, {"taskId": "echo"}, {"taskId": "echo", "priority": 0}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["details"]["index"], 2);
    // An unknown task in a batch: 422 with the index.
    let r = app.post("/v1/requests/batch", json!({"requests": [{"taskId": "echo"}, {"taskId": "nope"}]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["details"]["index"], 1);
    let r = app.post("/v1/requests/batch", json!({"requests": []})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/v1/requests").await.body["total"].as_u64().unwrap(), before);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_long_poll_answers_202_then_200() {
    let app = app().await;
    let id = app.submit(json!({"taskId": "slow", "parameters": {"ms": 600}})).await;
    let r = app.get(&format!("/v1/requests/{id}/result")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["requestId"], id.as_str());
    assert!(["pending", "assigned", "processing"].contains(&r.body["status"].as_str().unwrap()));
    // A short wait ends with 202 too.
    let r = app.get(&format!("/v1/requests/{id}/result?wait=50ms")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = app.get(&format!("/v1/requests/{id}/result?wait=30s")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "completed");
    assert_eq!(r.body["payload"]["slept"], 600);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_its_delete_alias_then_409_once_finished() {
    let app = app().await;
    let id = app.submit(json!({"taskId": "echo", "delayMs": 60000})).await;
    let r = app.post(&format!("/v1/requests/{id}/cancel"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
    let r = app.post(&format!("/v1/requests/{id}/cancel"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.body["code"], "CONFLICT");
    assert_eq!(r.body["details"]["status"], "cancelled");

    let id = app.submit(json!({"taskId": "echo", "delayMs": 60000})).await;
    let r = app.delete(&format!("/v1/requests/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/v1/requests/{id}")).await.body["status"], "cancelled");

    let id = app.submit(json!({"taskId": "add", "parameters": {"a": 1, "b": 1}})).await;
    app.result(&id).await;
    let r = app.delete(&format!("/v1/requests/{id}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["details"]["status"], "completed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_filter_sort_and_page() {
    let app = app().await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let client = if i % 2 == 0 { "even" } else { "odd" };
        ids.push(
            app.submit(json!({"taskId": "add", "parameters": {"a": i, "b": 0}, "priority": i + 1, "clientId": client, "metadata": {"i": i, "tag": "q"}}))
                .await,
        );
    }
    let failed = app.submit(json!({"taskId": "fail", "clientId": "odd"})).await;
    for id in &ids {
        app.result(id).await;
    }
    app.result(&failed).await;

    let r = app.get("/v1/requests?status=completed&clientId=even").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["total"], 3);
    let r = app.get("/v1/requests?status=completed,failed&clientId=odd").await;
    assert_eq!(r.body["total"], 4);
    let r = app.get("/v1/requests?status=failed&status=completed&taskId=fail").await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["requests"][0]["errors"][0]["code"], "BOOM");
    let r = app.get("/v1/requests?metadata.i=4").await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["requests"][0]["requestId"], ids[4].as_str());
    let r = app.get("/v1/requests?metadata=%7B%22tag%22%3A%22q%22%7D").await;
    assert_eq!(r.body["total"], 6, "{}", r.text);
    let r = app.get("/v1/requests?priorityMin=3&priorityMax=4").await;
    assert_eq!(r.body["total"], 2);
    let r = app.get("/v1/requests?bankId=math-bank&taskId=add").await;
    assert_eq!(r.body["total"], 6);
    let r = app.get("/v1/requests?createdFrom=2000-01-01T00:00:00Z&createdTo=2999-01-01T00:00:00Z&taskId=add").await;
    assert_eq!(r.body["total"], 6);
    let r = app.get("/v1/requests?createdTo=946684800000").await;
    assert_eq!(r.body["total"], 0);

    // Sorted by priority ascending, two per page, with a cursor.
    let r = app.get("/v1/requests?taskId=add&sort=priority&order=asc&limit=2").await;
    let prios: Vec<u64> =
        r.body["requests"].as_array().unwrap().iter().map(|r| r["priority"].as_u64().unwrap()).collect();
    assert_eq!(prios, vec![1, 2]);
    let cursor = r.body["nextCursor"].as_str().unwrap().to_owned();
    let r = app.get(&format!("/v1/requests?taskId=add&sort=priority&order=asc&limit=2&cursor={cursor}")).await;
    let prios: Vec<u64> =
        r.body["requests"].as_array().unwrap().iter().map(|r| r["priority"].as_u64().unwrap()).collect();
    assert_eq!(prios, vec![3, 4]);
    let r = app.get("/v1/requests?taskId=add&sort=priority&order=asc&limit=2&offset=4").await;
    assert_eq!(r.body["requests"][0]["priority"], 5);
    assert_eq!(r.body["nextCursor"], Value::Null, "the last page says so: {}", r.text);
    assert!(r.body.as_object().unwrap().contains_key("nextCursor"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_samples_throughput() {
    let app = app().await;
    for _ in 0..3 {
        let id = app.submit(json!({"taskId": "add", "parameters": {"a": 1, "b": 1}})).await;
        app.result(&id).await;
    }
    let completed = eventually(Duration::from_secs(3), || async {
        let r = app.get("/v1/metrics/history").await;
        let total: u64 = r.body["samples"].as_array()?.iter().map(|s| s["completed"].as_u64().unwrap_or(0)).sum();
        (total >= 3).then_some(r.body)
    })
    .await
    .expect("samples with the completions");
    assert_eq!(completed["intervalMs"], 50);
    let s = completed["samples"].as_array().unwrap().iter().find(|s| s["completed"].as_u64() > Some(0)).unwrap();
    assert!(s["p50Ms"].is_number() && s["p99Ms"].is_number(), "{s}");
    assert!(s["byStatus"]["completed"].is_number());
    app.stop().await;
}
