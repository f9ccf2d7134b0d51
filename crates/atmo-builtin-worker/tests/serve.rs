//! Each built-in manifest served by `atmo-builtin-worker` processes, through a process bank.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use atmo_workers::manifest::CommandSpec;
use atmo_workers::{BankSpec, RequestStatus, SubmitOptions, WorkerManager};
use serde_json::json;

fn command(manifest: &str) -> CommandSpec {
    CommandSpec {
        program: env!("CARGO_BIN_EXE_atmo-builtin-worker").into(),
        args: vec![manifest.into()],
        env: Default::default(),
        working_dir: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_built_in_manifest_is_served_by_worker_processes() {
    let manager = WorkerManager::builder().start().await.unwrap();
    for name in atmo_builtin_worker::manifest_names() {
        let manifest = atmo_builtin_worker::manifest(&name).unwrap();
        manager
            .initialize_process_bank(BankSpec::new(format!("{name}-procs"), manifest).command(command(&name)))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let hash = manager
        .submit_and_wait("HASH", json!({"data": "abc", "algorithm": "sha256"}), SubmitOptions::new())
        .await
        .unwrap();
    assert_eq!(
        hash.payload.unwrap()["hash"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "FIPS 180-2 test vector, computed in a worker process"
    );
    let pi = manager
        .submit_and_wait("MONTE_CARLO_PI", json!({"iterations": 100_000, "seed": 7}), SubmitOptions::new())
        .await
        .unwrap();
    let estimate = pi.payload.unwrap()["estimate"].as_f64().unwrap();
    assert!((estimate - std::f64::consts::PI).abs() < 0.05, "{estimate}");
    // Invalid parameters are refused at submission, before any process sees them.
    let err = manager.submit("HASH", json!({"algorithm": "md5"}), SubmitOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), "VALIDATION_FAILED", "{err}");
    let metrics = manager.metrics().await.unwrap();
    assert_eq!(metrics.requests_by_status.get(&RequestStatus::Completed).copied(), Some(2));
    manager.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[test]
fn an_unknown_manifest_is_refused_with_the_known_ones() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atmo-builtin-worker")).arg("nope").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no built-in manifest `nope`") && err.contains("computation"), "{err}");
}
