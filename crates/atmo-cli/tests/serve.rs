//! `atmo serve` end to end: the real binary on a free port, driven by the `atmo` client
//! commands; a restart on the same SQLite file; SIGTERM while requests run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `atmo serve`, killed if a test fails half way.
struct Service {
    child: Child,
    url: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn start(dir: &Path, port: u16) -> Service {
        let config = dir.join("atmo.toml");
        let script = repo_root().join("workers/python/atmo_worker.py");
        let manifest = repo_root().join("workers/example-manifest.json");
        std::fs::write(
            &config,
            format!(
                "store = \"sqlite:data/atmo.db\"\ndrain = \"20s\"\n[builtins]\nonly = [\"crypto\"]\nworkers = 1\n\
                 [[banks]]\nid = \"python\"\nmanifest = {manifest:?}\nworkers = 2\n\
                 command = {{ program = \"python3\", args = [{script:?}] }}\n"
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_atmo"))
            .args(["serve", "--config", config.to_str().unwrap(), "--bind", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .env_remove("ATMO_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let s = Service { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while s.cli(&["metrics", "--json"]).status.code() != Some(0) {
            assert!(Instant::now() < deadline, "atmo serve did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_atmo"))
            .args(args)
            .env("ATMO_SERVER", &self.url)
            .env_remove("ATMO_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// SIGTERM, then waits for a clean exit.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "atmo serve exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "atmo serve did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_cli_drives_the_service_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let svc = Service::start(dir.path(), port);

    // submit --wait prints the result; the exit code says how it ended.
    let done = svc.json(&["submit", "HASH", r#"{"data":"abc"}"#, "--wait", "--json"]);
    assert_eq!(done["payload"]["hash"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let hash_id = done["requestId"].as_str().unwrap().to_owned();
    let failed = svc.cli(&["submit", "FAIL", r#"{"code":"NOPE","category":"validation"}"#, "--wait"]);
    assert_eq!(failed.status.code(), Some(1), "a failed request exits 1");
    assert!(stdout(&failed).contains("NOPE"));

    // Bad input: exit 2 with every problem listed.
    let bad = svc.cli(&["submit", "HASH", r#"{"data":5,"algorithm":"md5"}"#]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("parameters.data") && err.contains("parameters.algorithm"), "{err}");
    assert_eq!(err.matches("parameters.data").count(), 1, "each problem is printed once: {err}");
    assert_eq!(err.matches("must be a string").count(), 1, "each problem is printed once: {err}");

    // Stored text cannot drive the terminal: control characters are escaped, --json is exact.
    let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m";
    let id = stdout(&svc.cli(&[
        "submit",
        "HASH",
        r#"{"data":"x"}"#,
        "--client-id",
        hostile,
        "--meta",
        &format!("k={hostile}"),
    ]))
    .trim()
    .to_owned();
    svc.json(&["wait", &id, "--json"]);
    let shown = stdout(&svc.cli(&["get", &id]));
    assert!(!shown.chars().any(|c| c.is_control() && c != '\n'), "{shown:?}");
    assert!(shown.contains("\\u{1b}]0;pwned\\u{7}"), "{shown}");
    let exact = svc.json(&["get", &id, "--json"]);
    assert_eq!(exact["request"]["clientId"], hostile);
    let table = stdout(&svc.cli(&["query", "--client-id", hostile]));
    assert!(table.contains(&id) && !table.contains('\u{1b}'), "{table:?}");

    // Tasks and their parameters.
    let tasks = stdout(&svc.cli(&["tasks"]));
    assert!(tasks.contains("HASH") && tasks.contains("SLEEP"), "{tasks}");
    let hash = stdout(&svc.cli(&["tasks", "HASH"]));
    assert!(hash.contains("algorithm") && hash.contains("sha256") && hash.contains("default 5"), "{hash}");
    assert_eq!(svc.json(&["tasks", "SLEEP", "--json"])["parameters"][0]["maximum"], 600000.0);
    assert_eq!(svc.cli(&["tasks", "NOPE"]).status.code(), Some(3));
    assert_eq!(svc.cli(&["submit", "HASH", "{not json"]).status.code(), Some(2));

    // submit-many from JSON lines, through the Python process bank.
    let lines: String =
        (0..200).map(|i| format!("{{\"taskId\":\"ADD\",\"parameters\":{{\"a\":{i},\"b\":1}}}}\n")).collect();
    let file = dir.path().join("batch.jsonl");
    std::fs::write(&file, lines).unwrap();
    let many = svc.cli(&["submit-many", file.to_str().unwrap(), "--batch", "64", "--wait"]);
    assert_eq!(many.status.code(), Some(0), "{}", String::from_utf8_lossy(&many.stderr));
    let ids: Vec<String> = stdout(&many).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 200);
    let last = svc.json(&["get", &ids[199], "--json"]);
    assert_eq!(last["request"]["result"]["sum"], 200.0);
    assert_eq!(last["request"]["bankId"], "python");

    // Queries, cancel, not found, lists.
    let page = svc.json(&["query", "--status", "completed", "--task", "ADD", "--limit", "10", "--json"]);
    assert_eq!(page["total"], 200);
    assert_eq!(page["requests"].as_array().unwrap().len(), 10);
    assert_eq!(svc.cli(&["cancel", &hash_id]).status.code(), Some(4), "a finished request cannot be cancelled");
    assert_eq!(svc.cli(&["get", "0190a6f2-1b2c-7d3e-8f40-5a6b7c8d9e0f"]).status.code(), Some(3));
    let banks = svc.json(&["banks", "--json"]);
    let names: Vec<&str> = banks["banks"].as_array().unwrap().iter().filter_map(|b| b["bankId"].as_str()).collect();
    assert_eq!(names, ["builtin-crypto", "python"]);
    assert!(svc.cli(&["workers"]).status.success());
    let table = stdout(&svc.cli(&["query", "--task", "HASH"]));
    assert!(table.contains(&hash_id) && table.contains("completed"), "{table}");

    // Events: the next one, as JSON.
    let events = Command::new(env!("CARGO_BIN_EXE_atmo"))
        .args(["events", "--type", "request-completed", "-n", "1", "--json"])
        .env("ATMO_SERVER", &svc.url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let id = stdout(&svc.cli(&["submit", "REVERSE", r#"{"text":"abc"}"#])).trim().to_owned();
    let out = events.wait_with_output().unwrap();
    let event: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((event["type"].as_str(), event["requestId"].as_str()), (Some("request-completed"), Some(id.as_str())));

    // Restart on the same file: the same requests and results.
    svc.terminate();
    let svc = Service::start(dir.path(), port);
    let again = svc.json(&["get", &hash_id, "--json"]);
    assert_eq!(again["request"]["result"]["hash"], done["payload"]["hash"]);
    assert_eq!(svc.json(&["query", "--task", "ADD", "--json"])["total"], 200);
    svc.terminate();
}

#[test]
fn sigterm_while_requests_run_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let svc = Service::start(dir.path(), port);
    let lines: String = (0..12).map(|_| "{\"taskId\":\"SLEEP\",\"parameters\":{\"ms\":1500}}\n").collect();
    let file = dir.path().join("sleep.jsonl");
    std::fs::write(&file, lines).unwrap();
    let out = svc.cli(&["submit-many", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let ids: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 12);
    // Some are running (2 processes × 4), the rest wait.
    let deadline = Instant::now() + Duration::from_secs(30);
    while svc.json(&["query", "--status", "processing", "--json"])["total"].as_u64().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "nothing started");
        std::thread::sleep(Duration::from_millis(20));
    }
    svc.terminate();

    // After the restart every request finishes, exactly once each.
    let svc = Service::start(dir.path(), port);
    for id in &ids {
        let r = svc.json(&["wait", id, "--timeout", "60", "--json"]);
        assert_eq!(r["status"], "completed", "{r}");
    }
    let page = svc.json(&["query", "--task", "SLEEP", "--json"]);
    assert_eq!(page["total"], 12, "none lost, none duplicated");
    svc.terminate();
}

/// One HTTP/1.1 exchange on an open connection: the status, the head and the body.
fn exchange(s: &mut std::net::TcpStream, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    let body = body.unwrap_or("");
    let ct = if body.is_empty() { "" } else { "Content-Type: application/json\r\n" };
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{ct}Content-Length: {}\r\n\r\n{body}", body.len())
        .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the connection closed: {head}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut buf = vec![0u8; len];
    reader.read_exact(&mut buf).unwrap();
    (status, head, String::from_utf8_lossy(&buf).into_owned())
}

#[test]
fn sigterm_keeps_serving_during_the_drain_then_closes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let svc = Service::start(dir.path(), port);
    let addr = format!("127.0.0.1:{port}");
    let id = stdout(&svc.cli(&["submit", "SLEEP", r#"{"ms":6000}"#])).trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while svc.json(&["get", &id, "--json"])["request"]["status"] != "processing" {
        assert!(Instant::now() < deadline, "the request did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A keep-alive connection opened before the signal.
    let mut kept = std::net::TcpStream::connect(&addr).unwrap();
    assert_eq!(exchange(&mut kept, "GET", "/readyz", None).0, 200);

    let pid = svc.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while exchange(&mut kept, "GET", "/readyz", None).0 != 503 {
        assert!(Instant::now() < deadline, "/readyz did not turn 503");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Draining: the kept connection and new ones are served; reads work, writes get 503.
    let (status, _, body) = exchange(&mut kept, "GET", &format!("/v1/requests/{id}"), None);
    assert_eq!(status, 200, "{body}");
    let mut fresh = std::net::TcpStream::connect(&addr).expect("new connections are accepted during the drain");
    let (status, head, body) =
        exchange(&mut fresh, "POST", "/v1/requests", Some(r#"{"taskId":"HASH","parameters":{"data":"x"}}"#));
    assert_eq!(status, 503, "{body}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    assert!(body.contains("SHUTTING_DOWN"), "{body}");
    // A result wait during the drain gets the result.
    let (status, _, body) = exchange(&mut fresh, "GET", &format!("/v1/requests/{id}/result?wait=30s"), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"completed\""), "{body}");

    // Then the service stops and the listener is gone.
    let mut svc = svc;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = svc.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "atmo serve did not stop after the drain");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(std::net::TcpStream::connect(&addr).is_err(), "the listener is closed");
}

/// `atmo backup` next to a running service while a client keeps submitting: a service started
/// on the copy has every request whose submission was acknowledged before the backup began.
#[test]
fn a_backup_taken_under_load_restores_every_acknowledged_request() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let svc = Arc::new(Service::start(dir.path(), free_port()));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let submitter = {
        let (svc, stop, acked) = (svc.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let out = svc.cli(&["submit", "SLEEP", &format!("{{\"ms\":{}}}", 1 + n % 3)]);
                assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
                acked.lock().unwrap().push(stdout(&out).trim().to_owned());
                n += 1;
            }
        })
    };
    while acked.lock().unwrap().len() < 20 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = acked.lock().unwrap().clone();
    let copy = dir.path().join("backup.db");
    let store = format!("sqlite:{}", dir.path().join("data/atmo.db").display());
    let backup = svc.cli(&["backup", "--store", &store, copy.to_str().unwrap()]);
    assert_eq!(backup.status.code(), Some(0), "{}", String::from_utf8_lossy(&backup.stderr));
    assert!(stdout(&backup).starts_with("backed up "), "{}", stdout(&backup));
    // A second backup to the same file is refused; the first is kept.
    let again = svc.cli(&["backup", "--store", &store, copy.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let during = acked.lock().unwrap().len();
    while acked.lock().unwrap().len() < during + 5 {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    submitter.join().unwrap();
    Arc::into_inner(svc).unwrap().terminate();

    // Restore: the copy in place of a (new) service's database.
    let restored = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(restored.path().join("data")).unwrap();
    std::fs::copy(&copy, restored.path().join("data/atmo.db")).unwrap();
    let svc = Service::start(restored.path(), free_port());
    for id in &before {
        let r = svc.json(&["get", id, "--json"]);
        assert_eq!(r["request"]["requestId"].as_str(), Some(id.as_str()));
    }
    svc.terminate();
}

/// A `atmo serve` with a memory store and one process bank whose workers write a line to their
/// stderr (which the service logs at `info`), its stdout and stderr captured (not a terminal),
/// stopped with SIGTERM once it answers; returns (stdout, stderr).
fn serve_captured(extra: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("atmo.toml");
    let script = repo_root().join("workers/python/atmo_worker.py");
    let manifest = repo_root().join("workers/example-manifest.json");
    let shell = format!("echo from-the-worker >&2; exec python3 {}", script.display());
    std::fs::write(
        &config,
        format!(
            "[[banks]]\nid = \"python\"\nmanifest = {manifest:?}\nworkers = 1\n\
             command = {{ program = \"sh\", args = [\"-c\", {shell:?}] }}\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_atmo"))
        .args(["serve", "--store", "memory", "--no-builtins", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--config", config.to_str().unwrap()])
        .args(extra)
        .env("ATMO_LOG", "info")
        .env_remove("ATMO_TOKEN")
        .env_remove("ATMO_LOG_FORMAT")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut svc = Service { child, url };
    // Read both pipes as the service writes them, so a full pipe never blocks it.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut pipe.unwrap(), &mut text).unwrap();
            text
        })
    };
    let out = drain(svc.child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(svc.child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + Duration::from_secs(60);
    while svc.cli(&["metrics", "--json"]).status.code() != Some(0) {
        assert!(Instant::now() < deadline, "atmo serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    svc.terminate();
    drop(dir);
    (out.join().unwrap(), err.join().unwrap())
}

/// `--log-format json`: every line on stderr is one JSON object (the start banner and the
/// shutdown notices too), nothing on stdout.
#[test]
fn json_logs_are_one_object_per_line() {
    let (out, err) = serve_captured(&["--log-format", "json"]);
    assert_eq!(out, "", "stdout stays empty with JSON logs");
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert!(messages.contains(&"serving"), "{messages:?}");
    assert!(messages.contains(&"stopped"), "{messages:?}");
    let serving = lines.iter().find(|l| l["fields"]["message"] == "serving").unwrap();
    assert!(serving["fields"]["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{serving}");
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()), "{err}");
    assert!(err.contains("from-the-worker"), "what workers write to stderr is a JSON line too: {err}");
}

/// Text logs to a pipe (a journal, a file) carry no ANSI escape codes.
#[test]
fn text_logs_to_a_pipe_have_no_colour_codes() {
    let (out, err) = serve_captured(&[]);
    assert!(out.contains("Atmo Workers is serving on http://127.0.0.1:"), "{out}");
    let worker_line = err.lines().find(|l| l.contains("from-the-worker")).unwrap_or_else(|| panic!("{err}"));
    assert!(worker_line.contains(" INFO "), "{worker_line:?}");
    assert!(err.contains("atmo: stopped"), "{err}");
    assert!(!err.contains('\u{1b}') && !out.contains('\u{1b}'), "escape codes in {err:?}");
}
