//! A typed handler and the engine's events: parameters arrive as a Rust struct, the result is
//! decoded back into one, and an `on(...)` callback and an event stream watch the lifecycle.
//!
//! Run with `cargo run -p atmo-workers --example typed_handler_events`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atmo_workers::manifest::{ActionDefinition, Manifest, ParamType, ParameterSpec};
use atmo_workers::{BankSpec, EventType, Handler, Handlers, SubmitOptions, TaskContext, TaskError, WorkerManager};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Deserialize)]
struct Area {
    width: f64,
    height: f64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct AreaResult {
    area: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let manager = WorkerManager::builder().name("typed").start().await?;
    let manifest = Manifest::builder("geometry")
        .action(
            ActionDefinition::new("AREA")
                .param(ParameterSpec::required("width", ParamType::Number))
                .param(ParameterSpec::required("height", ParamType::Number)),
        )
        .build()?;
    let handler = Handler::typed(|_ctx: &TaskContext, p: Area| {
        if p.width < 0.0 || p.height < 0.0 {
            return Err(TaskError::invalid("sides must not be negative"));
        }
        Ok::<_, TaskError>(AreaResult { area: p.width * p.height })
    });
    manager
        .initialize_worker_bank(BankSpec::new("geometry", manifest).handlers(Handlers::new().on("AREA", handler)))?;

    // A callback for one kind of event, and a stream of all of them.
    let completed = Arc::new(AtomicUsize::new(0));
    let seen = completed.clone();
    let subscription = manager.on(EventType::RequestCompleted, move |_event| {
        seen.fetch_add(1, Ordering::Relaxed);
    })?;
    let mut events = manager.subscribe();

    let result = manager.submit_and_wait("AREA", json!({"width": 3, "height": 4}), SubmitOptions::new()).await?;
    let area: AreaResult = result.decode()?;
    assert_eq!(area, AreaResult { area: 12.0 });
    println!("area: {}", area.area);

    let failed = manager.submit_and_wait("AREA", json!({"width": -1, "height": 4}), SubmitOptions::new()).await?;
    println!("negative side: {:?} ({})", failed.status, failed.error.map(|e| e.message).unwrap_or_default());

    // The lifecycle of the first request, as events.
    let first = result.request_id;
    while let Ok(Some(atmo_workers::EventItem::Event(e))) =
        tokio::time::timeout(Duration::from_millis(100), events.next()).await
    {
        if e.kind.request_id() == Some(first) {
            println!("event: {:?}", e.kind.event_type());
        }
    }
    // The callback runs on a task of its own: give it a moment.
    for _ in 0..100 {
        if completed.load(Ordering::Relaxed) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    subscription.unsubscribe();
    assert_eq!(completed.load(Ordering::Relaxed), 1, "one request completed");
    manager.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}
