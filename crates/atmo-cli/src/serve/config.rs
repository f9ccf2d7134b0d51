//! The configuration of `atmo serve`: a TOML file, overridden by flags and environment
//! variables, with a default for everything (no file at all is a working setup).
//!
//! ```toml
//! bind = "127.0.0.1:7070"          # ATMO_BIND, --bind
//! token = "change-me"              # ATMO_TOKEN, --token (required off loopback)
//! store = "sqlite:./atmo-data/atmo.db"   # or "memory"; ATMO_STORE, --store
//! synchronous = "full"             # or "normal": survives crashes, not power loss; faster
//! drain = "10s"                    # how long shutdown lets running requests finish
//! queue_capacity = 1000000         # unfinished requests accepted before "queue full"
//! max_timeout = "24h"              # a request's timeoutMs above this is refused (400)
//! max_delay = "365d"               # and so is a runAt or delayMs further ahead than this [default: 1000 years]
//! cors = ["http://localhost:3000"] # origins whose pages may call the API (CORS; writes pass the Origin check)
//! allowed_hosts = ["atmo.internal"] # Host names besides IP addresses and localhost
//!
//! [retention]
//! max_age = "7d"                   # finished requests older than this are deleted
//! max_count = 1000000              # and beyond this many
//!
//! [builtins]
//! background = ["computation", "simulation"] # banks at the lowest CPU priority [default: these two]
//! enabled = true                   # a thread bank per built-in manifest; --no-builtins
//! workers = 2                      # threads per bank [default: the manifest's concurrency, at most the cores]
//! only = ["crypto", "computation"] # [default: every built-in manifest]
//!
//! [[banks]]                        # process banks
//! id = "python-example"
//! manifest = "examples/example-manifest.json"  # JSON, TOML or YAML; relative to this file
//! workers = 2
//! command = { program = "python3", args = ["workers/python/atmo_worker.py"] }  # default: the manifest's
//!
//! [[cron]]
//! name = "nightly-digest"
//! schedule = "0 0 3 * * *"         # sec min hour day month weekday (or the 5-field form)
//! task_id = "HASH"
//! parameters = { data = "abc" }
//! missed_run_policy = "run-once"   # skip | run-once | run-all
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use atmo_workers::manifest::CommandSpec;
use serde::Deserialize;
use serde_json::Value;

/// The file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) bind: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) store: Option<String>,
    pub(crate) synchronous: Option<String>,
    pub(crate) drain: Option<String>,
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) max_timeout: Option<String>,
    pub(crate) max_delay: Option<String>,
    #[serde(default)]
    pub(crate) cors: Vec<String>,
    #[serde(default)]
    pub(crate) allowed_hosts: Vec<String>,
    #[serde(default)]
    pub(crate) retention: RetentionFile,
    #[serde(default)]
    pub(crate) builtins: BuiltinsFile,
    #[serde(default)]
    pub(crate) banks: Vec<ProcessBankFile>,
    #[serde(default)]
    pub(crate) cron: Vec<CronFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionFile {
    pub(crate) max_age: Option<String>,
    pub(crate) max_count: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuiltinsFile {
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
    pub(crate) workers: Option<usize>,
    pub(crate) only: Option<Vec<String>>,
    /// The built-in manifests whose banks run at the lowest CPU priority (long, CPU-bound
    /// work; see `BankSpec::background`).
    #[serde(default = "default_background")]
    pub(crate) background: Vec<String>,
}

impl Default for BuiltinsFile {
    fn default() -> Self {
        BuiltinsFile { enabled: true, workers: None, only: None, background: default_background() }
    }
}

/// The built-in manifests of long, CPU-bound actions (Monte Carlo runs, simulations), whose
/// banks run in the background unless `[builtins] background` says otherwise.
pub(crate) const DEFAULT_BACKGROUND_BUILTINS: [&str; 2] = ["computation", "simulation"];

fn default_background() -> Vec<String> {
    DEFAULT_BACKGROUND_BUILTINS.iter().map(|s| (*s).to_owned()).collect()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProcessBankFile {
    pub(crate) id: String,
    pub(crate) manifest: PathBuf,
    #[serde(default = "one")]
    pub(crate) workers: usize,
    pub(crate) command: Option<CommandSpec>,
}

fn one() -> usize {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CronFile {
    pub(crate) name: String,
    pub(crate) schedule: String,
    pub(crate) task_id: String,
    #[serde(default)]
    pub(crate) parameters: Value,
    #[serde(default)]
    pub(crate) missed_run_policy: Option<String>,
    #[serde(default)]
    pub(crate) priority: Option<u8>,
}

/// Where requests live.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StoreChoice {
    /// Nothing survives the process.
    Memory,
    /// The durable SQLite store at this path.
    Sqlite(PathBuf),
    /// The cluster store: a PostgreSQL connection string (`postgres://...`).
    Postgres(String),
}

/// The settled configuration.
#[derive(Debug)]
pub(crate) struct ServeConfig {
    pub(crate) bind: SocketAddr,
    pub(crate) token: Option<String>,
    pub(crate) store: StoreChoice,
    pub(crate) synchronous_normal: bool,
    pub(crate) drain: Duration,
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) max_timeout: Option<Duration>,
    pub(crate) max_delay: Option<Duration>,
    pub(crate) cors: Vec<String>,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) retention_max_age: Option<Duration>,
    pub(crate) retention_max_count: Option<usize>,
    pub(crate) builtins: BuiltinsFile,
    pub(crate) banks: Vec<ProcessBankFile>,
    pub(crate) cron: Vec<CronFile>,
}

/// The default bind address.
pub(crate) const DEFAULT_BIND: &str = "127.0.0.1:7070";
/// The default store.
pub(crate) const DEFAULT_STORE: &str = "sqlite:./atmo-data/atmo.db";

/// What the command line (and its environment variables) override.
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) bind: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) store: Option<String>,
    pub(crate) no_builtins: bool,
    pub(crate) builtin_workers: Option<usize>,
}

/// Reads the file (if any) and applies the overrides.
///
/// # Errors
/// An unreadable or invalid file, or an invalid value, naming the setting.
pub(crate) fn load(path: Option<&Path>, o: Overrides) -> anyhow::Result<ServeConfig> {
    let (file, base) = match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("cannot read the config file {}", p.display()))?;
            let file: FileConfig =
                toml::from_str(&text).with_context(|| format!("invalid config file {}", p.display()))?;
            (file, p.parent().map(Path::to_path_buf).unwrap_or_default())
        }
        None => (FileConfig::default(), PathBuf::new()),
    };
    let bind_text = o.bind.or(file.bind).unwrap_or_else(|| DEFAULT_BIND.into());
    let bind = parse_bind(&bind_text)?;
    for origin in &file.cors {
        let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
        let ok = rest.map(|r| r.trim_end_matches('/')).is_some_and(|r| !r.is_empty() && !r.contains('/'));
        if !ok {
            bail!("`cors`: `{origin}` is not an origin like http://localhost:3000 (scheme, host and port, no path)");
        }
    }
    let store_text = o.store.or(file.store).unwrap_or_else(|| DEFAULT_STORE.into());
    let store = parse_store(&store_text, &base)?;
    let synchronous_normal = match file.synchronous.as_deref() {
        None | Some("full") => false,
        Some("normal") => true,
        Some(other) => bail!("`synchronous`: `{other}` is not one of full, normal"),
    };
    let drain = parse_duration("drain", file.drain.as_deref())?.unwrap_or(Duration::from_secs(10));
    let mut builtins = file.builtins;
    if o.no_builtins {
        builtins.enabled = false;
    }
    if o.builtin_workers.is_some() {
        builtins.workers = o.builtin_workers;
    }
    let mut banks = file.banks;
    for b in &mut banks {
        if b.manifest.is_relative() {
            b.manifest = base.join(&b.manifest);
        }
        if b.workers == 0 {
            bail!("bank `{}`: `workers` must be at least 1", b.id);
        }
    }
    Ok(ServeConfig {
        bind,
        token: o.token.or(file.token).filter(|t| !t.trim().is_empty()),
        store,
        synchronous_normal,
        drain,
        queue_capacity: file.queue_capacity,
        max_timeout: parse_duration("max_timeout", file.max_timeout.as_deref())?,
        max_delay: parse_duration("max_delay", file.max_delay.as_deref())?,
        cors: file.cors,
        allowed_hosts: file.allowed_hosts,
        retention_max_age: parse_duration("retention.max_age", file.retention.max_age.as_deref())?,
        retention_max_count: file.retention.max_count,
        builtins,
        banks,
        cron: file.cron,
    })
}

/// An address to listen on: `IP:PORT`, or `NAME:PORT` for a host name that resolves to
/// loopback addresses only (`localhost:7070`), which binds the first of them. A name resolving
/// elsewhere is refused: name the address to bind it.
pub(crate) fn parse_bind(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let hint = || format!("`bind`: `{text}` is not an address like 127.0.0.1:7070 or localhost:7070");
    let (host, port) = text.rsplit_once(':').with_context(hint)?;
    let port: u16 = port.parse().with_context(hint)?;
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).with_context(hint)?.collect();
    // IPv4 first: `localhost` often resolves to ::1 and 127.0.0.1, and clients try 127.0.0.1.
    let first = addrs.iter().find(|a| a.is_ipv4()).or_else(|| addrs.first()).copied();
    match first {
        Some(addr) if addrs.iter().all(|a| a.ip().is_loopback()) => Ok(addr),
        Some(_) => bail!(
            "`bind`: `{host}` resolves to {}, not only loopback; name the address to listen on",
            addrs.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ")
        ),
        None => bail!("{}: the name resolves to no address", hint()),
    }
}

/// `memory`, `sqlite:PATH`, a bare path ending in `.db`, or a `postgres://` (`postgresql://`)
/// URL; relative paths are relative to the config file's directory (or the working directory
/// without one).
pub(crate) fn parse_store(text: &str, base: &Path) -> anyhow::Result<StoreChoice> {
    if text == "memory" {
        return Ok(StoreChoice::Memory);
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(StoreChoice::Postgres(text.to_owned()));
    }
    let path = text.strip_prefix("sqlite:").or_else(|| text.ends_with(".db").then_some(text));
    match path {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            Ok(StoreChoice::Sqlite(if p.is_relative() { base.join(p) } else { p }))
        }
        _ => bail!("`store`: `{text}` is not `memory`, `sqlite:PATH` or `postgres://...`"),
    }
}

fn parse_duration(name: &str, text: Option<&str>) -> anyhow::Result<Option<Duration>> {
    text.map(|t| {
        humantime::parse_duration(t).with_context(|| format!("`{name}`: `{t}` is not a duration like 30s, 10m or 7d"))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn no_file_gives_the_documented_defaults() {
        let c = load(None, Overrides::default()).unwrap();
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        assert_eq!(c.store, StoreChoice::Sqlite(PathBuf::from("./atmo-data/atmo.db")));
        assert!(c.builtins.enabled && c.token.is_none() && c.banks.is_empty());
        assert_eq!(c.builtins.background, ["computation", "simulation"]);
        assert_eq!(c.drain, Duration::from_secs(10));
    }

    #[test]
    fn the_file_is_read_and_flags_override_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atmo.toml");
        std::fs::write(
            &path,
            r#"
bind = "127.0.0.1:9000"
token = "file-token"
store = "sqlite:data/x.db"
drain = "3s"
max_timeout = "1h"
[retention]
max_age = "7d"
[builtins]
only = ["crypto"]
workers = 1
background = []
[[banks]]
id = "py"
manifest = "m.json"
workers = 2
command = { program = "python3", args = ["w.py"] }
[[cron]]
name = "n"
schedule = "*/5 * * * * *"
task_id = "HASH"
parameters = { data = "abc" }
missed_run_policy = "run-once"
"#,
        )
        .unwrap();
        let c = load(Some(&path), Overrides { bind: Some("127.0.0.1:9001".into()), ..Overrides::default() }).unwrap();
        assert_eq!(c.bind.port(), 9001);
        assert_eq!(c.token.as_deref(), Some("file-token"));
        assert_eq!(c.store, StoreChoice::Sqlite(dir.path().join("data/x.db")));
        assert_eq!(c.retention_max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(c.builtins.only, Some(vec!["crypto".to_owned()]));
        assert!(c.builtins.background.is_empty());
        assert_eq!(c.banks[0].manifest, dir.path().join("m.json"));
        assert_eq!(c.banks[0].command.as_ref().unwrap().args, vec!["w.py".to_owned()]);
        assert_eq!(c.cron[0].missed_run_policy.as_deref(), Some("run-once"));
        assert_eq!(c.drain, Duration::from_secs(3));
        assert_eq!(c.max_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(c.max_delay, None);
    }

    #[test]
    fn bind_takes_loopback_names() {
        let a = parse_bind("localhost:7070").unwrap();
        assert!(a.ip().is_loopback() && a.port() == 7070, "{a}");
        assert_eq!(parse_bind("127.0.0.1:7071").unwrap().port(), 7071);
        assert_eq!(parse_bind("[::1]:7072").unwrap().port(), 7072);
        assert!(parse_bind("localhost").is_err());
        assert!(parse_bind("localhost:port").is_err());
    }

    #[test]
    fn cors_and_allowed_hosts_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atmo.toml");
        std::fs::write(&path, "cors = [\"http://localhost:3000\"]\nallowed_hosts = [\"atmo.internal\"]\n").unwrap();
        let c = load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(c.cors, vec!["http://localhost:3000".to_owned()]);
        assert_eq!(c.allowed_hosts, vec!["atmo.internal".to_owned()]);
        std::fs::write(&path, "cors = [\"localhost:3000/app\"]\n").unwrap();
        let e = format!("{:#}", load(Some(&path), Overrides::default()).unwrap_err());
        assert!(e.contains("`cors`"), "{e}");
    }

    #[test]
    fn postgres_urls_choose_the_cluster_store() {
        let base = Path::new("/etc/atmo");
        for url in ["postgres://atmo@db:5432/jobs", "postgresql://atmo@db/jobs"] {
            assert_eq!(parse_store(url, base).unwrap(), StoreChoice::Postgres(url.to_owned()));
        }
        let e = format!("{:#}", parse_store("mysql://db/jobs", base).unwrap_err());
        assert!(e.contains("postgres://"), "{e}");
    }

    #[test]
    fn bad_settings_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atmo.toml");
        std::fs::write(&path, "bnid = \"x\"\n").unwrap();
        let e = format!("{:#}", load(Some(&path), Overrides::default()).unwrap_err());
        assert!(e.contains("unknown field `bnid`"), "{e}");
        let e = format!(
            "{:#}",
            load(None, Overrides { bind: Some("nowhere".into()), ..Overrides::default() }).unwrap_err()
        );
        assert!(e.contains("`bind`"), "{e}");
        let e = format!(
            "{:#}",
            load(None, Overrides { store: Some("redis://x".into()), ..Overrides::default() }).unwrap_err()
        );
        assert!(e.contains("`store`"), "{e}");
        std::fs::write(&path, "[retention]\nmax_age = \"forever\"\n").unwrap();
        let e = format!("{:#}", load(Some(&path), Overrides::default()).unwrap_err());
        assert!(e.contains("retention.max_age"), "{e}");
    }
}
