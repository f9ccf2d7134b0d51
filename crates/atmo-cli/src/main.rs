//! `atmo`: the command-line face of Atmo Workers.
//!
//! `atmo exec ACTION PARAMS` runs one built-in request in-process and prints its result. `atmo bench`: `atmo bench inproc` measures the in-process
//! engine (throughput, latency, memory per retained request) against a plain-threads baseline
//! run on the same machine in the same process, and `atmo bench durable` measures the engine on
//! the SQLite store against the memory store; each prints one line per scenario (or one JSON
//! object per line with `--json`). `serve`, `submit` and more kinds of `bench` come later; see
//! [`cli`] for how they slot in.
//!
//! Layout: [`cli`] parses the command line, [`mod@bench`] runs benchmarks, [`alloc`] is the
//! counting allocator the memory scenario reads. `main` follows ripgrep: it prints the error
//! chain, treats a closed stdout (`atmo bench inproc --json | head -1`) as success, and returns
//! an exit code.

mod alloc;
mod bench;
mod cli;
mod client;
mod exec;
mod serve;
mod worker;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Every heap allocation of the process goes through the counter; it counts only while the
/// memory scenario asks it to (see [`alloc`]).
#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting::new();

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            // A reader that stopped reading (a pipe into `head`) is not a failure.
            if err
                .chain()
                .any(|cause| cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
            {
                return ExitCode::SUCCESS;
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
    init_logging();
    match cli.command {
        Command::Bench(cmd) => bench::run(&cmd)?,
        Command::Exec(args) => return exec::run(&args),
        Command::Worker(args) => return worker::run(&args),
        Command::Serve(args) => return serve::run(&args),
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

/// Logs go to stderr, filtered by `ATMO_LOG` (default: warnings and errors, plus what process
/// workers write to their stderr, tagged with the worker id), so stdout stays
/// machine-readable.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ATMO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,atmo::worker=info"));
    // Fails only if a subscriber is already set, which then keeps logging.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stderr).try_init();
}
