//! `atmo-builtin-worker MANIFEST`: serves a built-in manifest over the worker protocol on
//! stdin/stdout (see the crate docs). `--list` prints the manifests it can serve.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--list" => {
            for name in atmo_builtin_worker::manifest_names() {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        [name] if !name.starts_with('-') => match atmo_builtin_worker::responder(name) {
            Ok(responder) => match responder.run() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("atmo-builtin-worker: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("atmo-builtin-worker: {e}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("usage: atmo-builtin-worker MANIFEST | --list");
            eprintln!("manifests: {}", atmo_builtin_worker::manifest_names().join(", "));
            ExitCode::from(2)
        }
    }
}
