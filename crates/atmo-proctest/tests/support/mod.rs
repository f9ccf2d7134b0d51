//! Shared helpers: a manager, the `test` manifest, a process bank of the test worker.

use std::path::PathBuf;
use std::time::Duration;

use atmo_workers::manifest::CommandSpec;
use atmo_workers::{
    ActionDefinition, BankSpec, Manifest, ProcessConfig, RequestResult, RetryPolicy, SubmitOptions, WorkerManager,
};
use serde_json::Value;

pub const TEST_ACTIONS: [&str; 7] = ["ECHO", "EXIT", "GARBAGE", "HANG", "PID_FILE", "PROGRESS", "SLEEP"];

pub fn test_manifest() -> Manifest {
    let mut b = Manifest::builder("test").version("1.0.0").max_concurrent_tasks(4);
    for a in TEST_ACTIONS {
        b = b.action(ActionDefinition::new(a).lenient());
    }
    b.build().unwrap()
}

pub fn test_worker(args: &[&str]) -> CommandSpec {
    CommandSpec {
        program: env!("CARGO_BIN_EXE_atmo-test-worker").into(),
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        env: Default::default(),
        working_dir: None,
    }
}

/// Quick restarts and short graces, so the tests run fast.
pub fn fast_config() -> ProcessConfig {
    ProcessConfig {
        ready_timeout: Duration::from_secs(10),
        cancel_grace: Duration::from_millis(300),
        shutdown_grace: Duration::from_secs(2),
        restart_backoff: Duration::from_millis(20),
        max_restart_backoff: Duration::from_millis(200),
        ..ProcessConfig::default()
    }
}

pub async fn manager() -> WorkerManager {
    WorkerManager::builder().name("proctest").start().await.unwrap()
}

pub async fn test_bank(m: &WorkerManager, id: &str, workers: usize) {
    let spec =
        BankSpec::new(id, test_manifest()).workers(workers).command(test_worker(&[])).process_config(fast_config());
    m.initialize_process_bank(spec).await.unwrap();
}

pub fn quick_retries(max: u32) -> RetryPolicy {
    RetryPolicy { max_retries: max, base_delay: Duration::from_millis(10), jitter: 0.0, ..RetryPolicy::default() }
}

pub async fn run(m: &WorkerManager, task: &str, params: Value, options: SubmitOptions) -> RequestResult {
    let id = m.submit(task, params, options).await.unwrap();
    m.wait_timeout(id, Duration::from_secs(30)).await.unwrap()
}

/// Whether a process with this pid still exists (a zombie counts: it was not reaped).
pub fn process_exists(pid: u32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

/// Runs a command on PATH, if present (the templates need `python3` and `node`).
pub fn interpreter(name: &str) -> Option<String> {
    let ok = std::process::Command::new(name)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| name.to_owned())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}
