//! `/v1/cron`: runs are ordinary requests; pause, resume, delete; missed runs after a restart.

use std::time::Duration;

use atmo_server::ServerConfig;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, app, app_with, config, engine, eventually};

async fn runs(app: &TestApp, cron_id: &str) -> u64 {
    app.get(&format!("/v1/requests?metadata.cronId={cron_id}")).await.body["total"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_submits_ordinary_requests_until_paused_or_deleted() {
    let app = app().await;
    let r = app
        .post(
            "/v1/cron",
            json!({"name": "tick", "schedule": "* * * * * *", "taskId": "add", "parameters": {"a": 1, "b": 2}, "priority": 8, "clientId": "cron"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["missedRunPolicy"], "skip");
    assert!(r.body["nextRunAt"].is_string());

    let n = eventually(Duration::from_secs(4), || async {
        let n = runs(&app, &id).await;
        (n >= 1).then_some(n)
    })
    .await
    .expect("a run within a few seconds");
    assert!(n >= 1);
    let page = app.get(&format!("/v1/requests?metadata.cronId={id}&limit=1")).await.body;
    let run = &page["requests"][0];
    assert_eq!(run["taskId"], "add");
    assert_eq!(run["priority"], 8);
    assert_eq!(run["clientId"], "cron");
    assert_eq!(run["metadata"]["cronName"], "tick");
    assert!(run["metadata"]["cronScheduledAt"].is_string());
    let result = app.result(run["requestId"].as_str().unwrap()).await;
    assert_eq!(result["payload"]["sum"], 3.0);

    let list = app.get("/v1/cron").await.body;
    assert_eq!(list["schedules"][0]["id"], id.as_str());
    let got = app.get(&format!("/v1/cron/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body["runCount"].as_u64().unwrap() >= 1);

    let r = app.post(&format!("/v1/cron/{id}/pause"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["paused"], true);
    tokio::time::sleep(Duration::from_millis(300)).await; // a run in flight lands
    let paused_at = runs(&app, &id).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(runs(&app, &id).await, paused_at, "no run while paused");

    let r = app.post(&format!("/v1/cron/{id}/resume"), json!({})).await;
    assert_eq!(r.body["paused"], false);
    eventually(Duration::from_secs(4), || async { (runs(&app, &id).await > paused_at).then_some(()) })
        .await
        .expect("runs again once resumed");

    let r = app.delete(&format!("/v1/cron/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.get(&format!("/v1/cron/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "CRON_NOT_FOUND");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_delete = runs(&app, &id).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(runs(&app, &id).await, after_delete, "no run once deleted");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schedules_are_refused() {
    let app = app().await;
    let r = app.post("/v1/cron", json!({"name": "x", "schedule": "every day", "taskId": "add"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["code"], "INVALID_SCHEDULE");
    let r = app.post("/v1/cron", json!({"name": "x", "schedule": "0 * * * *", "taskId": "nope"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["details"]["knownTasks"].as_array().unwrap().contains(&json!("add")));
    let r = app
        .post(
            "/v1/cron",
            json!({"name": "x", "schedule": "0 * * * *", "taskId": "echo", "missedRunPolicy": "sometimes"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.post("/v1/cron", json!({"name": "x", "schedule": "0 * * * *", "taskId": "echo"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app.post("/v1/cron", json!({"name": "x", "schedule": "0 0 * * *", "taskId": "echo"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    for uri in ["/v1/cron/cron-missing/pause", "/v1/cron/cron-missing/resume"] {
        assert_eq!(app.post(uri, json!({})).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.delete("/v1/cron/cron-missing").await.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// Writes a state file as a service that stopped `down` ago would have left it.
fn state_file(path: &std::path::Path, policy: &str, down: Duration) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let then = atmo_workers::Timestamp::from_micros((now - down).as_micros() as i64).to_string();
    let job = json!({
        "id": format!("cron-{policy}"),
        "name": format!("every second, {policy}"),
        "schedule": "* * * * * *",
        "taskId": "echo",
        "parameters": {},
        "options": {},
        "missedRunPolicy": policy,
        "paused": false,
        "createdAt": then,
        "checkedThrough": then,
        "runCount": 0,
    });
    std::fs::write(path, json!({"version": 1, "jobs": [job]}).to_string()).unwrap();
}

async fn restarted(policy: &str) -> (TestApp, tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cron.json");
    state_file(&path, policy, Duration::from_secs(30));
    let app = app_with(engine().await, ServerConfig { cron_state_path: Some(path.clone()), ..config() }).await;
    let id = format!("cron-{policy}");
    // The file is rewritten once the whole catch-up was submitted.
    eventually(Duration::from_secs(3), || async {
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
        (saved["jobs"][0]["runCount"].as_u64() > Some(0)).then_some(())
    })
    .await
    .expect("runs after the restart");
    let job = app.get(&format!("/v1/cron/{id}")).await.body;
    (app, dir, job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_service_applies_the_missed_run_policy() {
    // 30 s down with a schedule of every second: ~28 missed, the last couple on time.
    let (app, _dir, job) = restarted("skip").await;
    assert!(job["skippedCount"].as_u64().unwrap() >= 25, "{job}");
    assert!(job["runCount"].as_u64().unwrap() <= 4, "{job}");
    app.stop().await;

    let (app, _dir, job) = restarted("run-once").await;
    assert!(job["skippedCount"].as_u64().unwrap() >= 24, "{job}");
    let n = job["runCount"].as_u64().unwrap();
    assert!((1..=5).contains(&n), "{job}");
    app.stop().await;

    let (app, dir, job) = restarted("run-all").await;
    assert_eq!(job["skippedCount"], 0, "{job}");
    assert!(job["runCount"].as_u64().unwrap() >= 28, "{job}");
    assert!(runs(&app, "cron-run-all").await >= 28);
    // The state file is rewritten with the progress.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("cron.json")).unwrap()).unwrap();
    assert!(saved["jobs"][0]["runCount"].as_u64().unwrap() >= 28, "{saved}");
    assert!(saved["jobs"][0]["lastRequestId"].is_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_survive_a_restart_through_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/cron.json");
    let app = app_with(engine().await, ServerConfig { cron_state_path: Some(path.clone()), ..config() }).await;
    let r = app
        .post(
            "/v1/cron",
            json!({"name": "hourly", "schedule": "0 * * * *", "taskId": "echo", "missedRunPolicy": "run-once"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap().to_owned();
    app.post(&format!("/v1/cron/{id}/pause"), json!({})).await;
    app.stop().await;

    let app = app_with(engine().await, ServerConfig { cron_state_path: Some(path), ..config() }).await;
    let job = app.get(&format!("/v1/cron/{id}")).await.body;
    assert_eq!(job["name"], "hourly");
    assert_eq!(job["paused"], true);
    assert_eq!(job["missedRunPolicy"], "run-once");
    // The binary's configured schedules: `ensure` updates by name instead of duplicating.
    let spec = atmo_server::CronSpec {
        name: "hourly".into(),
        schedule: "30 * * * *".into(),
        task_id: "echo".into(),
        parameters: json!({}),
        options: Default::default(),
        missed_run_policy: atmo_server::MissedRunPolicy::Skip,
    };
    let updated = app.server.cron().ensure(spec).unwrap();
    assert_eq!(updated.id, id);
    assert_eq!(app.server.cron().list().len(), 1);
    app.stop().await;
}
