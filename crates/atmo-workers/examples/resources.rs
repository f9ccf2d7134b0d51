//! Injected resources: a bank shares a connection pool, a configuration or a cache with every
//! handler through its context, by type. A handler that needs one it was not given fails with
//! a clear error instead of panicking.
//!
//! Run with `cargo run -p atmo-workers --example resources`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use atmo_workers::mock::MockWorker;
use atmo_workers::{BankSpec, Handler, Handlers, RequestStatus, SubmitOptions, WorkerManager};
use parking_lot::Mutex;
use serde_json::json;

/// Exchange rates, loaded once and shared by every worker.
struct Rates(HashMap<&'static str, f64>);

/// A shared counter of conversions (anything `Send + Sync` can be injected).
#[derive(Default)]
struct Audit(Mutex<Vec<String>>);

/// Never injected: asking for it is an error the request records.
struct Missing;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let manager = WorkerManager::builder().name("resources").start().await?;
    let audit = Arc::new(Audit::default());
    let convert = Handler::sync(|ctx, p| {
        let rates = ctx.resource::<Rates>()?;
        let audit = ctx.resource::<Arc<Audit>>()?;
        let currency = p["currency"].as_str().unwrap_or("EUR");
        let rate = rates.0.get(currency).copied().unwrap_or(1.0);
        audit.0.lock().push(format!("{} {currency}", ctx.request_id));
        Ok(json!({"amount": p["amount"].as_f64().unwrap_or(0.0) * rate}))
    });
    let broken = Handler::sync(|ctx, _p| {
        ctx.resource::<Missing>()?;
        Ok(json!(null))
    });
    manager.initialize_worker_bank(
        BankSpec::new("money", MockWorker::manifest("money", &["CONVERT", "BROKEN"]))
            .workers(2)
            .resource(Rates(HashMap::from([("USD", 1.08), ("GBP", 0.86)])))
            .resource(audit.clone())
            .handlers(Handlers::new().on("CONVERT", convert).on("BROKEN", broken)),
    )?;

    let usd =
        manager.submit_and_wait("CONVERT", json!({"amount": 100, "currency": "USD"}), SubmitOptions::new()).await?;
    let amount = usd.payload.as_ref().and_then(|p| p["amount"].as_f64()).unwrap_or_default();
    assert!((amount - 108.0).abs() < 1e-9);
    println!("100 EUR = {amount} USD; audit: {:?}", audit.0.lock());

    let missing = manager.submit_and_wait("BROKEN", json!({}), SubmitOptions::new()).await?;
    assert_eq!(missing.status, RequestStatus::Failed);
    println!("BROKEN: {}", missing.error.map(|e| e.message).unwrap_or_default());
    manager.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}
