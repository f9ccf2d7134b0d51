//! `atmo backup DEST`: a consistent copy of the service's SQLite store, taken while it runs.
//!
//! The store to copy is found as `atmo serve` finds it (`--store`, `ATMO_STORE`, the
//! configuration file's `store`, else `./atmo-data/atmo.db`). The copy is made by opening the
//! file read-only beside the running service rather than through an HTTP endpoint: it needs no
//! token and no running service, takes nothing from the service's connections, and the file's
//! lock (one writer) stays the service's. See [`atmo_sqlite::backup`].

use std::process::ExitCode;

use anyhow::{Context, bail};
use atmo_sqlite::Overwrite;

use crate::cli::BackupArgs;
use crate::serve::config::{self, Overrides, StoreChoice};

/// Runs `atmo backup`.
///
/// # Errors
/// A bad configuration, a memory store, a source that is missing or not an Atmo store, a
/// destination that exists (without `--force`), or a failed copy.
pub(crate) fn run(args: &BackupArgs) -> anyhow::Result<ExitCode> {
    let config = config::load(args.config.as_deref(), Overrides { store: args.store.clone(), ..Overrides::default() })?;
    let source = match config.store {
        StoreChoice::Sqlite(path) => path,
        StoreChoice::Postgres(_) => {
            bail!("the store is PostgreSQL: back it up with pg_dump (`pg_dump --schema atmo`)")
        }
        StoreChoice::Memory => {
            bail!("the store is `memory`: it lives in the service's process and has no file to copy")
        }
    };
    let overwrite = if args.force { Overwrite::Replace } else { Overwrite::Refuse };
    let report = atmo_sqlite::backup(&source, &args.dest, overwrite)
        .with_context(|| format!("cannot back up {} to {}", source.display(), args.dest.display()))?;
    println!(
        "backed up {} requests ({} bytes, schema version {}) from {} to {}",
        report.requests,
        report.bytes,
        report.schema_version,
        source.display(),
        report.path.display()
    );
    Ok(ExitCode::SUCCESS)
}
