//! [`WorkerResponder`]: the Rust SDK for writing a process worker.
//!
//! A worker is a program that speaks the worker protocol (`docs/protocol.md`) on stdin and
//! stdout. With the responder it is a few lines: name the manifest, register a handler per
//! action, run.
//!
//! ```no_run
//! use atmo_workers::{Handler, responder::WorkerResponder};
//! use serde_json::json;
//!
//! fn main() -> std::io::Result<()> {
//!     WorkerResponder::new("math", "1.0.0")
//!         .concurrency(4)
//!         .on("ADD", Handler::sync(|_ctx, p| Ok(json!({"sum": p["a"].as_f64().unwrap_or(0.0) + p["b"].as_f64().unwrap_or(0.0)}))))
//!         .run()
//! }
//! ```
//!
//! Handlers are the engine's own [`Handler`]s: they get a [`TaskContext`] with the request id,
//! attempt, a cancellation token (cancelled when the engine sends `cancel-task`) and a progress
//! reporter (which sends `task-progress`). Up to `concurrency` tasks run at once on their own
//! threads (more may wait in the process's queue, see [`WorkerResponder::max_in_flight`]);
//! replies are written as they finish, flushed in batches. stdout belongs to the
//! protocol: log to stderr (the engine forwards it to its log with the worker id).

use std::io::{BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use atmo_core::protocol::{
    DEFAULT_MAX_LINE_BYTES, EngineMessage, ExecuteTask, Heartbeat, ManifestId, PROTOCOL_VERSION, TaskComplete,
    TaskProgress, WorkerMessage, WorkerReady,
};
use atmo_core::{
    CancellationToken, Clock, ErrorCategory, Handler, Handlers, Manifest, ProgressSink, RequestId, Resources,
    TaskContext, TaskError, Timestamp,
};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::lines::{Line, read_line_blocking};

/// Serves handlers over the worker protocol. See the [module docs](self).
#[derive(Debug)]
pub struct WorkerResponder {
    manifest: ManifestId,
    handlers: Handlers,
    concurrency: usize,
    max_in_flight: Option<usize>,
    resources: Resources,
    max_line_bytes: usize,
    clock: Arc<dyn Clock>,
}

impl WorkerResponder {
    /// A responder for manifest `name` at `version`, running one task at a time.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        WorkerResponder {
            manifest: ManifestId { name: name.into(), version: version.into() },
            handlers: Handlers::new(),
            concurrency: 1,
            max_in_flight: None,
            resources: Resources::new(),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            clock: Arc::new(crate::clock::SystemClock),
        }
    }

    /// A responder for `manifest`, with its name, version and `maxConcurrentTasks`.
    pub fn for_manifest(manifest: &Manifest) -> Self {
        WorkerResponder::new(manifest.name.clone(), manifest.version.clone())
            .concurrency(manifest.concurrency_per_worker())
    }

    /// Registers the handler of an action.
    pub fn on(mut self, action_id: impl Into<String>, handler: Handler) -> Self {
        self.handlers.insert(action_id, handler);
        self
    }

    /// Registers several handlers.
    pub fn handlers(mut self, handlers: Handlers) -> Self {
        for id in handlers.action_ids() {
            if let Some(h) = handlers.get(id) {
                self.handlers.insert(id, h.clone());
            }
        }
        self
    }

    /// How many tasks run at once (announced in `worker-ready`; at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How many tasks the engine may send before the first is answered (announced as
    /// `maxConcurrentTasks`; default: the concurrency). Tasks beyond the running ones wait in
    /// this process's queue: a deeper pipeline hides the round trip for short tasks, but a
    /// queued task's timeout is already running.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n.max(1));
        self
    }

    /// Injects a resource into every handler's context.
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// Where the times it reports come from (heartbeats, execution times; default: the system
    /// clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The longest line accepted from the engine.
    pub fn max_line_bytes(mut self, n: usize) -> Self {
        self.max_line_bytes = n;
        self
    }

    /// Serves on stdin and stdout until `shutdown` or the end of stdin.
    ///
    /// # Errors
    /// I/O errors on stdin or stdout.
    pub fn run(self) -> std::io::Result<()> {
        let stdin = std::io::stdin();
        self.serve(stdin.lock(), std::io::stdout())
    }

    /// Serves on any input and output (tests drive it with in-memory pipes).
    ///
    /// # Errors
    /// I/O errors on the input or output.
    pub fn serve<R: BufRead, W: Write + Send + 'static>(self, mut input: R, output: W) -> std::io::Result<()> {
        let (out_tx, out_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
        let writer = std::thread::Builder::new()
            .name("atmo-responder-writer".into())
            .spawn(move || write_loop(output, &out_rx))?;
        let mut actions: Vec<String> = self.handlers.action_ids().map(str::to_owned).collect();
        actions.sort();
        send(
            &out_tx,
            &WorkerMessage::WorkerReady(WorkerReady {
                protocol_version: PROTOCOL_VERSION,
                manifest: self.manifest.clone(),
                actions,
                max_concurrent_tasks: Some(self.max_in_flight.unwrap_or(self.concurrency).max(self.concurrency)),
                pid: Some(std::process::id()),
            }),
        );
        let env = Arc::new(Env {
            clock: self.clock.clone(),
            handlers: self.handlers,
            resources: Arc::new(self.resources),
            tokens: Mutex::new(FxHashMap::default()),
            out: out_tx.clone(),
            bank_id: Arc::from(std::env::var("ATMO_BANK_ID").unwrap_or_else(|_| "process".into()).as_str()),
            worker_id: Arc::from(std::env::var("ATMO_WORKER_ID").unwrap_or_else(|_| "process/0".into()).as_str()),
        });
        let (job_tx, job_rx) = crossbeam_channel::unbounded::<ExecuteTask>();
        let mut runners = Vec::new();
        for i in 0..self.concurrency {
            let env = env.clone();
            let rx = job_rx.clone();
            runners.push(
                std::thread::Builder::new().name(format!("atmo-responder-{i}")).spawn(move || run_loop(&env, &rx))?,
            );
        }
        drop(job_rx);
        let mut line = Vec::new();
        let result = loop {
            match read_line_blocking(&mut input, &mut line, self.max_line_bytes) {
                Err(e) => break Err(e),
                Ok(Line::Eof) => break Ok(()),
                Ok(Line::TooLong(_)) => {
                    eprintln!("atmo worker: ignoring a line longer than {} bytes", self.max_line_bytes);
                }
                Ok(Line::Complete) => {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice::<EngineMessage>(&line) {
                        Ok(EngineMessage::ExecuteTask(task)) => {
                            env.tokens.lock().insert(task.request_id, CancellationToken::new());
                            if job_tx.send(task).is_err() {
                                break Ok(());
                            }
                        }
                        Ok(EngineMessage::CancelTask(c)) => {
                            if let Some(t) = env.tokens.lock().get(&c.request_id) {
                                t.cancel();
                            }
                        }
                        Ok(EngineMessage::Heartbeat(_)) => send(
                            &out_tx,
                            &WorkerMessage::Heartbeat(Heartbeat { timestamp: Some(env.clock.now().as_millis()) }),
                        ),
                        Ok(EngineMessage::Shutdown(_)) => break Ok(()),
                        Err(e) => {
                            let text = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
                            eprintln!("atmo worker: ignoring a malformed message ({e}): {text}");
                        }
                    }
                }
            }
        };
        // Finish what is running, then let the writer drain and stop.
        drop(job_tx);
        for r in runners {
            let _ = r.join();
        }
        drop(env);
        drop(out_tx);
        let _ = writer.join();
        result
    }
}

struct Env {
    clock: Arc<dyn Clock>,
    handlers: Handlers,
    resources: Arc<Resources>,
    tokens: Mutex<FxHashMap<RequestId, CancellationToken>>,
    out: Sender<Vec<u8>>,
    bank_id: Arc<str>,
    worker_id: Arc<str>,
}

/// Sends `task-progress` lines.
struct ProgressLines(Sender<Vec<u8>>);

impl ProgressSink for ProgressLines {
    fn report(&self, request: RequestId, _attempt: u32, percent: f32, message: Option<String>) {
        send(&self.0, &WorkerMessage::TaskProgress(TaskProgress { request_id: request, progress: percent, message }));
    }
}

fn run_loop(env: &Env, rx: &Receiver<ExecuteTask>) {
    let progress: Arc<dyn ProgressSink> = Arc::new(ProgressLines(env.out.clone()));
    while let Ok(task) = rx.recv() {
        let started = env.clock.now();
        let token = env.tokens.lock().get(&task.request_id).cloned().unwrap_or_default();
        let outcome = match env.handlers.get(&task.task_id) {
            None => {
                let mut known: Vec<&str> = env.handlers.action_ids().collect();
                known.sort_unstable();
                Err(TaskError::fatal(
                    "UNKNOWN_TASK",
                    format!("this worker has no handler for `{}` (it has: {})", task.task_id, known.join(", ")),
                )
                .with_category(ErrorCategory::Validation))
            }
            Some(handler) => {
                let ctx = TaskContext::new(
                    task.request_id,
                    Arc::from(task.task_id.as_str()),
                    task.attempt,
                    env.bank_id.clone(),
                    env.worker_id.clone(),
                    Some(Timestamp::from_millis(task.deadline)),
                    token,
                    env.resources.clone(),
                    progress.clone(),
                );
                match catch_unwind(AssertUnwindSafe(|| handler.call_blocking(&ctx, &task.parameters))) {
                    Ok(r) => r,
                    Err(panic) => Err(TaskError::system(
                        "HANDLER_PANIC",
                        format!("the handler panicked: {}", crate::engine::panic_message(&*panic)),
                    )),
                }
            }
        };
        env.tokens.lock().remove(&task.request_id);
        let ms = env.clock.now().saturating_since(started).as_secs_f64() * 1000.0;
        let reply = match outcome {
            Ok(v) => TaskComplete::success(task.request_id, v, ms),
            Err(e) => TaskComplete::failure(task.request_id, &e, ms),
        };
        send(&env.out, &WorkerMessage::TaskComplete(reply));
    }
}

fn send(out: &Sender<Vec<u8>>, msg: &WorkerMessage) {
    let mut line = serde_json::to_vec(msg).unwrap_or_default();
    line.push(b'\n');
    // Fails only once the writer stopped, when nothing can be sent anyway.
    let _ = out.send(line);
}

fn write_loop<W: Write>(output: W, rx: &Receiver<Vec<u8>>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, output);
    while let Ok(line) = rx.recv() {
        if out.write_all(&line).is_err() {
            return;
        }
        while let Ok(line) = rx.try_recv() {
            if out.write_all(&line).is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{Value, json};

    /// An output the test can read after the responder finished.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(c: &Captured) -> Vec<Value> {
        String::from_utf8(c.0.lock().clone()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn execute(id: u128, task: &str, params: Value) -> String {
        serde_json::to_string(&EngineMessage::ExecuteTask(ExecuteTask {
            request_id: RequestId::from_u128(id),
            task_id: task.into(),
            parameters: params,
            attempt: 1,
            timestamp: 0,
            timeout_ms: 1000,
            deadline: 1000,
        }))
        .unwrap()
    }

    #[test]
    fn announces_itself_answers_every_task_and_stops_on_shutdown() {
        let input = [
            execute(1, "ADD", json!({"a": 2, "b": 3})),
            "this is not json".into(),
            execute(2, "NOPE", json!({})),
            execute(3, "FAIL", json!({})),
            r#"{"type":"heartbeat"}"#.into(),
            r#"{"type":"shutdown","graceMs":100}"#.into(),
            execute(4, "ADD", json!({"a": 1, "b": 1})),
        ]
        .join("\n");
        let out = Captured::default();
        WorkerResponder::new("math", "1.0.0")
            .concurrency(2)
            .on("ADD", Handler::sync(|_, p| Ok(json!(p["a"].as_i64().unwrap() + p["b"].as_i64().unwrap()))))
            .on("FAIL", Handler::sync(|_, _| Err(TaskError::retryable("UPSTREAM", "try later"))))
            .serve(input.as_bytes(), out.clone())
            .unwrap();
        let msgs = lines(&out);
        assert_eq!(msgs[0]["type"], "worker-ready");
        assert_eq!(msgs[0]["manifest"], json!({"name": "math", "version": "1.0.0"}));
        assert_eq!(msgs[0]["actions"], json!(["ADD", "FAIL"]));
        assert_eq!(msgs[0]["maxConcurrentTasks"], 2);
        let by_id =
            |id: u128| msgs.iter().find(|m| m["requestId"] == RequestId::from_u128(id).to_string()).cloned().unwrap();
        assert_eq!(by_id(1)["result"], 5);
        assert_eq!(by_id(2)["error"]["code"], "UNKNOWN_TASK");
        assert_eq!(by_id(2)["error"]["category"], "validation");
        assert_eq!(by_id(3)["error"]["retryable"], true);
        assert!(msgs.iter().any(|m| m["type"] == "heartbeat"));
        // Nothing after `shutdown` runs.
        assert!(!msgs.iter().any(|m| m["requestId"] == RequestId::from_u128(4).to_string()));
    }

    #[test]
    fn cancel_task_reaches_the_handler_and_progress_is_sent() {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // The input is fed line by line: the cancel arrives while the handler runs.
        struct Feed(std::sync::mpsc::Receiver<String>, Vec<u8>, usize);
        impl std::io::Read for Feed {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.2 >= self.1.len() {
                    match self.0.recv() {
                        Ok(l) => {
                            self.1 = format!("{l}\n").into_bytes();
                            self.2 = 0;
                        }
                        Err(_) => return Ok(0),
                    }
                }
                let n = buf.len().min(self.1.len() - self.2);
                buf[..n].copy_from_slice(&self.1[self.2..self.2 + n]);
                self.2 += n;
                Ok(n)
            }
        }
        let out = Captured::default();
        let out2 = out.clone();
        let server = std::thread::spawn(move || {
            WorkerResponder::new("slow", "")
                .on(
                    "WAIT",
                    Handler::sync(|ctx, _| {
                        ctx.progress(10.0, Some("waiting"));
                        while !ctx.is_cancelled() {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        Err(TaskError::fatal("STOPPED", "cancelled").with_category(ErrorCategory::Cancelled))
                    }),
                )
                .serve(std::io::BufReader::new(Feed(rx, Vec::new(), 0)), out2)
                .unwrap();
        });
        tx.send(execute(9, "WAIT", json!({}))).unwrap();
        let id = RequestId::from_u128(9).to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !lines(&out).iter().any(|m| m["type"] == "task-progress") {
            assert!(std::time::Instant::now() < deadline, "no progress line");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        tx.send(format!(r#"{{"type":"cancel-task","requestId":"{id}","reason":"timeout"}}"#)).unwrap();
        drop(tx);
        server.join().unwrap();
        let msgs = lines(&out);
        let progress = msgs.iter().find(|m| m["type"] == "task-progress").unwrap();
        assert_eq!((progress["progress"].as_f64(), progress["message"].as_str()), (Some(10.0), Some("waiting")));
        let done = msgs.iter().find(|m| m["type"] == "task-complete").unwrap();
        assert_eq!(done["error"]["code"], "STOPPED");
    }
}
