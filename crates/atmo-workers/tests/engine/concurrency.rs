//! 200,000 requests across several thread banks: each completes exactly once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atmo_workers::mock::MockWorker;
use atmo_workers::{
    BankSpec, Handler, Handlers, RequestId, RequestQuery, RequestStatus, SortField, SortOrder, SubmitRequest,
    TaskContext, TaskError, WorkerManager,
};
use serde_json::{Value, json};

const TOTAL: usize = 200_000;
const BATCH: usize = 5_000;
const SUBMITTERS: usize = 4;
const TASKS: [&str; 3] = ["alpha", "beta", "gamma"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_requests_each_complete_exactly_once() -> anyhow::Result<()> {
    let began = Instant::now();
    let manager = WorkerManager::builder().name("concurrency").start().await?;
    // One invocation counter per request (indexed by its `i` parameter), and one in all.
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..TOTAL).map(|_| AtomicU32::new(0)).collect());
    let total = Arc::new(AtomicU64::new(0));
    for task in TASKS {
        let (counts, total) = (counts.clone(), total.clone());
        let handler = Handler::sync(move |ctx: &TaskContext, p: &Value| {
            let i = p["i"].as_u64().and_then(|i| usize::try_from(i).ok()).ok_or_else(|| TaskError::invalid("no i"))?;
            counts.get(i).ok_or_else(|| TaskError::invalid("i out of range"))?.fetch_add(1, Ordering::Relaxed);
            total.fetch_add(1, Ordering::Relaxed);
            Ok(json!({"i": i, "task": &*ctx.task_id}))
        });
        manager.initialize_worker_bank(
            BankSpec::new(format!("bank-{task}"), MockWorker::manifest(task, &[task]))
                .workers(2)
                .capacity(1024)
                .handlers(Handlers::new().on(task, handler)),
        )?;
    }

    // Several submitters, each sending batches and awaiting them.
    let mut submitters = Vec::new();
    for s in 0..SUBMITTERS {
        let manager = manager.clone();
        submitters.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut start = s * BATCH;
            while start < TOTAL {
                let batch: Vec<SubmitRequest> = (start..(start + BATCH).min(TOTAL))
                    .map(|i| SubmitRequest::new(TASKS[i % TASKS.len()], json!({"i": i})))
                    .collect();
                let results = manager.submit_many_and_wait(batch).await?;
                for (k, r) in results.iter().enumerate() {
                    let i = start + k;
                    assert_eq!((r.status, r.attempts), (RequestStatus::Completed, 1), "request {i}");
                    let payload = r.payload.as_deref().cloned().unwrap_or_default();
                    assert_eq!(payload, json!({"i": i, "task": TASKS[i % TASKS.len()]}), "request {i}");
                    ids.push(r.request_id);
                }
                start += SUBMITTERS * BATCH;
            }
            Ok::<_, atmo_workers::Error>(ids)
        }));
    }
    let mut submitted: HashSet<RequestId> = HashSet::with_capacity(TOTAL);
    for s in submitters {
        for id in s.await?? {
            assert!(submitted.insert(id), "duplicate id {id}");
        }
    }
    let processed = began.elapsed();
    assert_eq!(submitted.len(), TOTAL);
    assert_eq!(total.load(Ordering::Relaxed), TOTAL as u64, "handler invocations");
    let twice: Vec<usize> = (0..TOTAL).filter(|&i| counts[i].load(Ordering::Relaxed) != 1).take(10).collect();
    assert!(twice.is_empty(), "requests not run exactly once: {twice:?}");

    // The ledger agrees: every request completed on its first attempt, with one completion in
    // its history.
    let metrics = manager.metrics().await?;
    assert_eq!(metrics.total_requests, TOTAL as u64);
    assert_eq!(metrics.requests_by_status.get(&RequestStatus::Completed), Some(&(TOTAL as u64)));
    assert_eq!(metrics.current_load, 0);
    let mut seen = HashSet::with_capacity(TOTAL);
    let mut query = RequestQuery::new().sort(SortField::Created, SortOrder::Asc).limit(10_000);
    loop {
        let page = manager.query(query.clone()).await?;
        for r in &page.requests {
            assert_eq!((r.status, r.attempts), (RequestStatus::Completed, 1), "{}", r.request_id);
            let completions = r.history.iter().filter(|h| h.to == RequestStatus::Completed).count();
            assert_eq!((completions, r.history.len()), (1, 4), "{}", r.request_id);
            assert!(seen.insert(r.request_id), "{} paged twice", r.request_id);
        }
        match page.next_cursor {
            Some(c) => query = query.after(c),
            None => break,
        }
    }
    assert_eq!(seen, submitted);
    let banks: Vec<(String, u64)> =
        metrics.bank_performance.iter().map(|b| (b.bank_id.to_string(), b.completed)).collect();
    assert_eq!(banks.iter().map(|b| b.1).sum::<u64>(), TOTAL as u64, "{banks:?}");
    assert!(banks.iter().all(|b| b.1 > 0), "{banks:?}");

    manager.shutdown(Duration::from_secs(10)).await?;
    eprintln!("200k requests: processed in {processed:?}, verified in {:?}", began.elapsed() - processed);
    Ok(())
}
