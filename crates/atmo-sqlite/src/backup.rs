//! Backups: a consistent copy of a store that is open and being written.
//!
//! A backup is `VACUUM INTO` run in one read transaction on the source: the copy holds exactly
//! what was committed when that transaction began (every call answered before the backup
//! started) and nothing later, and it is compacted (no free pages, no WAL). In WAL mode a read
//! transaction does not block the writer, so the store goes on committing while the copy is
//! made; a checkpoint only waits to reset the WAL until the copy is done.
//!
//! Two ways in, one copy:
//!
//! - [`SqliteStore::backup`](crate::SqliteStore::backup) copies the store this process holds,
//!   on one of its read connections;
//! - [`backup`] copies the file of a store held by another process (`atmo backup` next to a
//!   running `atmo serve`). The store's lock file guards against a second *writer*; a backup
//!   only reads, through SQLite's own locking, so it does not take that lock and works whether
//!   or not a store holds the file.
//!
//! `VACUUM INTO` neither syncs nor replaces: the copy is written to a hidden file beside the
//! destination, fsynced, renamed into place and the directory fsynced, so the destination is
//! either absent or a whole backup, even across a crash.

use std::fs::File;
use std::path::{Path, PathBuf};

use atmo_core::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::error::Error;
use crate::schema::{self, APPLICATION_ID};

/// What a backup wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The requests it holds.
    pub requests: u64,
    /// Its schema version ([`SCHEMA_VERSION`](crate::SCHEMA_VERSION) of the build that wrote
    /// the source).
    pub schema_version: i64,
}

/// Whether [`backup`] may replace an existing destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// An existing destination is an error ([`StoreError::Backend`] with
    /// [`std::io::ErrorKind::AlreadyExists`]); the default.
    #[default]
    Refuse,
    /// An existing destination is replaced (atomically, by a rename).
    Replace,
}

/// Copies the store in the file at `source` to a new file `dest`: a consistent snapshot of
/// everything committed when the copy began, while a store (in this process or another) may
/// be writing the file.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("atmo.db");
/// drop(atmo_sqlite::SqliteStore::open(&path, Default::default())?);
/// let report = atmo_sqlite::backup(&path, dir.path().join("copy.db"), atmo_sqlite::Overwrite::Refuse)?;
/// assert_eq!(report.requests, 0);
/// # Ok(()) }
/// ```
///
/// # Errors
/// - [`StoreError::NotAStore`] when `source` is not an Atmo Workers store (nothing is
///   written);
/// - [`StoreError::Backend`] when `source` does not exist, `dest` exists (with
///   [`Overwrite::Refuse`]), or SQLite or the file system fails.
pub fn backup(
    source: impl AsRef<Path>,
    dest: impl AsRef<Path>,
    overwrite: Overwrite,
) -> Result<BackupReport, StoreError> {
    let source = source.as_ref();
    if !source.is_file() {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} does not exist (or is not a file)", source.display()),
        )));
    }
    schema::check_header(source)?;
    // Read-only: a backup never writes the store, even where no store holds the file (a
    // read-write connection that closes last would checkpoint it).
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(source, flags).map_err(Error::from)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(Error::from)?;
    copy(&conn, dest.as_ref(), overwrite)
}

/// Checks that `conn` is one of ours, then copies it to `dest` (see the module docs).
pub(crate) fn copy(conn: &Connection, dest: &Path, overwrite: Overwrite) -> Result<BackupReport, StoreError> {
    let app_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(Error::from)?;
    if app_id != APPLICATION_ID {
        return Err(StoreError::NotAStore(format!(
            "the database has application id {app_id:#x}; an Atmo Workers store has {APPLICATION_ID:#x}"
        )));
    }
    if overwrite == Overwrite::Refuse && dest.exists() {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists; choose a new file (or replace it)", dest.display()),
        )));
    }
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest.file_name().ok_or_else(|| {
        io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a file name", dest.display()),
        ))
    })?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial = dir.join(partial_name);
    // A leftover of an interrupted backup by this same process id: VACUUM INTO needs a new file.
    remove_if_present(&partial)?;
    let result = write_copy(conn, &partial, dest, &dir);
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn write_copy(conn: &Connection, partial: &Path, dest: &Path, dir: &Path) -> Result<BackupReport, StoreError> {
    let target = partial.to_str().ok_or_else(|| {
        io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not valid UTF-8, which SQLite needs for a file name", partial.display()),
        ))
    })?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(Error::from)?;
    // What the copy holds, read from the copy itself (which also shows it opens).
    let (requests, schema_version) = {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let copy = Connection::open_with_flags(partial, flags).map_err(Error::from)?;
        let requests: i64 = copy.query_row("SELECT count(*) FROM requests", [], |r| r.get(0)).map_err(Error::from)?;
        let version: i64 = copy.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(Error::from)?;
        (u64::try_from(requests).unwrap_or(0), version)
    };
    let file = File::open(partial).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    let bytes = file.metadata().map_err(io_error)?.len();
    drop(file);
    std::fs::rename(partial, dest).map_err(io_error)?;
    // The rename is durable once the directory is.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error)?;
    Ok(BackupReport { path: dest.to_path_buf(), bytes, requests, schema_version })
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(e)),
    }
}

fn io_error(e: std::io::Error) -> StoreError {
    Error::Backup(e).into()
}
