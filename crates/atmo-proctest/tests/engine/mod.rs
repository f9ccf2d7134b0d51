//! The process executor against the test worker.

use std::collections::HashSet;
use std::time::Duration;

use atmo_workers::{BankSpec, BankStatus, ErrorCategory, EventType, RequestStatus, SubmitOptions, SubmitRequest};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_run_in_worker_processes_and_results_come_back() {
    let m = manager().await;
    test_bank(&m, "procs", 2).await;
    let r = run(&m, "ECHO", json!({"x": [1, 2, 3]}), SubmitOptions::new()).await;
    assert!(r.success, "{r:?}");
    let payload = r.payload.unwrap();
    assert_eq!(payload["params"], json!({"x": [1, 2, 3]}));
    assert_ne!(payload["pid"].as_u64().unwrap(), u64::from(std::process::id()), "ran in another process");
    let bank = m.banks().into_iter().find(|b| &*b.bank_id == "procs").unwrap();
    assert_eq!((bank.worker_count, bank.status), (2, BankStatus::Active));
    m.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_through_two_processes_complete_exactly_once() {
    let m = manager().await;
    test_bank(&m, "procs", 2).await;
    let requests: Vec<SubmitRequest> = (0..10_000).map(|i| SubmitRequest::new("ECHO", json!({"i": i}))).collect();
    let results = m.submit_many_and_wait(requests).await.unwrap();
    assert_eq!(results.len(), 10_000);
    let mut seen = HashSet::new();
    let mut pids = HashSet::new();
    for (i, r) in results.iter().enumerate() {
        assert!(r.success, "{r:?}");
        assert_eq!(r.attempts, 1);
        let p = r.payload.as_ref().unwrap();
        assert_eq!(p["params"]["i"], i, "each result belongs to its request");
        assert!(seen.insert(r.request_id));
        pids.insert(p["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 2, "both processes worked");
    let metrics = m.metrics().await.unwrap();
    assert_eq!(metrics.requests_by_status.get(&RequestStatus::Completed).copied().unwrap_or(0), 10_000);
    m.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_is_restarted_and_its_request_retried_once() {
    let m = manager().await;
    test_bank(&m, "procs", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let id = m
        .submit(
            "PID_FILE",
            json!({"path": pid_file.to_str().unwrap(), "ms": 30_000}),
            SubmitOptions::new().retry(quick_retries(2)),
        )
        .await
        .unwrap();
    let pid = loop {
        if let Ok(s) = std::fs::read_to_string(&pid_file)
            && let Ok(p) = s.trim().parse::<i32>()
        {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Harvested as started within milliseconds of being handed to the process.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while m.get_request(id).await.unwrap().status != RequestStatus::Processing {
        assert!(std::time::Instant::now() < deadline, "never seen processing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    let r = m.wait_timeout(id, Duration::from_secs(30)).await.unwrap();
    assert!(r.success, "{r:?}");
    assert_eq!(r.attempts, 2);
    let payload = r.payload.unwrap();
    assert_eq!(payload["attempt"], 2);
    assert_ne!(payload["pid"].as_i64().unwrap(), i64::from(pid), "ran on the restarted process");
    let lifecycle = m.get_lifecycle(id).await.unwrap();
    let lost = lifecycle.request.errors.iter().find(|e| e.code == "WORKER_LOST").expect("the lost attempt is recorded");
    assert_eq!(lost.category, ErrorCategory::System);
    assert!(lost.message.contains("exited"), "{}", lost.message);
    let perf = m.load_balancing_report();
    assert!(!format!("{perf:?}").is_empty());
    let metrics = m.metrics().await.unwrap();
    let bank = metrics.bank_performance.iter().find(|b| &*b.bank_id == "procs").unwrap();
    assert_eq!(bank.worker_restarts, 1);
    // Completed exactly once.
    assert_eq!(metrics.requests_by_status.get(&RequestStatus::Completed).copied().unwrap_or(0), 1);
    m.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_handler_times_out_its_process_is_replaced_and_later_requests_succeed() {
    let m = manager().await;
    test_bank(&m, "procs", 1).await;
    let before = run(&m, "ECHO", json!({}), SubmitOptions::new()).await.payload.unwrap()["pid"].as_u64().unwrap();
    let r = run(
        &m,
        "HANG",
        json!({}),
        SubmitOptions::new().timeout(Duration::from_millis(200)).retry(atmo_workers::RetryPolicy::none()),
    )
    .await;
    assert_eq!(r.status, RequestStatus::TimedOut);
    assert!(!r.success);
    // The process ignores `cancel-task`: after the grace period it is killed and replaced.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let after = loop {
        let r = run(&m, "ECHO", json!({}), SubmitOptions::new().retry(quick_retries(3))).await;
        assert!(r.success, "{r:?}");
        let pid = r.payload.unwrap()["pid"].as_u64().unwrap();
        if pid != before {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "the hung process was never replaced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!process_exists(u32::try_from(before).unwrap()), "the hung process was killed and reaped");
    assert_ne!(after, before);
    m.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooperative_handler_stops_on_cancel_and_its_process_lives_on() {
    let m = manager().await;
    test_bank(&m, "procs", 1).await;
    let id = m.submit("SLEEP", json!({"ms": 30_000}), SubmitOptions::new()).await.unwrap();
    let pid_before = run(&m, "ECHO", json!({}), SubmitOptions::new()).await.payload.unwrap()["pid"].as_u64().unwrap();
    m.cancel(id).await.unwrap();
    assert_eq!(m.get_request(id).await.unwrap().status, RequestStatus::Cancelled);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = run(&m, "ECHO", json!({}), SubmitOptions::new()).await;
    assert_eq!(r.payload.unwrap()["pid"].as_u64().unwrap(), pid_before, "no restart was needed");
    let metrics = m.metrics().await.unwrap();
    assert_eq!(metrics.bank_performance[0].worker_restarts, 0);
    m.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversize_lines_are_counted_protocol_errors_and_never_results() {
    let m = manager().await;
    let mut config = fast_config();
    config.max_line_bytes = 1024 * 1024;
    m.initialize_process_bank(BankSpec::new("procs", test_manifest()).command(test_worker(&[])).process_config(config))
        .await
        .unwrap();
    let r = run(&m, "GARBAGE", json!({}), SubmitOptions::new()).await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.payload.unwrap()["garbage"], "sent");
    // Malformed, unknown type, a reply for a request it does not hold, an oversize line.
    let metrics = m.metrics().await.unwrap();
    assert_eq!(metrics.bank_performance[0].protocol_errors, 4);
    assert_eq!(metrics.bank_performance[0].worker_restarts, 0);
    // The forged reply recorded nothing.
    assert_eq!(metrics.total_requests, 1);
    let r = run(&m, "ECHO", json!({"after": true}), SubmitOptions::new()).await;
    assert_eq!(r.payload.unwrap()["params"]["after"], true);
    m.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_request_and_its_events() {
    let m = manager().await;
    test_bank(&m, "procs", 1).await;
    let mut events = m.subscribe().only([EventType::RequestProgress]);
    let id = m.submit("PROGRESS", json!({"ms": 2000}), SubmitOptions::new()).await.unwrap();
    // Visible on the request while it runs...
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let progress = loop {
        if let Some(p) = m.get_request(id).await.unwrap().progress {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "no progress on the request");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!((progress.percent, progress.message.as_deref()), (50.0, Some("half way")));
    assert_eq!(m.get_lifecycle(id).await.unwrap().request.progress.map(|p| p.percent), Some(50.0));
    // ...and as an event.
    let ev =
        tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut events)).await.unwrap().unwrap();
    let text = format!("{ev:?}");
    assert!(text.contains("half way") && text.contains(&id.to_string()), "{text}");
    assert!(m.wait_timeout(id, Duration::from_secs(10)).await.unwrap().success);
    m.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_that_never_get_ready_or_announce_something_else_are_refused() {
    let m = manager().await;
    let mut config = fast_config();
    config.ready_timeout = Duration::from_millis(300);
    let e = m
        .initialize_process_bank(
            BankSpec::new("silent", test_manifest())
                .command(test_worker(&["never-ready"]))
                .process_config(config.clone()),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("did not send `worker-ready` within 300 ms"), "{e}");
    let e = m
        .initialize_process_bank(
            BankSpec::new("wrong", test_manifest())
                .command(test_worker(&["wrong-manifest"]))
                .process_config(config.clone()),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("manifest `other`, the bank runs `test`"), "{e}");
    let e = m
        .initialize_process_bank(
            BankSpec::new("gone", test_manifest())
                .command(test_worker(&["exit-at-start"]))
                .process_config(config.clone()),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("exited before sending `worker-ready`"), "{e}");
    let mut missing = test_worker(&[]);
    missing.program = "/nonexistent/atmo-worker".into();
    let e = m
        .initialize_process_bank(BankSpec::new("missing", test_manifest()).command(missing).process_config(config))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot start `/nonexistent/atmo-worker`"), "{e}");
    assert!(m.banks().is_empty(), "no refused bank was registered");
    m.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_marks_the_bank_error_and_emits_worker_error() {
    let m = manager().await;
    let mut config = fast_config();
    config.crash_loop_threshold = 3;
    m.initialize_process_bank(
        BankSpec::new("crashy", test_manifest()).command(test_worker(&[])).process_config(config),
    )
    .await
    .unwrap();
    let mut events = m.subscribe().only([EventType::WorkerError, EventType::BankStatusChanged]);
    // Three crashes in a row, one request each.
    for _ in 0..3 {
        let r = run(&m, "EXIT", json!({}), SubmitOptions::new().retry(atmo_workers::RetryPolicy::none())).await;
        assert_eq!(r.status, RequestStatus::Failed);
        assert_eq!(r.error.unwrap().code, "WORKER_LOST");
    }
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|s: &String| s.contains("Active")) {
        assert!(std::time::Instant::now() < deadline, "events so far: {seen:#?}");
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(20), futures::StreamExt::next(&mut events)).await
        else {
            panic!("events so far: {seen:#?}")
        };
        seen.push(format!("{ev:?}"));
    }
    // Every crash is a `worker-error` naming the worker; the third marks the bank `error`;
    // the next process starts fine and the bank is active again.
    let errors = seen.iter().filter(|s| s.contains("WorkerError") && s.contains("crashy/0")).count();
    assert!(errors >= 3, "{seen:#?}");
    let error_at =
        seen.iter().position(|s| s.contains("BankStatusChanged") && s.contains("Error")).expect("error status");
    let active_at = seen.iter().position(|s| s.contains("BankStatusChanged") && s.contains("Active")).unwrap();
    assert!(error_at < active_at, "{seen:#?}");
    assert!(seen[error_at - 1].contains("crashed 3 times"), "{seen:#?}");
    assert_eq!(m.banks()[0].status, BankStatus::Active);
    assert!(run(&m, "ECHO", json!({}), SubmitOptions::new()).await.success);
    m.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_no_child_process_behind() {
    let m = manager().await;
    test_bank(&m, "procs", 3).await;
    let mut pids = HashSet::new();
    let requests: Vec<SubmitRequest> = (0..300).map(|i| SubmitRequest::new("ECHO", json!({"i": i}))).collect();
    for r in m.submit_many_and_wait(requests).await.unwrap() {
        pids.insert(u32::try_from(r.payload.unwrap()["pid"].as_u64().unwrap()).unwrap());
    }
    assert!(!pids.is_empty());
    for p in &pids {
        assert!(process_exists(*p));
    }
    m.shutdown(Duration::from_secs(5)).await.unwrap();
    for p in &pids {
        assert!(!process_exists(*p), "worker process {p} is still there (or a zombie) after shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_bank_needs_a_command_and_no_handlers() {
    let m = manager().await;
    let e = m.initialize_process_bank(BankSpec::new("nocmd", test_manifest())).await.unwrap_err().to_string();
    assert!(e.contains("has no `command`"), "{e}");
    let spec = BankSpec::new("h", test_manifest())
        .command(test_worker(&[]))
        .handlers(atmo_workers::Handlers::new().on("ECHO", atmo_workers::Handler::sync(|_, p| Ok(p.clone()))));
    let e = m.initialize_process_bank(spec).await.unwrap_err().to_string();
    assert!(e.contains("handlers live in the processes"), "{e}");
    m.shutdown(Duration::from_secs(1)).await.unwrap();
}
