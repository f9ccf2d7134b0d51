//! The worker templates in other languages, run with the real interpreters.

use std::time::Duration;

use atmo_workers::manifest::CommandSpec;
use atmo_workers::{
    ActionDefinition, BankSpec, ErrorCategory, Manifest, RequestStatus, RetryPolicy, SubmitOptions, SubmitRequest,
    WorkerManager,
};
use serde_json::json;

use crate::support::*;

fn example_manifest() -> Manifest {
    let mut b = Manifest::builder("example").version("1.0.0").max_concurrent_tasks(4);
    for a in ["ADD", "FAIL", "REVERSE", "SLEEP", "WORD_COUNT"] {
        b = b.action(ActionDefinition::new(a).lenient());
    }
    b.build().unwrap()
}

/// The template's source file run by its interpreter or, when `installed` names an environment
/// variable that is set, the command in it (split on whitespace): CI points it at the
/// `atmo-worker` command of the installed package, to test what users install.
async fn template_bank(interpreter: &str, script: &str, installed: &str) -> WorkerManager {
    let (program, args) = match std::env::var(installed) {
        Ok(cmd) if !cmd.trim().is_empty() => {
            let mut words = cmd.split_whitespace().map(str::to_owned);
            (words.next().unwrap(), words.collect())
        }
        _ => {
            let program = crate::support::interpreter(interpreter)
                .unwrap_or_else(|| panic!("`{interpreter}` is needed to test the {script} template"));
            (program, vec![repo_root().join(script).to_string_lossy().into_owned()])
        }
    };
    let m = manager().await;
    let command = CommandSpec { program, args, env: Default::default(), working_dir: None };
    m.initialize_process_bank(
        BankSpec::new("template", example_manifest()).workers(2).command(command).process_config(fast_config()),
    )
    .await
    .unwrap();
    m
}

async fn exercise(m: WorkerManager) {
    let r = run(&m, "ADD", json!({"a": 2, "b": 3.5}), SubmitOptions::new()).await;
    assert_eq!(r.payload.unwrap()["sum"], 5.5);
    let r = run(&m, "WORD_COUNT", json!({"text": "the cat and the hat"}), SubmitOptions::new()).await;
    let p = r.payload.unwrap();
    assert_eq!((p["words"].as_u64(), p["unique"].as_u64(), p["counts"]["the"].as_u64()), (Some(5), Some(4), Some(2)));
    let r = run(&m, "REVERSE", json!({"text": "atmo"}), SubmitOptions::new()).await;
    assert_eq!(r.payload.unwrap()["text"], "omta");

    // A validation error is recorded with its category and not retried.
    let r = run(&m, "ADD", json!({"a": "x", "b": 1}), SubmitOptions::new().retry(quick_retries(3))).await;
    assert_eq!(r.status, RequestStatus::Failed);
    let e = r.error.unwrap();
    assert_eq!((e.code.as_str(), e.category, r.attempts), ("INVALID_PARAMETERS", ErrorCategory::Validation, 1));
    // A retryable failure is retried under the policy.
    let r = run(
        &m,
        "FAIL",
        json!({"code": "FLAKY", "category": "network", "retryable": true}),
        SubmitOptions::new().retry(quick_retries(2)),
    )
    .await;
    assert_eq!((r.status, r.attempts), (RequestStatus::Failed, 3));
    assert_eq!(r.error.unwrap().code, "FLAKY");

    // A timed-out handler is cancelled cooperatively; the process lives on.
    let r = run(
        &m,
        "SLEEP",
        json!({"ms": 60_000}),
        SubmitOptions::new().timeout(Duration::from_millis(200)).retry(RetryPolicy::none()),
    )
    .await;
    assert_eq!(r.status, RequestStatus::TimedOut);

    // Progress reaches the request while it runs.
    let id = m.submit("SLEEP", json!({"ms": 1500}), SubmitOptions::new()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = m.get_request(id).await.unwrap().progress {
            assert_eq!(p.message.as_deref(), Some("sleeping"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(m.wait_timeout(id, Duration::from_secs(10)).await.unwrap().success);

    // Many at once, pipelined, each answered once.
    let requests: Vec<SubmitRequest> = (0..2000).map(|i| SubmitRequest::new("ADD", json!({"a": i, "b": 1}))).collect();
    let results = m.submit_many_and_wait(requests).await.unwrap();
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.payload.as_ref().unwrap()["sum"], i + 1);
    }
    let metrics = m.metrics().await.unwrap();
    let bank = &metrics.bank_performance[0];
    assert_eq!((bank.protocol_errors, bank.worker_restarts), (0, 0));
    m.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_template_serves_the_example_manifest() {
    exercise(template_bank("python3", "workers/python/atmo_worker.py", "ATMO_TEST_PYTHON_WORKER").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_template_serves_the_example_manifest() {
    exercise(template_bank("node", "workers/node/atmo-worker.mjs", "ATMO_TEST_NODE_WORKER").await).await;
}
