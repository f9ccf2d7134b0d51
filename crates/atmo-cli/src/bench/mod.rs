//! `atmo bench`: end-to-end benchmarks, each against a baseline measured in the same run.
//!
//! One file per concern: [`inproc`] orchestrates the in-process scenarios (repeats,
//! interleaving, medians), [`engine`] drives Atmo Workers, [`baseline`] drives the plain
//! threads it is compared with, [`work`] is the trivial task both do, [`stats`] computes
//! medians and percentiles, and [`report`] prints the lines. [`durable`] runs the same engine
//! on the SQLite store against the memory store; [`builtins`] runs every built-in action
//! through a thread bank against a direct call of its handler. Later kinds of bench
//! (`process`, `http`) get a file each beside them and reuse the rest.

mod baseline;
mod builtins;
mod durable;
mod engine;
mod http;
mod inproc;
mod isolation;
mod large;
mod process;
mod report;
mod stats;
mod work;

use crate::cli::BenchCommand;

pub(crate) use engine::{handlers, manifest};

/// The multi-thread tokio runtime every benchmark drives its engines on.
///
/// # Errors
/// When the runtime cannot start.
pub(crate) fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("atmo-bench-rt")
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// Runs one `atmo bench` subcommand, printing its report on stdout.
///
/// # Errors
/// A scenario that fails (the engine returned an error or a wrong result), or stdout closing.
pub(crate) fn run(cmd: &BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Inproc(args) => inproc::run(args),
        BenchCommand::Durable(args) => durable::run(args),
        BenchCommand::Process(args) => process::run(args),
        BenchCommand::Http(args) => http::run(args),
        BenchCommand::Builtins(args) => builtins::run(args),
        BenchCommand::Isolation(args) => isolation::run(args),
    }
}
