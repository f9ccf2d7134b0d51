//! The command line: `atmo <command> ...`, parsed with clap's derive API.
//!
//! Each command is one variant of [`Command`]; a command with its own subcommands (`bench`)
//! has its own enum, so new ones (`serve`, `submit`, `bench durable`, ...) slot in beside the
//! existing ones without touching them.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Atmo Workers: worker banks with a tracked request lifecycle.
///
/// The `atmo` command runs and measures the Atmo Workers engine.
#[derive(Debug, Parser)]
#[command(name = "atmo", version, propagate_version = true)]
#[command(
    after_help = "Examples:\n  atmo bench inproc            measure the in-process engine (median of 5 runs)\n  \
                        atmo bench inproc --json     the same, one JSON object per line\n  \
                        atmo bench inproc --quick    a fast smoke run for CI\n  \
                        atmo bench durable           the SQLite store against the memory store\n  \
                        atmo exec HASH '{\"data\":\"abc\"}'  run one built-in request\n\n\
                        Set ATMO_LOG (e.g. ATMO_LOG=debug) to see the engine's logs on stderr."
)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Measure the engine against a plain-threads baseline run on the same machine.
    ///
    /// Every scenario prints one line: the engine's value, the baseline's value
    /// measured in the same run (interleaved with the engine's runs), and their
    /// ratio (engine / baseline).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run one built-in request in this process and print its result as JSON.
    ///
    /// The parameters are validated against the action's manifest as a submission would be.
    /// Exit code 0 with the result on stdout; 2 for bad input (unknown action, malformed JSON,
    /// invalid parameters: every problem on stderr); 1 when the handler failed or timed out.
    Exec(ExecArgs),
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
                      requests/s, plus the store's commits (each one WAL fsync)
                      per 1,000 requests.

  durable-submit      acknowledged submits/s: --submitters tokio tasks each
                      submitting one request at a time (submit returns after
                      the commit), while the bank processes them.

  durable-open        a file of 1,000,000 finished requests (100,000 with
                      --quick): open it and start an engine on it; ms.
                      Baseline: the same with a file of 1,000.

  durable-query       filtered, paginated queries (50 a page: task and status,
                      client, a second page by cursor) on that file; p50 and
                      p99, µs. Baseline: the same on the file of 1,000.

The files of durable-open and durable-query are written once per invocation, by
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
    /// Acknowledged single submits per second from concurrent submitters.
    #[value(name = "durable-submit")]
    Submit,
    /// Opening a file of 1,000,000 finished requests and starting an engine on it.
    #[value(name = "durable-open")]
    Open,
    /// A filtered, paginated query on that file.
    #[value(name = "durable-query")]
    Query,
}

impl DurableScenario {
    /// Every scenario, in the order they run.
    pub(crate) const ALL: [DurableScenario; 4] =
        [DurableScenario::Throughput, DurableScenario::Submit, DurableScenario::Open, DurableScenario::Query];

    /// The name printed in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DurableScenario::Throughput => "durable-throughput",
            DurableScenario::Submit => "durable-submit",
            DurableScenario::Open => "durable-open",
            DurableScenario::Query => "durable-query",
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
    fn zero_repeats_are_rejected() {
        assert!(Cli::try_parse_from(["atmo", "bench", "inproc", "--repeat", "0"]).is_err());
    }
}
