//! Queries, metrics and retention through the manager (the store conformance suite covers the
//! store itself; here the manager must pass everything through).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use atmo_workers::{
    BankStatus, EngineConfig, Handler, Request, RequestId, RequestQuery, RequestStatus, RetentionConfig, SortField,
    SortOrder, SubmitOptions, TaskContext, TaskError, Timestamp, WorkerManager,
};
use serde_json::{Value, json};

use super::support::{advance, bank, engine, lenient, settle};

/// Sleeps `ms`, then fails with `fail` as the error code if given.
fn worker() -> Handler {
    Handler::asynchronous(|_ctx: TaskContext, p: Arc<Value>| async move {
        if let Some(ms) = p["ms"].as_u64() {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match p["fail"].as_str() {
            Some(code) => Err(TaskError::fatal(code, format!("failed with {code}"))),
            None => Ok(json!({"ok": true})),
        }
    })
}

struct Fixture {
    manager: WorkerManager,
    all: Vec<Request>,
    times: Vec<Timestamp>,
}

const REGIONS: [&str; 3] = ["eu", "us", "ap"];

/// 30 requests over three banks (one paused), varied in every queryable field, plus one
/// cancelled and one scheduled request.
async fn fixture() -> anyhow::Result<Fixture> {
    let manager = engine("queries").await?;
    bank(&manager, "alpha", lenient("alpha", &["a"])?, 1, 4, &worker())?;
    bank(&manager, "beta", lenient("beta", &["b"])?, 1, 4, &worker())?;
    bank(&manager, "gamma", lenient("gamma", &["c"])?, 1, 4, &worker())?;
    manager.set_bank_status("gamma", BankStatus::Inactive)?;

    let mut ids = Vec::new();
    let mut times = Vec::new();
    for i in 0..30u64 {
        let task = ["a", "b", "c"][(i % 3) as usize];
        let mut params = json!({"i": i});
        if i % 5 == 0 {
            params["fail"] = json!("BOOM");
        }
        let options = SubmitOptions::new()
            .priority((i % 10) as u8 + 1)
            .client_id(if i % 2 == 0 { "web" } else { "cli" })
            .meta("region", REGIONS[(i / 3 % 3) as usize])
            .meta("n", i)
            .meta("even", i % 2 == 0);
        times.push(manager.now());
        ids.push(manager.submit(task, params, options).await?);
        advance(Duration::from_millis(1)).await;
    }
    ids.push(manager.submit("a", json!({}), SubmitOptions::new().delay(Duration::from_secs(3600))).await?);
    for id in &ids {
        let r = manager.get_request(*id).await?;
        if &*r.task_id != "c" && r.status != RequestStatus::Scheduled {
            manager.wait(*id).await?;
        }
    }
    manager.cancel(ids[2]).await?;
    let mut all = Vec::new();
    for id in &ids {
        all.push(manager.get_request(*id).await?);
    }
    Ok(Fixture { manager, all, times })
}

fn ids_of(requests: &[Request]) -> Vec<RequestId> {
    requests.iter().map(|r| r.request_id).collect()
}

fn set(ids: impl IntoIterator<Item = RequestId>) -> HashSet<RequestId> {
    ids.into_iter().collect()
}

async fn check_filter(
    f: &Fixture,
    query: RequestQuery,
    expect: impl Fn(&Request) -> bool,
    what: &str,
) -> anyhow::Result<()> {
    let page = f.manager.query(query.limit(1000)).await?;
    let expected = set(f.all.iter().filter(|r| expect(r)).map(|r| r.request_id));
    assert!(!expected.is_empty(), "{what}: the fixture should have matches");
    assert_eq!(page.total, expected.len(), "{what}: total");
    assert_eq!(set(ids_of(&page.requests)), expected, "{what}: ids");
    assert_eq!(page.next_cursor, None, "{what}: one page holds all");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn every_filter_passes_through_the_manager() -> anyhow::Result<()> {
    let f = fixture().await?;
    let statuses: HashSet<RequestStatus> = f.all.iter().map(|r| r.status).collect();
    use RequestStatus::*;
    assert_eq!(statuses, [Completed, Failed, Pending, Scheduled, Cancelled].into_iter().collect());

    check_filter(&f, RequestQuery::new(), |_| true, "no filter").await?;
    check_filter(&f, RequestQuery::new().status([Completed]), |r| r.status == Completed, "completed").await?;
    check_filter(
        &f,
        RequestQuery::new().status([Failed, Cancelled]),
        |r| matches!(r.status, Failed | Cancelled),
        "failed or cancelled",
    )
    .await?;
    check_filter(
        &f,
        RequestQuery::new().status([Pending, Scheduled]),
        |r| matches!(r.status, Pending | Scheduled),
        "waiting",
    )
    .await?;
    check_filter(&f, RequestQuery::new().task("b"), |r| &*r.task_id == "b", "task").await?;
    check_filter(&f, RequestQuery::new().client("web"), |r| r.client_id.as_deref() == Some("web"), "client").await?;
    check_filter(&f, RequestQuery::new().bank("alpha"), |r| r.bank_id.as_deref() == Some("alpha"), "bank").await?;
    check_filter(&f, RequestQuery::new().priority_range(3, 5), |r| (3..=5).contains(&r.priority), "priority").await?;
    let (from, to) = (f.times[5], f.times[12]);
    check_filter(
        &f,
        RequestQuery::new().created_between(Some(from), Some(to)),
        |r| r.created_at >= from && r.created_at < to,
        "created range",
    )
    .await?;
    check_filter(
        &f,
        RequestQuery::new().created_between(Some(f.times[25]), None),
        |r| r.created_at >= f.times[25],
        "created from",
    )
    .await?;
    let meta = |r: &Request, k: &str| r.metadata.as_ref().and_then(|m| m.get(k).cloned());
    check_filter(
        &f,
        RequestQuery::new().meta("region", "eu"),
        |r| meta(r, "region") == Some(json!("eu")),
        "meta string",
    )
    .await?;
    check_filter(&f, RequestQuery::new().meta("n", 7), |r| meta(r, "n") == Some(json!(7)), "meta number").await?;
    check_filter(
        &f,
        RequestQuery::new().meta("region", "us").meta("even", true),
        |r| meta(r, "region") == Some(json!("us")) && meta(r, "even") == Some(json!(true)),
        "two meta entries",
    )
    .await?;
    check_filter(
        &f,
        RequestQuery::new().task("a").client("cli").status([Completed]).priority_range(1, 9),
        |r| &*r.task_id == "a" && r.client_id.as_deref() == Some("cli") && r.status == Completed && r.priority <= 9,
        "combined",
    )
    .await?;
    // Nothing matches: an empty page, not an error.
    let none = f.manager.query(RequestQuery::new().meta("region", "mars")).await?;
    assert_eq!((none.total, none.requests.len(), none.next_cursor), (0, 0, None));
    let none = f.manager.query(RequestQuery::new().meta("n", "7")).await?;
    assert_eq!(none.total, 0, "metadata equality is typed: \"7\" is not 7");
    f.manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

fn key(field: SortField, r: &Request) -> i64 {
    match field {
        SortField::Created => r.created_at.as_micros(),
        SortField::Updated => r.updated_at.as_micros(),
        SortField::Priority => i64::from(r.priority),
        SortField::Status => r.status as i64,
    }
}

fn sorted(all: &[Request], field: SortField, order: SortOrder) -> Vec<RequestId> {
    let mut v: Vec<(i64, RequestId)> = all.iter().map(|r| (key(field, r), r.request_id)).collect();
    v.sort();
    if order == SortOrder::Desc {
        v.reverse();
    }
    v.into_iter().map(|(_, id)| id).collect()
}

#[tokio::test(start_paused = true)]
async fn sorting_offsets_and_cursors_page_through_everything() -> anyhow::Result<()> {
    let f = fixture().await?;
    let fields = [SortField::Created, SortField::Updated, SortField::Priority, SortField::Status];
    for field in fields {
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let expected = sorted(&f.all, field, order);
            let page = f.manager.query(RequestQuery::new().sort(field, order).limit(1000)).await?;
            assert_eq!(ids_of(&page.requests), expected, "{field:?} {order:?}");

            // Offset pages.
            let mut paged = Vec::new();
            for offset in (0..expected.len()).step_by(7) {
                let page = f.manager.query(RequestQuery::new().sort(field, order).offset(offset).limit(7)).await?;
                assert_eq!(page.total, expected.len());
                paged.extend(ids_of(&page.requests));
            }
            assert_eq!(paged, expected, "offset pages, {field:?} {order:?}");

            // Cursor pages.
            let mut paged = Vec::new();
            let mut query = RequestQuery::new().sort(field, order).limit(4);
            loop {
                let page = f.manager.query(query.clone()).await?;
                assert!(page.requests.len() <= 4);
                paged.extend(ids_of(&page.requests));
                match page.next_cursor {
                    Some(c) => query = query.after(c),
                    None => break,
                }
            }
            assert_eq!(paged, expected, "cursor pages, {field:?} {order:?}");
        }
    }
    // Default order: newest first, 50 per page.
    let page = f.manager.query(RequestQuery::new()).await?;
    assert_eq!(ids_of(&page.requests), sorted(&f.all, SortField::Created, SortOrder::Desc));

    // A cursor with a filter pages through the filtered set only.
    let completed: Vec<RequestId> = sorted(&f.all, SortField::Priority, SortOrder::Desc)
        .into_iter()
        .filter(|id| f.all.iter().any(|r| r.request_id == *id && r.status == RequestStatus::Completed))
        .collect();
    let mut query =
        RequestQuery::new().status([RequestStatus::Completed]).sort(SortField::Priority, SortOrder::Desc).limit(3);
    let mut paged = Vec::new();
    loop {
        let page = f.manager.query(query.clone()).await?;
        assert_eq!(page.total, completed.len());
        paged.extend(ids_of(&page.requests));
        match page.next_cursor {
            Some(c) => query = query.after(c),
            None => break,
        }
    }
    assert_eq!(paged, completed);

    // An offset past the end is an empty page; a forged cursor is refused.
    let page = f.manager.query(RequestQuery::new().offset(10_000)).await?;
    assert_eq!((page.requests.len(), page.total), (0, f.all.len()));
    let bad = f.manager.query(RequestQuery::new().after("not-a-cursor")).await;
    let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("invalid cursor"), "{message}");
    f.manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn metrics_report_real_figures() -> anyhow::Result<()> {
    let manager = engine("metrics").await?;
    bank(&manager, "fast", lenient("fast", &["work"])?, 2, 16, &worker())?;
    bank(&manager, "other", lenient("other", &["other-work"])?, 1, 4, &worker())?;

    let empty = manager.metrics().await?;
    assert_eq!((empty.total_requests, empty.success_rate, empty.requests_per_minute), (0, 0.0, 0.0));
    assert_eq!(empty.processing_time.count, 0);

    let mut ids = Vec::new();
    for ms in (10..=100).step_by(10) {
        ids.push(manager.submit("work", json!({"ms": ms}), SubmitOptions::new()).await?);
    }
    for code in ["E1", "E1", "E2", "E1"] {
        ids.push(manager.submit("work", json!({"ms": 5, "fail": code}), SubmitOptions::new()).await?);
    }
    for id in &ids {
        manager.wait(*id).await?;
    }

    let m = manager.metrics().await?;
    assert_eq!(m.total_requests, 14);
    assert_eq!(m.requests_by_status.get(&RequestStatus::Completed), Some(&10));
    assert_eq!(m.requests_by_status.get(&RequestStatus::Failed), Some(&4));
    assert_eq!(m.requests_by_status.values().sum::<u64>(), 14);
    assert!((m.success_rate - 10.0 / 14.0).abs() < 1e-9, "{}", m.success_rate);
    assert!((m.error_rate - 4.0 / 14.0).abs() < 1e-9, "{}", m.error_rate);
    let p = m.processing_time;
    assert_eq!(p.count, 10);
    assert!(p.p50_ms > 0.0 && p.p50_ms <= p.p95_ms && p.p95_ms <= p.p99_ms && p.p99_ms <= p.max_ms, "{p:?}");
    // Paused time: processing times are exactly 10, 20, ..., 100 ms (the histogram keeps 3 digits).
    assert!((p.mean_ms - 55.0).abs() < 0.5, "{p:?}");
    assert!((p.p50_ms - 50.0).abs() < 0.5, "{p:?}");
    assert!((p.max_ms - 100.0).abs() < 0.5, "{p:?}");
    assert_eq!(m.average_processing_time, p.mean_ms);
    assert_eq!(m.requests_per_minute, 14.0);
    let top: Vec<(&str, u64)> = m.top_errors.iter().map(|e| (e.code.as_str(), e.count)).collect();
    assert_eq!(top, [("E1", 3), ("E2", 1)]);
    assert_eq!(m.top_errors[0].last_message, "failed with E1");
    assert_eq!((m.active_banks, m.total_worker_capacity, m.current_load, m.queue_depth), (2, 20, 0, 0));
    let fast = m.bank_performance.iter().find(|b| &*b.bank_id == "fast").ok_or_else(|| anyhow::anyhow!("no fast"))?;
    assert_eq!((fast.completed, fast.failed, fast.capacity, fast.worker_count), (10, 4, 16, 2));
    assert!((fast.success_rate - 10.0 / 14.0).abs() < 1e-9);
    let other =
        m.bank_performance.iter().find(|b| &*b.bank_id == "other").ok_or_else(|| anyhow::anyhow!("no other"))?;
    assert_eq!((other.completed, other.failed, other.success_rate), (0, 0, 1.0));
    let capability = manager
        .capabilities()
        .into_iter()
        .find(|c| &*c.bank_id == "fast")
        .ok_or_else(|| anyhow::anyhow!("no capability"))?;
    assert!((capability.success_rate - 10.0 / 14.0).abs() < 1e-9);

    // Load and queue depth: one request running, one waiting at a paused bank.
    let running = manager.submit("work", json!({"ms": 3_600_000}), SubmitOptions::new()).await?;
    manager.set_bank_status("other", BankStatus::Inactive)?;
    let waiting = manager.submit("other-work", json!({}), SubmitOptions::new()).await?;
    settle().await;
    let m = manager.metrics().await?;
    assert_eq!((m.current_load, m.queue_depth, m.active_banks), (1, 1, 1));
    assert_eq!(m.requests_by_status.get(&RequestStatus::Processing), Some(&1));
    assert_eq!(m.requests_by_status.get(&RequestStatus::Pending), Some(&1));
    let fast = m.bank_performance.iter().find(|b| &*b.bank_id == "fast").ok_or_else(|| anyhow::anyhow!("no fast"))?;
    assert_eq!(fast.current_load, 1);
    assert!((fast.utilization - 1.0 / 16.0).abs() < 1e-9);
    manager.cancel(running).await?;
    manager.cancel(waiting).await?;

    // The requests-per-minute window slides: 30 s later two more finish; 31 s after that only
    // those two are within the last minute; another minute later, none.
    advance(Duration::from_secs(30)).await;
    for _ in 0..2 {
        manager.submit_and_wait("work", json!({}), SubmitOptions::new()).await?;
    }
    assert_eq!(manager.metrics().await?.requests_per_minute, 18.0);
    advance(Duration::from_secs(31)).await;
    assert_eq!(manager.metrics().await?.requests_per_minute, 2.0);
    advance(Duration::from_secs(60)).await;
    let m = manager.metrics().await?;
    assert_eq!((m.requests_per_minute, m.total_requests), (0.0, 18));
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

/// Per-bank and per-capability processing times must agree with the system figures, which follow
/// the engine's clock.
#[tokio::test(start_paused = true)]
async fn bank_processing_times_follow_the_engine_clock() -> anyhow::Result<()> {
    let manager = engine("bank-clock").await?;
    bank(&manager, "fast", lenient("fast", &["work"])?, 1, 4, &worker())?;
    for ms in [100, 200, 300] {
        manager.submit_and_wait("work", json!({"ms": ms}), SubmitOptions::new()).await?;
    }
    let m = manager.metrics().await?;
    assert!((m.processing_time.mean_ms - 200.0).abs() < 1.0, "{:?}", m.processing_time);
    let fast = m.bank_performance.iter().find(|b| &*b.bank_id == "fast").ok_or_else(|| anyhow::anyhow!("no fast"))?;
    assert!(
        (fast.average_processing_time_ms - m.processing_time.mean_ms).abs() < 1.0,
        "bank says {} ms, system says {} ms",
        fast.average_processing_time_ms,
        m.processing_time.mean_ms
    );
    let capability = manager
        .capabilities()
        .into_iter()
        .find(|c| &*c.bank_id == "fast")
        .ok_or_else(|| anyhow::anyhow!("no capability"))?;
    assert!((capability.average_processing_time_ms - 200.0).abs() < 1.0, "{}", capability.average_processing_time_ms);
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn retention_deletes_the_oldest_finished_requests() -> anyhow::Result<()> {
    let config = EngineConfig {
        retention: RetentionConfig {
            max_age: Some(Duration::from_secs(3600)),
            max_count: Some(5),
            // Only explicit sweeps in this test.
            interval: Duration::from_secs(10_000_000),
            batch: 2,
        },
        ..EngineConfig::default()
    };
    let manager = WorkerManager::builder().name("retention").configure(|b| b.config(config)).start().await?;
    bank(&manager, "b", lenient("b", &["job"])?, 1, 1, &worker())?;
    let mut finished = Vec::new();
    for i in 0..9 {
        finished.push(manager.submit_and_wait("job", json!({"i": i}), SubmitOptions::new()).await?.request_id);
        advance(Duration::from_millis(10)).await;
    }
    let waiting = manager.submit("job", json!({}), SubmitOptions::new().delay(Duration::from_secs(86_400))).await?;

    assert_eq!(manager.sweep_retention().await, 4);
    for (i, id) in finished.iter().enumerate() {
        let kept = manager.get_request(*id).await.is_ok();
        assert_eq!(kept, i >= 4, "request {i}");
    }
    assert!(matches!(manager.get_result(finished[0]).await, Err(atmo_workers::Error::NotFound(_))));
    assert_eq!(manager.sweep_retention().await, 0);
    assert_eq!(manager.metrics().await?.total_requests, 6);

    // Past the age limit every finished request goes; unfinished ones stay.
    advance(Duration::from_secs(3601)).await;
    assert_eq!(manager.sweep_retention().await, 5);
    let page = manager.query(RequestQuery::new()).await?;
    assert_eq!(ids_of(&page.requests), [waiting]);
    manager.shutdown(Duration::ZERO).await?;
    Ok(())
}
