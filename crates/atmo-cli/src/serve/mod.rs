//! `atmo serve`: the service. One command starts the engine on the embedded SQLite store (or
//! the memory store), a thread bank per built-in manifest, the process banks and cron schedules
//! of the configuration ([`config`]), and the HTTP API with its dashboard ([`atmo_server`]).
//! SIGINT or SIGTERM stops intake, lets running requests finish for the `drain` period, and
//! leaves what is left in the store for the next start.

pub(crate) mod config;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use atmo_server::cron::{CronSpec, MissedRunPolicy};
use atmo_server::{Server, ServerConfig};
use atmo_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use atmo_workers::{BankSpec, Manifest, SubmitOptions, WorkerManager};

use self::config::{Overrides, ServeConfig, StoreChoice};
use crate::cli::ServeArgs;

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
    runtime.block_on(serve(config, args.skip_integrity_check))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: ServeConfig, skip_integrity_check: bool) -> anyhow::Result<()> {
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
    };
    let (max_age, max_count) = (config.retention_max_age, config.retention_max_count);
    if max_age.is_some() || max_count.is_some() {
        builder = builder.configure(|b| b.retention(max_age, max_count));
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
    let server_config =
        ServerConfig { auth_token: config.token.clone(), cron_state_path: cron_state, ..ServerConfig::default() };
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
    println!("Atmo Workers is serving on http://{addr}/");
    println!("  dashboard  http://{addr}/{}", if config.token.is_some() { "?token=<your token>" } else { "" });
    println!("  API        http://{addr}/v1   (OpenAPI: http://{addr}/openapi.json)");
    println!("  store      {store_desc}");
    println!("  banks      {}", banks.iter().map(|b| b.bank_id.to_string()).collect::<Vec<_>>().join(", "));
    println!("Stop with Ctrl-C (running requests get {} s to finish).", config.drain.as_secs());
    server.serve(listener, shutdown_signal()).await.context("the HTTP service failed")?;
    eprintln!("atmo: shutting down: stopped intake; draining for up to {} s", config.drain.as_secs());
    manager.shutdown(config.drain).await.context("the engine's shutdown failed")?;
    eprintln!("atmo: stopped");
    Ok(())
}

/// A thread bank per selected built-in manifest, then the process banks.
async fn start_banks(manager: &WorkerManager, config: &ServeConfig) -> anyhow::Result<()> {
    if config.builtins.enabled {
        let all = atmo_builtins::banks();
        if let Some(only) = &config.builtins.only {
            for name in only {
                if !all.iter().any(|b| &b.manifest.name == name) {
                    let known: Vec<&str> = all.iter().map(|b| b.manifest.name.as_str()).collect();
                    bail!("builtins.only: no built-in manifest `{name}` (known: {})", known.join(", "));
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
            manager
                .initialize_worker_bank(BankSpec::new(id.clone(), b.manifest).workers(workers).handlers(b.handlers))
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
