//! `atmo serve`: the service. One command starts the engine on the embedded SQLite store (or
//! the memory store), a thread bank per built-in manifest, the process banks and cron schedules
//! of the configuration ([`config`]), and the HTTP API with its dashboard ([`atmo_server`]).
//! SIGINT or SIGTERM stops intake, lets running requests finish for the `drain` period, and
//! leaves what is left in the store for the next start.
//!
//! With `--log-format json` every line on stderr is a JSON object, the start banner and the
//! shutdown notices included (as events of the `atmo::serve` target); stdout stays empty.

pub(crate) mod config;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use atmo_server::cron::{CronSpec, MissedRunPolicy};
use atmo_server::{Server, ServerConfig};
use atmo_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use atmo_workers::{BankSpec, Manifest, SubmitOptions, WorkerManager};

use self::config::{Overrides, ServeConfig, StoreChoice};
use crate::cli::{LogFormat, ServeArgs};

/// Runs the service until a signal stops it.
///
/// # Errors
/// A bad configuration, a store that cannot open (another `atmo serve` owns it, or the file
/// is not an Atmo database), a bank that cannot start, an address in use.
pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let config = config::load(
        args.config.as_deref(),
        Overrides {
            bind: args.bind.clone(),
            token: args.token.clone(),
            store: args.store.clone(),
            no_builtins: args.no_builtins,
            builtin_workers: args.builtin_workers,
        },
    )?;
    atmo_server::check_bind(config.bind, config.token.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("atmo-serve")
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config, args.log_format, args.skip_integrity_check))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: ServeConfig, log_format: LogFormat, skip_integrity_check: bool) -> anyhow::Result<()> {
    let json = log_format == LogFormat::Json;
    let mut builder = WorkerManager::builder().name("atmo");
    let mut cron_state = None;
    let store_desc = match &config.store {
        StoreChoice::Memory => "memory (nothing survives a restart)".to_owned(),
        StoreChoice::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                cron_state = Some(dir.join("cron.json"));
            } else {
                cron_state = Some("cron.json".into());
            }
            let sync = if config.synchronous_normal { Synchronous::Normal } else { Synchronous::Full };
            let options = SqliteOptions::default().synchronous(sync).integrity_check(!skip_integrity_check);
            let store = SqliteStore::open(path, options)
                .with_context(|| format!("cannot open the store {}", path.display()))?;
            builder = builder.configure(|b| b.shared_store(Arc::new(store)));
            format!("sqlite:{}", path.display())
        }
        StoreChoice::Postgres(url) => {
            // Cron state stays per node (no file is shared): see docs/cluster.md.
            let store = atmo_postgres::PostgresStore::connect(atmo_postgres::PostgresConfig::new(url.clone()))
                .await
                .context("cannot open the PostgreSQL store")?;
            let desc = format!("postgres (schema {}) at {}", store.schema_name(), store.target());
            builder = builder.configure(|b| b.shared_store(Arc::new(store)));
            desc
        }
    };
    let (max_age, max_count) = (config.retention_max_age, config.retention_max_count);
    if max_age.is_some() || max_count.is_some() {
        builder = builder.configure(|b| b.retention(max_age, max_count));
    }
    if config.max_timeout.is_some() || config.max_delay.is_some() {
        let defaults = atmo_workers::EngineConfig::default();
        let max_timeout = config.max_timeout.unwrap_or(defaults.max_timeout);
        let max_delay = config.max_delay.unwrap_or(defaults.max_delay);
        builder = builder.configure(|b| b.limits(max_timeout, max_delay));
    }
    if let Some(n) = config.queue_capacity {
        builder = builder.configure(|b| b.queue_capacity(n));
    }
    let manager = builder.start().await.context("cannot start the engine")?;
    let started = start_banks(&manager, &config).await;
    if let Err(e) = started {
        manager.shutdown(config.drain).await.ok();
        return Err(e);
    }
    let server_config = ServerConfig {
        auth_token: config.token.clone(),
        cron_state_path: cron_state,
        cors_origins: config.cors.clone(),
        allowed_hosts: config.allowed_hosts.clone(),
        ..ServerConfig::default()
    };
    let server = Server::new(manager.clone(), server_config).context("cannot start the HTTP service")?;
    for c in &config.cron {
        let policy = match c.missed_run_policy.as_deref() {
            None | Some("skip") => MissedRunPolicy::Skip,
            Some("run-once") => MissedRunPolicy::RunOnce,
            Some("run-all") => MissedRunPolicy::RunAll,
            Some(other) => bail!("cron `{}`: missed_run_policy `{other}` is not skip, run-once or run-all", c.name),
        };
        let mut options = SubmitOptions::new();
        if let Some(p) = c.priority {
            options = options.priority(p);
        }
        let spec = CronSpec {
            name: c.name.clone(),
            schedule: c.schedule.clone(),
            task_id: c.task_id.clone(),
            parameters: c.parameters.clone(),
            options,
            missed_run_policy: policy,
        };
        server.cron().ensure(spec).with_context(|| format!("cron `{}`", c.name))?;
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {} (is another service using it?)", config.bind))?;
    let addr = listener.local_addr().context("the listener has no address")?;
    let banks = manager.banks();
    let bank_ids = banks.iter().map(|b| b.bank_id.to_string()).collect::<Vec<_>>().join(", ");
    let drain_secs = config.drain.as_secs();
    if json {
        tracing::info!(target: "atmo::serve", url = %format!("http://{addr}/"), store = %store_desc, banks = %bank_ids,
            drain_secs, token = config.token.is_some(), "serving");
    } else {
        println!("Atmo Workers is serving on http://{addr}/");
        println!("  dashboard  http://{addr}/{}", if config.token.is_some() { "?token=<your token>" } else { "" });
        println!("  API        http://{addr}/v1   (OpenAPI: http://{addr}/openapi.json)");
        println!("  store      {store_desc}");
        println!("  banks      {}", bank_ids);
        println!("Stop with Ctrl-C (running requests get {} s to finish).", drain_secs);
    }
    let drain = config.drain;
    let signal = async move {
        shutdown_signal().await;
        notice(
            json,
            &format!(
                "shutting down: new submissions get 503, reads and result waits still work; draining for up to {} s",
                drain.as_secs()
            ),
        );
    };
    // Keeps serving during the drain, then closes the listener.
    server.serve_with_drain(listener, signal, drain).await.context("the HTTP service failed")?;
    notice(json, "stopped");
    Ok(())
}

/// A notice of the service's own (not a log of the engine's): a line on stderr, or with JSON
/// logs an event like every other line.
fn notice(json: bool, message: &str) {
    if json {
        tracing::info!(target: "atmo::serve", "{message}");
    } else {
        eprintln!("atmo: {message}");
    }
}

/// A thread bank per selected built-in manifest, then the process banks.
async fn start_banks(manager: &WorkerManager, config: &ServeConfig) -> anyhow::Result<()> {
    if config.builtins.enabled {
        let all = atmo_builtins::banks();
        let named = [
            ("builtins.only", config.builtins.only.as_deref().unwrap_or_default()),
            ("builtins.background", config.builtins.background.as_slice()),
        ];
        for (setting, names) in named {
            for name in names {
                if !all.iter().any(|b| &b.manifest.name == name) {
                    let known: Vec<&str> = all.iter().map(|b| b.manifest.name.as_str()).collect();
                    bail!("{setting}: no built-in manifest `{name}` (known: {})", known.join(", "));
                }
            }
        }
        let cores = num_threads();
        for b in all {
            if config.builtins.only.as_ref().is_some_and(|o| !o.contains(&b.manifest.name)) {
                continue;
            }
            let workers = config.builtins.workers.unwrap_or_else(|| b.suggested_workers.min(cores)).max(1);
            let id = b.bank_id;
            let background = config.builtins.background.contains(&b.manifest.name);
            let spec = BankSpec::new(id.clone(), b.manifest).workers(workers).background(background);
            manager
                .initialize_worker_bank(spec.handlers(b.handlers))
                .with_context(|| format!("cannot start bank `{id}`"))?;
        }
    }
    for b in &config.banks {
        let manifest = Manifest::from_path(&b.manifest)
            .with_context(|| format!("bank `{}`: cannot load the manifest {}", b.id, b.manifest.display()))?;
        let mut spec = BankSpec::new(b.id.clone(), manifest).workers(b.workers);
        if let Some(c) = &b.command {
            spec = spec.command(c.clone());
        }
        manager.initialize_process_bank(spec).await.with_context(|| format!("cannot start bank `{}`", b.id))?;
    }
    Ok(())
}

fn num_threads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
