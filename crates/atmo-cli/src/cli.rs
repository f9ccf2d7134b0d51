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
                        atmo bench inproc --quick    a fast smoke run for CI\n\n\
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
}

/// `atmo bench <kind>`: one subcommand per kind of deployment measured.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// The engine in this process: thread-worker banks and the memory store.
    #[command(long_about = INPROC_LONG_ABOUT)]
    Inproc(InprocArgs),
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

/// Options of `atmo bench inproc`.
#[derive(Debug, Args)]
pub(crate) struct InprocArgs {
    /// Print one JSON object per line instead of aligned text.
    ///
    /// Fields: scenario, value, unit, baseline, ratio, runs; latency
    /// scenarios add p99 and baselineP99 (their value is the p50).
    #[arg(long)]
    pub(crate) json: bool,

    /// Runs per scenario; the median is reported [default: 5, or 1 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) repeat: Option<u32>,

    /// A fast smoke run: smaller sizes and one run per scenario (numbers are rougher).
    #[arg(long)]
    pub(crate) quick: bool,

    /// Run only these scenarios (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "NAME")]
    pub(crate) scenario: Vec<InprocScenario>,

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
        let Command::Bench(BenchCommand::Inproc(args)) = cli.command;
        assert!(args.json && args.quick);
        assert_eq!(args.repeat, None);
        assert_eq!(args.scenario, vec![InprocScenario::Latency]);
        Ok(())
    }

    #[test]
    fn zero_repeats_are_rejected() {
        assert!(Cli::try_parse_from(["atmo", "bench", "inproc", "--repeat", "0"]).is_err());
    }
}
