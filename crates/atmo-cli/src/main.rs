//! `atmo`: the command-line face of Atmo Workers.
//!
//! `atmo serve` runs the service; `submit`, `get`, `query` and the other client commands talk
//! to it; `atmo backup DEST` copies its SQLite store while it runs; `atmo completions SHELL` and
//! `atmo man` print shell completions and the man page. `atmo exec ACTION PARAMS` runs one
//! built-in request in-process and prints its result. `atmo bench`: `atmo bench inproc` measures
//! the in-process engine (throughput, latency, memory per retained request) against a plain-threads baseline
//! run on the same machine in the same process, and `atmo bench durable` measures the engine on
//! the SQLite store against the memory store; each prints one line per scenario (or one JSON
//! object per line with `--json`).
//!
//! Layout: [`cli`] parses the command line, [`mod@bench`] runs benchmarks, [`alloc`] is the
//! counting allocator the memory scenario reads, [`generate`] writes completions and man pages. `main` follows ripgrep: it prints the error
//! chain, treats a closed stdout (`atmo bench inproc --json | head -1`) as success, and returns
//! an exit code.

mod alloc;
mod backup;
mod bench;
mod cli;
mod client;
mod exec;
mod generate;
mod serve;
mod worker;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, LogFormat};

/// Every heap allocation of the process goes through the counter; it counts only while the
/// memory scenario asks it to (see [`alloc`]).
#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting::new();

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Command::Serve(args) => args.log_format,
        _ => LogFormat::Text,
    };
    init_logging(log_format);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A reader that stopped reading (a pipe into `head`) is not a failure.
            if err
                .chain()
                .any(|cause| cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
            {
                return ExitCode::SUCCESS;
            }
            if log_format == LogFormat::Json {
                let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
                tracing::error!(target: "atmo::serve", error = %err, causes = ?causes, "atmo serve failed");
                return ExitCode::FAILURE;
            }
            let mut stderr = io::stderr().lock();
            let _ = writeln!(stderr, "atmo: error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Bench(cmd) => bench::run(&cmd)?,
        Command::Exec(args) => return exec::run(&args),
        Command::Worker(args) => return worker::run(&args),
        Command::Serve(args) => return serve::run(&args),
        Command::Backup(args) => return backup::run(&args),
        Command::Completions(args) => generate::completions(&args)?,
        Command::Man(args) => generate::man(&args)?,
        Command::Submit(args) => return client::run(|| client::submit(&args)),
        Command::SubmitMany(args) => return client::run(|| client::submit_many(&args)),
        Command::Get(args) => return client::run(|| client::get(&args)),
        Command::Wait(args) => return client::run(|| client::wait(&args)),
        Command::Query(args) => return client::run(|| client::query(&args)),
        Command::Cancel(args) => return client::run(|| client::cancel(&args)),
        Command::Metrics(args) => return client::run(|| client::metrics(&args)),
        Command::Banks(args) => return client::run(|| client::banks(&args)),
        Command::Workers(args) => return client::run(|| client::workers(&args)),
        Command::Tasks(args) => return client::run(|| client::tasks(&args)),
        Command::Events(args) => return client::run(|| client::events(&args)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Logs go to stderr, filtered by `ATMO_LOG` (default: warnings and errors, what process
/// workers write to their stderr, tagged with the worker id, and the service's start and stop
/// notices in JSON), so stdout stays machine-readable. Text is coloured only when stderr is a
/// terminal and `NO_COLOR` is not set (a journal or a file gets no escape codes); JSON is one
/// object per line.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ATMO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,atmo::worker=info,atmo::serve=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stderr);
    // Fails only if a subscriber is already set, which then keeps logging.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(colour()).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// Whether stderr gets ANSI colours: a terminal, and no `NO_COLOR` (<https://no-color.org>).
fn colour() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
