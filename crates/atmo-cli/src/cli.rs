//! The command line: `atmo <command> ...`, parsed with clap's derive API.
//!
//! Each command is one variant of [`Command`]; a command with its own subcommands (`bench`)
//! has its own enum, so new ones (`serve`, `submit`, `bench durable`, ...) slot in beside the
//! existing ones without touching them.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Atmo Workers: worker banks with a tracked request lifecycle.
///
/// `atmo serve` runs the service (engine, banks, HTTP API, dashboard); the client commands
/// (`submit`, `wait`, `get`, `query`, `tasks`, ...) talk to it.
#[derive(Debug, Parser)]
#[command(name = "atmo", version = env!("ATMO_VERSION"), propagate_version = true)]
#[command(after_help = "Getting started:\n  \
                        atmo serve                   start the service (dashboard at http://127.0.0.1:7070/)\n  \
                        atmo tasks                   what can be submitted; `atmo tasks HASH` shows its parameters\n  \
                        atmo submit HASH '{\"data\":\"abc\"}' --wait   submit to it and wait for the result\n  \
                        atmo query --status failed   find requests\n  \
                        atmo exec HASH '{\"data\":\"abc\"}'  run one built-in request in this process, no service\n  \
                        atmo backup atmo-backup.db   copy the service's store while it runs\n  \
                        atmo completions bash        shell completions (bash, zsh, fish, ...)\n  \
                        atmo bench inproc            measure the engine (see `atmo bench --help`)\n\n\
                        Client exit codes: 0 done, 1 request failed/timed out/cancelled, 2 bad input,\n\
                        3 not found, 4 conflict, 5 server unreachable or unavailable, 6 unauthorized,\n\
                        7 still running when --timeout ran out.\n\n\
                        Set ATMO_LOG (e.g. ATMO_LOG=debug) to see the engine's logs on stderr.")]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The top-level commands, in the order `atmo --help` lists them: serving and submitting first.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the service: the engine, its banks, the HTTP API and the dashboard.
    ///
    /// With no configuration at all it stores requests in ./atmo-data/atmo.db (SQLite), runs a
    /// thread bank of every built-in manifest, and serves http://127.0.0.1:7070/. Settings come
    /// from a TOML file (--config), overridden by flags and environment variables. SIGINT or
    /// SIGTERM starts the drain (new submissions get 503, reads and result waits still work),
    /// lets running requests finish, and keeps the rest for the next start.
    Serve(ServeArgs),
    /// Submit a request to the service and print its id (or, with --wait, its result).
    Submit(crate::client::SubmitArgs),
    /// Submit requests from JSON lines (a file or stdin) in batches, with a progress bar.
    SubmitMany(crate::client::SubmitManyArgs),
    /// Wait for a request's result, with a spinner showing its status and progress.
    Wait(crate::client::WaitArgs),
    /// Show a request with its whole lifecycle (status history, errors, result).
    Get(crate::client::IdArgs),
    /// Query requests by status, task, client, bank, priority, time and metadata.
    Query(crate::client::QueryArgs),
    /// Cancel a pending, scheduled or running request.
    Cancel(crate::client::IdArgs),
    /// List the tasks that can be submitted, or show one task's parameters, defaults and limits.
    Tasks(crate::client::TasksArgs),
    /// Show the service's metrics.
    Metrics(crate::client::ListArgs),
    /// List the banks with their live figures.
    Banks(crate::client::ListArgs),
    /// List the workers: busy or idle, current request, tasks done, errors.
    Workers(crate::client::ListArgs),
    /// Follow the service's events as they happen (filter by request, bank or type).
    Events(crate::client::EventsArgs),
    /// Run one built-in request in this process and print its result as JSON.
    ///
    /// The parameters are validated against the action's manifest as a submission would be.
    /// Exit code 0 with the result on stdout; 2 for bad input (unknown action, malformed JSON,
    /// invalid parameters: every problem on stderr); 1 when the handler failed or timed out.
    Exec(ExecArgs),
    /// Serve a manifest as a process worker over the worker protocol on stdin/stdout.
    ///
    /// A process bank runs this as its command (`atmo worker crypto`); MANIFEST is a built-in
    /// manifest's name, or `bench`, the trivial manifest `atmo bench process` measures. Logs go
    /// to stderr; stdout carries the protocol (docs/protocol.md).
    Worker(WorkerArgs),
    /// Measure the engine against a plain-threads baseline run on the same machine.
    ///
    /// Every scenario prints one line: the engine's value, the baseline's value
    /// measured in the same run (interleaved with the engine's runs), and their
    /// ratio (engine / baseline).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Copy the SQLite store to a new file: a consistent snapshot, taken while the service runs.
    ///
    /// The copy holds every request committed when it began (every submission acknowledged
    /// by then) and is compacted; it is written beside DEST, synced, then renamed into place,
    /// so DEST is never a partial file. The store is read, never written or locked: the
    /// service keeps serving. Restore by stopping the service and putting the copy in place of
    /// the database file (docs/service.md).
    Backup(BackupArgs),
    /// Print shell completions for atmo (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the man page of atmo (roff), or write one page per command into a directory.
    Man(ManArgs),
}

/// Options of `atmo backup`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  atmo backup backups/atmo-$(date +%F).db\n  \
                        atmo backup --store sqlite:/var/lib/atmo/atmo.db /var/backups/atmo.db\n  \
                        atmo backup --config /etc/atmo/atmo.toml /var/backups/atmo.db")]
pub(crate) struct BackupArgs {
    /// The file to write; it must not exist yet (unless --force).
    #[arg(value_name = "DEST")]
    pub(crate) dest: std::path::PathBuf,
    /// The store to copy, `sqlite:PATH` [default: the configuration's, else
    /// sqlite:./atmo-data/atmo.db].
    #[arg(long, value_name = "STORE", env = "ATMO_STORE")]
    pub(crate) store: Option<String>,
    /// The service's TOML configuration file, to find its store.
    #[arg(long, short, value_name = "FILE", env = "ATMO_CONFIG")]
    pub(crate) config: Option<std::path::PathBuf>,
    /// Replace DEST if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Options of `atmo completions`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  atmo completions bash > ~/.local/share/bash-completion/completions/atmo\n  \
                        atmo completions zsh > ~/.zfunc/_atmo        (with fpath+=~/.zfunc)\n  \
                        atmo completions fish > ~/.config/fish/completions/atmo.fish")]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// Options of `atmo man`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  atmo man | man -l -\n  \
                        atmo man --dir /usr/local/share/man/man1     atmo.1, atmo-serve.1, ...")]
pub(crate) struct ManArgs {
    /// Write atmo.1 and a page per command (atmo-serve.1, ...) into this directory instead.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<std::path::PathBuf>,
}

/// How `atmo serve` writes its logs on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines (coloured only on a terminal, and not with NO_COLOR set).
    #[default]
    Text,
    /// One JSON object per line, for log shippers; the startup and shutdown notices too.
    Json,
}

/// Options of `atmo serve`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  atmo serve                               defaults: ./atmo-data/atmo.db, 127.0.0.1:7070\n  \
                        atmo serve --store memory --bind 127.0.0.1:8080\n  \
                        ATMO_TOKEN=s3cret atmo serve --bind 0.0.0.0:7070\n  \
                        atmo serve --config atmo.toml            (the file's format: docs/service.md)"
)]
pub(crate) struct ServeArgs {
    /// A TOML configuration file.
    #[arg(long, short, value_name = "FILE", env = "ATMO_CONFIG")]
    pub(crate) config: Option<std::path::PathBuf>,
    /// The address to listen on: IP:PORT, or a name resolving to loopback (localhost:7070)
    /// [default: 127.0.0.1:7070].
    #[arg(long, value_name = "ADDR", env = "ATMO_BIND")]
    pub(crate) bind: Option<String>,
    /// The bearer token API calls must carry (required off loopback).
    #[arg(long, value_name = "TOKEN", env = "ATMO_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Where requests live: `sqlite:PATH`, `memory`, or `postgres://USER@HOST/DB` (the cluster
    /// store, schema `atmo`) [default: sqlite:./atmo-data/atmo.db].
    #[arg(long, value_name = "STORE", env = "ATMO_STORE")]
    pub(crate) store: Option<String>,
    /// Do not start the thread banks of the built-in manifests.
    #[arg(long)]
    pub(crate) no_builtins: bool,
    /// Threads per built-in bank [default: the manifest's concurrency, at most the cores].
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) builtin_workers: Option<usize>,
    /// The format of the logs on stderr.
    #[arg(long, value_enum, value_name = "FORMAT", env = "ATMO_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Open the SQLite store without its integrity check (`PRAGMA quick_check`, which reads the
    /// whole file: about a second per few hundred MB). Damage is still caught when a read meets
    /// it, which then stops the store's writes.
    #[arg(long)]
    pub(crate) skip_integrity_check: bool,
}

/// Options of `atmo worker`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// The manifest to serve: computation, crypto, data-processing, ... or bench.
    pub(crate) manifest: String,
    /// Tasks run at once [default: the manifest's maxConcurrentTasks].
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) concurrency: Option<usize>,
    /// Tasks the engine may send before the first is answered (announced as
    /// maxConcurrentTasks) [default: the concurrency].
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) max_in_flight: Option<usize>,
}

/// Options of `atmo exec`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  atmo exec HASH '{\"data\": \"abc\", \"algorithm\": \"sha256\"}'\n  \
                        atmo exec MONTE_CARLO_PI '{\"iterations\": 1000000, \"seed\": 7}'\n  \
                        echo '{\"number\": 600851475143}' | atmo exec PRIME_FACTORIZATION -")]
pub(crate) struct ExecArgs {
    /// The action (task id), e.g. MATRIX_MULTIPLY, HASH, DISTANCE_CALCULATION.
    pub(crate) action: String,
    /// The parameters as JSON; `-` reads them from stdin, `@FILE` from a file [default: {}].
    pub(crate) params: Option<String>,
    /// Stop the handler after this many milliseconds [default: the manifest's timeout].
    #[arg(long = "timeout", value_name = "MS")]
    pub(crate) timeout_ms: Option<u64>,
    /// Print the result on one line.
    #[arg(long)]
    pub(crate) compact: bool,
}

/// `atmo bench <kind>`: one subcommand per kind of deployment measured.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// The engine in this process: thread-worker banks and the memory store.
    #[command(long_about = INPROC_LONG_ABOUT)]
    Inproc(InprocArgs),
    /// The engine on the durable SQLite store, against the memory store and a small file.
    #[command(long_about = DURABLE_LONG_ABOUT)]
    Durable(DurableArgs),
    /// Every built-in action through a thread bank, against a direct call of its handler.
    #[command(long_about = BUILTINS_LONG_ABOUT)]
    Builtins(BuiltinsArgs),
    /// Process worker banks (Rust and Node workers) against the in-process thread bank.
    #[command(long_about = PROCESS_LONG_ABOUT)]
    Process(ProcessArgs),
    /// The HTTP API on loopback against the engine called in-process.
    #[command(long_about = HTTP_LONG_ABOUT)]
    Http(HttpArgs),
    /// A short-task bank's throughput with and without a long-task bank busy beside it.
    #[command(long_about = ISOLATION_LONG_ABOUT)]
    Isolation(IsolationArgs),
}

const ISOLATION_LONG_ABOUT: &str = "\
A short-task bank (builtin-crypto, HASH) beside a long-task bank
(builtin-computation, MONTE_CARLO_PI), both as atmo serve starts them.

Scenarios:

  isolation-memory  HASH requests/s (5,000, in batches of 100 awaited) with 40
                    MONTE_CARLO_PI of 2e7 iterations submitted just before;
                    baseline: the same HASH requests alone. Memory store.
  isolation-sqlite  the same on a fresh SQLite store file (default options).

Target: ratio >= 0.8 (one bank cannot slow another). Each scenario runs --repeat
times, alternating with its baseline, and reports the median of each.";

/// Options of `atmo bench isolation`.
#[derive(Debug, Args)]
pub(crate) struct IsolationArgs {
    /// Print one JSON object per line instead of aligned text.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) runs: RunArgs,

    /// Where the SQLite runs' temporary store directories are made [default: the system's
    /// temporary directory].
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<std::path::PathBuf>,
}

const HTTP_LONG_ABOUT: &str = "\
The service's HTTP API (atmo serve's router, on loopback in this process) with the
benchmark's bank of 2 worker threads, against the same engine called in-process.

Scenarios:

  http-submit     single submits (POST /v1/requests) from --connections client
                  threads with keep-alive connections; requests/s. Baseline:
                  in-process submit from as many tasks.

  http-batch      requests/s submitted in batches of 1,000 (POST
                  /v1/requests/batch) from 4 connections. Baseline: in-process
                  submit_many from 4 tasks.

  http-roundtrip  one request at a time, submit to result in one call
                  (POST /v1/requests?wait=10s); p50 and p99, µs. Baseline:
                  in-process submit_and_wait.

Each scenario runs --repeat times, alternating with the baseline, and reports the
median of each.";

/// Options of `atmo bench http`.
#[derive(Debug, Args)]
pub(crate) struct HttpArgs {
    /// Print one JSON object per line instead of aligned text.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) runs: RunArgs,

    /// Run only these scenarios (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "NAME")]
    pub(crate) scenario: Vec<HttpScenario>,

    /// Client connections (threads) in the submit scenario.
    #[arg(long, value_name = "N", default_value_t = 64, help_heading = "Tuning",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) connections: u32,

    #[command(flatten)]
    pub(crate) load: LoadArgs,
}

/// The scenarios of `atmo bench http`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum HttpScenario {
    /// Single submits per second from 64 connections.
    #[value(name = "http-submit")]
    Submit,
    /// Requests per second in batches of 1,000.
    #[value(name = "http-batch")]
    Batch,
    /// Submit to result over HTTP, one at a time: p50 and p99.
    #[value(name = "http-roundtrip")]
    Roundtrip,
}

impl HttpScenario {
    /// Every scenario, in the order they run.
    pub(crate) const ALL: [HttpScenario; 3] = [HttpScenario::Submit, HttpScenario::Batch, HttpScenario::Roundtrip];

    /// The name printed in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            HttpScenario::Submit => "http-submit",
            HttpScenario::Batch => "http-batch",
            HttpScenario::Roundtrip => "http-roundtrip",
        }
    }
}

const PROCESS_LONG_ABOUT: &str = "\
Process worker banks against the same engine with a bank of 2 worker threads,
measured in the same run.

Scenarios:

  process-throughput  trivial requests (a + b) submitted in batches and awaited,
                      through 2 `atmo worker bench` processes speaking the worker
                      protocol, pipelined (--pipeline tasks in flight each);
                      requests/s.

  process-node        the same through 2 Node processes running
                      workers/node/bench-worker.mjs (skipped without node).

  process-latency     one request at a time through 1 process, submit to
                      result; p50 and p99, µs.

Each scenario runs --repeat times, alternating with the baseline, and reports the
median of each.";

/// Options of `atmo bench process`.
#[derive(Debug, Args)]
pub(crate) struct ProcessArgs {
    /// Print one JSON object per line instead of aligned text.
    ///
    /// Fields: scenario, value, unit, baseline, ratio, runs; process-latency adds p99
    /// and baselineP99 (its value is the p50).
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) runs: RunArgs,

    /// Run only these scenarios (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "NAME")]
    pub(crate) scenario: Vec<ProcessScenario>,

    /// Tasks in flight per worker process in the throughput scenarios.
    #[arg(long, value_name = "N", default_value_t = 512, help_heading = "Tuning",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) pipeline: u32,

    #[command(flatten)]
    pub(crate) load: LoadArgs,
}

/// The scenarios of `atmo bench process`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProcessScenario {
    /// Requests per second through 2 Rust worker processes.
    #[value(name = "process-throughput")]
    Throughput,
    /// Requests per second through 2 Node worker processes.
    #[value(name = "process-node")]
    Node,
    /// One request at a time through 1 process: p50 and p99.
    #[value(name = "process-latency")]
    Latency,
}

impl ProcessScenario {
    /// Every scenario, in the order they run.
    pub(crate) const ALL: [ProcessScenario; 3] =
        [ProcessScenario::Throughput, ProcessScenario::Node, ProcessScenario::Latency];

    /// The name printed in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ProcessScenario::Throughput => "process-throughput",
            ProcessScenario::Node => "process-node",
            ProcessScenario::Latency => "process-latency",
        }
    }
}

const BUILTINS_LONG_ABOUT: &str = "\
Every action of every built-in manifest (computation, crypto, data-processing,
geospatial, image-processing, simulation), one line each, with one
representative request per action.

The value is requests/s through the engine: one WorkerManager on the memory
store with every built-in bank (workers: the manifest's suggested count, at
most 2 and at most the cores), requests submitted with submit_many_and_wait,
validation and lifecycle tracking included. The baseline is the same request's
handler called directly from as many plain threads, in the same run. The ratio
(engine / direct) is the engine's overhead: near 1 for actions that take
milliseconds, lower for microsecond ones. Requests per run are sized per action
from a short calibration (cheap actions get more, PASSWORD_HASH a few).";

/// Options of `atmo bench builtins`.
#[derive(Debug, Args)]
pub(crate) struct BuiltinsArgs {
    /// Print one JSON object per line instead of aligned text.
    ///
    /// Fields: scenario (the action id), value, unit, baseline, ratio, runs.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) runs: RunArgs,

    /// Measure only these actions (comma-separated ids, e.g. HASH,THUMBNAIL) [default: all].
    #[arg(long, value_delimiter = ',', value_name = "ACTION")]
    pub(crate) action: Vec<String>,
}

const INPROC_LONG_ABOUT: &str = "\
The engine in this process: thread-worker banks and the memory store.

Scenarios:

  inproc-throughput  trivial requests (a + b from JSON parameters) submitted in
                     batches and awaited; one bank of 2 worker threads, full
                     lifecycle tracking and history; requests/s.

  inproc-latency     one request at a time, submit to result; p50 and p99, µs.

  inproc-memory      heap bytes each retained finished request costs beyond its
                     parameters and result; bytes/request.

The baseline does the same work with 2 plain threads fed by a crossbeam channel,
with a reply channel per request; for memory, it keeps each finished request's id
and result in a HashMap. Each scenario runs --repeat times, alternating engine and
baseline, and reports the median of each.";

const DURABLE_LONG_ABOUT: &str = "\
The engine on the durable SQLite store (default options: WAL, synchronous=FULL,
group commit), against a baseline measured in the same run: the same engine on
the memory store for throughput and submit (a fresh store file per run), a file
of 1,000 requests for open and query.

Scenarios:

  durable-throughput  trivial requests submitted in batches and awaited, submit
                      to completed through one bank of 2 worker threads;
                      requests/s, plus the fsyncs of the WAL per 1,000
                      requests (one fsync answers every batch committed before it).

  durable-submit      acknowledged submits/s: --submitters tokio tasks each
                      submitting one request at a time (submit returns after
                      the commit and its fsync); the task is registered but
                      no bank runs it, so this is the intake alone.

  durable-submit-busy the same while a bank of 2 worker threads processes the
                      requests: every submit then shares the writer with a
                      claim and a completion.

  durable-open        a file of 1,000,000 finished requests (100,000 with
                      --quick): open it and start an engine on it; ms.
                      Baseline: the same with a file of 1,000.

  durable-query       filtered, paginated queries (50 a page: task and status,
                      client, a second page by cursor) on that file; p50 and
                      p99, µs. Baseline: the same on the file of 1,000.

  durable-throughput-full
                      durable-throughput on a copy of that file: the store
                      already holds as many finished requests as the default
                      retention keeps (1,000,000), so every index is deep and
                      the sweeper deletes the oldest ones as new ones finish.
                      Baseline: durable-throughput on an empty file.

The files of durable-open, durable-query and durable-throughput-full are
written once per invocation, by
inserting finished requests straight into the store. Each scenario runs
--repeat times, alternating with its baseline, and reports the median of each.";

/// Options of `atmo bench durable`.
#[derive(Debug, Args)]
pub(crate) struct DurableArgs {
    /// Print one JSON object per line instead of aligned text.
    ///
    /// Fields: scenario, value, unit, baseline, ratio, runs; durable-throughput
    /// adds fsyncsPer1000, durable-query adds p99 and baselineP99 (its value is
    /// the p50).
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) runs: RunArgs,

    /// Run only these scenarios (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "NAME")]
    pub(crate) scenario: Vec<DurableScenario>,

    /// Where the runs' temporary store directories are made [default: the system's
    /// temporary directory]. Put it on the disk you mean to measure: fsync on tmpfs is free.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<std::path::PathBuf>,

    /// Concurrent submitter tasks in the submit scenario.
    #[arg(long, value_name = "N", default_value_t = 64, help_heading = "Tuning",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) submitters: u32,

    #[command(flatten)]
    pub(crate) load: LoadArgs,
}

/// How often each scenario runs.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Runs per scenario; the median is reported [default: 5, or 1 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) repeat: Option<u32>,

    /// A fast smoke run: smaller sizes and one run per scenario (numbers are rougher).
    #[arg(long)]
    pub(crate) quick: bool,
}

/// The shape of the load driving the engine.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// Requests per `submit_many_and_wait` call in the throughput scenario.
    #[arg(long, value_name = "N", default_value_t = 1000, help_heading = "Tuning",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) batch: u32,

    /// Batches in flight at once in the throughput scenario (one tokio task each).
    #[arg(long, value_name = "N", default_value_t = 4, help_heading = "Tuning",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) in_flight: u32,

    /// Worker threads of the tokio runtime that drives the engine.
    #[arg(long, value_name = "N", default_value_t = 2, help_heading = "Tuning",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) runtime_threads: u32,

    /// Requests the bank may hold at once (running plus queued at its workers).
    #[arg(long, value_name = "N", default_value_t = 4096, help_heading = "Tuning",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) bank_capacity: u32,
}

impl RunArgs {
    /// Runs per scenario.
    pub(crate) fn count(&self) -> u32 {
        self.repeat.unwrap_or(if self.quick { 1 } else { 5 })
    }
}

/// The scenarios of `atmo bench durable`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum DurableScenario {
    /// Requests per second, submit to completed, batches submitted and awaited.
    #[value(name = "durable-throughput")]
    Throughput,
    /// Acknowledged single submits per second from concurrent submitters (intake: no bank
    /// consumes meanwhile).
    #[value(name = "durable-submit")]
    Submit,
    /// The same while a bank processes what is submitted.
    #[value(name = "durable-submit-busy")]
    SubmitBusy,
    /// Opening a file of 1,000,000 finished requests and starting an engine on it.
    #[value(name = "durable-open")]
    Open,
    /// A filtered, paginated query on that file.
    #[value(name = "durable-query")]
    Query,
    /// `durable-throughput` on a copy of that file (a store at its retention limit).
    #[value(name = "durable-throughput-full")]
    ThroughputFull,
}

impl DurableScenario {
    /// Every scenario, in the order they run.
    pub(crate) const ALL: [DurableScenario; 6] = [
        DurableScenario::Throughput,
        DurableScenario::Submit,
        DurableScenario::SubmitBusy,
        DurableScenario::Open,
        DurableScenario::Query,
        DurableScenario::ThroughputFull,
    ];

    /// The name printed in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DurableScenario::Throughput => "durable-throughput",
            DurableScenario::Submit => "durable-submit",
            DurableScenario::SubmitBusy => "durable-submit-busy",
            DurableScenario::Open => "durable-open",
            DurableScenario::Query => "durable-query",
            DurableScenario::ThroughputFull => "durable-throughput-full",
        }
    }
}

/// Options of `atmo bench inproc`.
#[derive(Debug, Args)]
pub(crate) struct InprocArgs {
    /// Print one JSON object per line instead of aligned text.
    ///
    /// Fields: scenario, value, unit, baseline, ratio, runs; latency
    /// scenarios add p99 and baselineP99 (their value is the p50).
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) runs: RunArgs,

    /// Run only these scenarios (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "NAME")]
    pub(crate) scenario: Vec<InprocScenario>,

    #[command(flatten)]
    pub(crate) load: LoadArgs,
}

/// The scenarios of `atmo bench inproc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum InprocScenario {
    /// Requests per second, batches submitted and awaited.
    #[value(name = "inproc-throughput")]
    Throughput,
    /// Round-trip time of one request at a time.
    #[value(name = "inproc-latency")]
    Latency,
    /// Bytes per retained finished request.
    #[value(name = "inproc-memory")]
    Memory,
}

impl InprocScenario {
    /// Every scenario, in the order they run.
    pub(crate) const ALL: [InprocScenario; 3] =
        [InprocScenario::Throughput, InprocScenario::Latency, InprocScenario::Memory];

    /// The name printed in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            InprocScenario::Throughput => "inproc-throughput",
            InprocScenario::Latency => "inproc-latency",
            InprocScenario::Memory => "inproc-memory",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn quick_json_parses() -> anyhow::Result<()> {
        let cli =
            Cli::try_parse_from(["atmo", "bench", "inproc", "--json", "--quick", "--scenario", "inproc-latency"])?;
        let Command::Bench(BenchCommand::Inproc(args)) = cli.command else {
            anyhow::bail!("parsed as another command");
        };
        assert!(args.json && args.runs.quick);
        assert_eq!(args.runs.repeat, None);
        assert_eq!(args.scenario, vec![InprocScenario::Latency]);
        Ok(())
    }

    #[test]
    fn durable_parses() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from(["atmo", "bench", "durable", "--quick", "--scenario", "durable-submit"])?;
        let Command::Bench(BenchCommand::Durable(args)) = cli.command else {
            anyhow::bail!("parsed as another command");
        };
        assert!(args.runs.quick && !args.json);
        assert_eq!(args.submitters, 64);
        assert_eq!(args.scenario, vec![DurableScenario::Submit]);
        Ok(())
    }

    #[test]
    fn help_leads_with_serving_and_submitting() -> anyhow::Result<()> {
        let help = Cli::command().render_help().to_string();
        let pos = |name: &str| help.find(&format!("  {name} ")).unwrap_or(usize::MAX);
        assert!(pos("serve") < pos("submit") && pos("submit") < pos("bench") && pos("tasks") < pos("bench"), "{help}");
        let query = Cli::command()
            .find_subcommand_mut("query")
            .ok_or_else(|| anyhow::anyhow!("no query"))?
            .render_long_help()
            .to_string();
        assert!(query.contains("timed_out") && query.contains("cancelled"), "{query}");
        let submit = Cli::command()
            .find_subcommand_mut("submit")
            .ok_or_else(|| anyhow::anyhow!("no submit"))?
            .render_help()
            .to_string();
        assert!(submit.contains("[default: 5]"), "{submit}");
        assert!(Cli::try_parse_from(["atmo", "query", "--status", "finished"]).is_err());
        assert!(Cli::try_parse_from(["atmo", "submit", "HASH", "--priority", "11"]).is_err());
        Ok(())
    }

    #[test]
    fn zero_repeats_are_rejected() {
        assert!(Cli::try_parse_from(["atmo", "bench", "inproc", "--repeat", "0"]).is_err());
    }
}
