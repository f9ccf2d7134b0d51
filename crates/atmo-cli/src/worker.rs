//! `atmo worker MANIFEST`: serves a manifest over the worker protocol on stdin/stdout, as a
//! process in a process bank. MANIFEST is a built-in manifest's name, or `bench` (the trivial
//! manifest `atmo bench process` measures).

use std::process::ExitCode;

use crate::cli::WorkerArgs;

/// Serves until `shutdown` or the end of stdin.
///
/// # Errors
/// I/O errors on stdin or stdout.
pub(crate) fn run(args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let responder = if args.manifest == "bench" {
        atmo_workers::responder::WorkerResponder::for_manifest(&crate::bench::manifest()?)
            .handlers(crate::bench::handlers())
    } else {
        match atmo_builtin_worker::responder(&args.manifest) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("atmo worker: {e} (or `bench`)");
                return Ok(ExitCode::from(2));
            }
        }
    };
    let responder = match args.concurrency {
        Some(n) => responder.concurrency(n),
        None => responder,
    };
    let responder = match args.max_in_flight {
        Some(n) => responder.max_in_flight(n),
        None => responder,
    };
    responder.run()?;
    Ok(ExitCode::SUCCESS)
}
