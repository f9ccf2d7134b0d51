//! A demo server: one bank with a few tasks, some background traffic, the dashboard at
//! http://127.0.0.1:7700/ (set `ATMO_ADDR` to change the address, `ATMO_TOKEN` to require a
//! token). Stop it with Ctrl-C.
//!
//! ```text
//! cargo run -p atmo-server --example demo
//! ```

use std::time::Duration;

use anyhow::Context as _;
use atmo_server::{Server, ServerConfig, check_bind};
use atmo_workers::{
    ActionDefinition, BankSpec, ErrorCategory, Handler, Handlers, Manifest, ParamType, ParameterSpec, SubmitOptions,
    TaskError, WorkerManager,
};
use serde_json::json;

fn bank() -> anyhow::Result<BankSpec> {
    let manifest = Manifest::builder("demo")
        .description("Arithmetic and a flaky sleeper")
        .action(
            ActionDefinition::new("add")
                .description("Adds two numbers")
                .param(ParameterSpec::required("a", ParamType::Number))
                .param(ParameterSpec::required("b", ParamType::Number)),
        )
        .action(
            ActionDefinition::new("sleep")
                .description("Sleeps, and fails now and then")
                .param(ParameterSpec::optional("ms", ParamType::Integer, json!(200)).range(0.0, 60_000.0))
                .param(ParameterSpec::optional("failRate", ParamType::Number, json!(0.1)).range(0.0, 1.0)),
        )
        .build()?;
    let handlers = Handlers::new()
        .on(
            "add",
            Handler::sync(|_, p| Ok(json!({"sum": p["a"].as_f64().unwrap_or(0.0) + p["b"].as_f64().unwrap_or(0.0)}))),
        )
        .on(
            "sleep",
            Handler::sync(|_, p| {
                let ms = p["ms"].as_u64().unwrap_or(200);
                std::thread::sleep(Duration::from_millis(ms));
                if fastrand::f64() < p["failRate"].as_f64().unwrap_or(0.0) {
                    return Err(TaskError::new("UNLUCKY", "the dice said no").with_category(ErrorCategory::Processing));
                }
                Ok(json!({"slept": ms}))
            }),
        );
    Ok(BankSpec::new("demo-bank", manifest).workers(4).handlers(handlers))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::var("ATMO_ADDR").unwrap_or_else(|_| "127.0.0.1:7700".into()).parse()?;
    let config = ServerConfig { auth_token: std::env::var("ATMO_TOKEN").ok(), ..ServerConfig::default() };
    check_bind(addr, config.auth_token.as_deref())?;
    let manager = WorkerManager::builder().name("demo").start().await?;
    manager.initialize_worker_bank(bank()?)?;
    let server = Server::new(manager.clone(), config)?;

    let traffic = manager.clone();
    tokio::spawn(async move {
        loop {
            let ms = fastrand::u64(20..400);
            let _ = traffic.submit("sleep", json!({"ms": ms}), SubmitOptions::new().client_id("demo")).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });

    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    println!("dashboard: http://{addr}/");
    server
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    manager.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
