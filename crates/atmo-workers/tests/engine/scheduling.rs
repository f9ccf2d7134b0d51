//! Dispatch order (priority, FIFO within a priority) and delayed submission, under paused time.

use std::sync::Arc;
use std::time::Duration;

use atmo_workers::{BankStatus, Handler, RequestStatus, SubmitOptions, SubmitRequest, TaskContext};
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::support::{advance, bank, engine, lenient, settle};

/// Records the `label` parameter of each request in the order handlers start.
fn recorder(order: Arc<Mutex<Vec<String>>>) -> Handler {
    Handler::asynchronous(move |_ctx: TaskContext, p: Arc<Value>| {
        let order = order.clone();
        async move {
            order.lock().push(p["label"].as_str().unwrap_or_default().to_owned());
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(json!(null))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn higher_priority_runs_first_and_fifo_within_a_priority() -> anyhow::Result<()> {
    let manager = engine("priority").await?;
    let order = Arc::new(Mutex::new(Vec::new()));
    bank(&manager, "one", lenient("one", &["job"])?, 1, 1, &recorder(order.clone()))?;
    manager.set_bank_status("one", BankStatus::Inactive)?;

    let submissions = [(5, "a"), (1, "b"), (10, "c"), (5, "d"), (7, "e"), (10, "f"), (1, "g"), (5, "h")];
    let mut ids = Vec::new();
    for (priority, label) in submissions {
        ids.push(manager.submit("job", json!({"label": label}), SubmitOptions::new().priority(priority)).await?);
    }
    // A batch keeps its order within a priority too, after what came before.
    let batch = ["i", "j", "k"]
        .iter()
        .zip([10, 1, 10])
        .map(|(l, p)| SubmitRequest::new("job", json!({"label": l})).with_options(SubmitOptions::new().priority(p)))
        .collect();
    ids.extend(manager.submit_many(batch).await?);

    settle().await;
    assert!(order.lock().is_empty(), "a paused bank runs nothing");
    for id in &ids {
        assert_eq!(manager.get_request(*id).await?.status, RequestStatus::Pending);
    }
    manager.set_bank_status("one", BankStatus::Active)?;
    for id in &ids {
        assert_eq!(manager.wait(*id).await?.status, RequestStatus::Completed);
    }
    assert_eq!(*order.lock(), ["c", "f", "i", "k", "e", "a", "d", "h", "b", "g", "j"]);

    // Start times agree with the order the handler saw.
    let mut started = Vec::new();
    for id in &ids {
        let r = manager.get_request(*id).await?;
        started.push((r.started_at, r.parameters["label"].as_str().unwrap_or_default().to_owned()));
    }
    started.sort();
    let by_time: Vec<String> = started.into_iter().map(|(_, l)| l).collect();
    assert_eq!(by_time, *order.lock());
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_delayed_request_waits_in_scheduled_until_its_time() -> anyhow::Result<()> {
    let manager = engine("delay").await?;
    let order = Arc::new(Mutex::new(Vec::new()));
    bank(&manager, "one", lenient("one", &["job"])?, 1, 4, &recorder(order.clone()))?;

    let submitted = manager.now();
    let delayed =
        manager.submit("job", json!({"label": "delayed"}), SubmitOptions::new().delay(Duration::from_secs(10))).await?;
    let at = manager
        .submit("job", json!({"label": "at"}), SubmitOptions::new().run_at(submitted + Duration::from_secs(3)))
        .await?;
    let past = manager
        .submit(
            "job",
            json!({"label": "past"}),
            SubmitOptions::new().run_at(submitted.saturating_sub(Duration::from_secs(3))),
        )
        .await?;

    let r = manager.get_request(delayed).await?;
    assert_eq!(r.status, RequestStatus::Scheduled);
    assert_eq!(r.run_at, Some(submitted + Duration::from_secs(10)));
    assert_eq!(r.history.iter().map(|h| (h.from, h.to)).collect::<Vec<_>>(), [(None, RequestStatus::Scheduled)]);

    // A run time in the past runs at once.
    assert_eq!(manager.wait(past).await?.status, RequestStatus::Completed);
    settle().await;
    assert_eq!(*order.lock(), ["past"]);
    assert_eq!(manager.get_request(at).await?.status, RequestStatus::Scheduled);

    let until_at = (submitted + Duration::from_secs(3)).saturating_since(manager.now());
    advance(until_at - Duration::from_millis(1)).await;
    assert_eq!(manager.get_request(at).await?.status, RequestStatus::Scheduled);
    advance(Duration::from_millis(1)).await;
    assert_eq!(manager.wait(at).await?.status, RequestStatus::Completed);
    assert_eq!(manager.get_request(delayed).await?.status, RequestStatus::Scheduled);

    let until_delayed = (submitted + Duration::from_secs(10)).saturating_since(manager.now());
    advance(until_delayed - Duration::from_millis(1)).await;
    assert_eq!(manager.get_request(delayed).await?.status, RequestStatus::Scheduled);
    assert_eq!(*order.lock(), ["past", "at"]);
    let result = manager.wait(delayed).await?;
    assert_eq!(result.status, RequestStatus::Completed);
    assert_eq!(*order.lock(), ["past", "at", "delayed"]);

    let r = manager.get_request(delayed).await?;
    let promoted = r
        .history
        .iter()
        .find(|h| h.from == Some(RequestStatus::Scheduled))
        .map(|h| h.at)
        .ok_or_else(|| anyhow::anyhow!("no promotion in {:?}", r.history))?;
    let due = submitted + Duration::from_secs(10);
    assert!(promoted >= due && promoted <= due + Duration::from_millis(1), "{promoted:?} vs {due:?}");
    assert!(r.started_at >= Some(due));
    assert_eq!(r.run_at, None);
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}
