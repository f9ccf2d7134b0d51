//! Tests of the activity tracer, through its public API.

use std::sync::Arc;
use std::time::Duration;

use atmo_core::{RequestId, Timestamp, WorkerStatus};

use super::{ActivityTracer, BankActivity, LoadTotals, WorkerStatusCounts};

fn ids(bank: &str, n: usize) -> Vec<Arc<str>> {
    (0..n).map(|i| Arc::from(format!("{bank}/{i}"))).collect()
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn least_loaded_worker_prefers_lowest_load_then_fastest_then_lowest_index() {
    let bank = BankActivity::new(Arc::from("b"), ids("b", 3));
    assert_eq!(bank.least_loaded_worker(), Some(0), "all equal: lowest index");

    bank.record_dispatch(0);
    assert_eq!(bank.least_loaded_worker(), Some(1));
    bank.record_dispatch(1);
    bank.record_dispatch(2);
    assert_eq!(bank.least_loaded_worker(), Some(0), "all hold one: lowest index");

    // Equal load: the faster worker wins.
    bank.record_finish(0, ms(50), true, t(1));
    bank.record_finish(1, ms(10), true, t(1));
    bank.record_finish(2, ms(30), true, t(1));
    assert_eq!(bank.least_loaded_worker(), Some(1));

    // Load beats speed.
    bank.record_dispatch(1);
    assert_eq!(bank.least_loaded_worker(), Some(2));
}

#[test]
fn workers_without_samples_are_tried_before_measured_ones() {
    let bank = BankActivity::new(Arc::from("b"), ids("b", 2));
    bank.record_dispatch(0);
    bank.record_finish(0, ms(5), true, t(1));
    assert_eq!(bank.least_loaded_worker(), Some(1));
}

#[test]
fn error_and_offline_workers_are_skipped() {
    let bank = BankActivity::new(Arc::from("b"), ids("b", 2));
    bank.set_status(0, WorkerStatus::Error);
    bank.record_dispatch(1);
    assert_eq!(bank.least_loaded_worker(), Some(1));
    bank.set_status(1, WorkerStatus::Offline);
    assert_eq!(bank.least_loaded_worker(), None);
    bank.set_status(0, WorkerStatus::Idle);
    assert_eq!(bank.least_loaded_worker(), Some(0));
}

#[test]
fn get_next_worker_picks_least_loaded_bank_per_worker() {
    let tracer = ActivityTracer::new();
    let a = tracer.initialize_bank(Arc::from("a"), ids("a", 1));
    let b = tracer.initialize_bank(Arc::from("b"), ids("b", 4));
    a.record_dispatch(0);
    b.record_dispatch(0);
    b.record_dispatch(1);
    // a: 1 per worker; b: 0.5 per worker.
    assert_eq!(tracer.get_next_worker(None), Some((Arc::from("b"), 2)));
    assert_eq!(tracer.get_next_worker(Some("a")), Some((Arc::from("a"), 0)));
    assert_eq!(tracer.get_next_worker(Some("missing")), None);

    // Offline workers do not count as capacity: b now has 2 usable workers holding 2.
    b.set_status(2, WorkerStatus::Offline);
    b.set_status(3, WorkerStatus::Offline);
    b.record_dispatch(0);
    // a: 1/1, b: 3/2.
    assert_eq!(tracer.get_next_worker(None), Some((Arc::from("a"), 0)));
}

#[test]
fn get_next_worker_breaks_bank_ties_by_response_time() {
    let tracer = ActivityTracer::new();
    let a = tracer.initialize_bank(Arc::from("a"), ids("a", 1));
    let b = tracer.initialize_bank(Arc::from("b"), ids("b", 1));
    for (bank, d) in [(&a, 80), (&b, 20)] {
        bank.record_dispatch(0);
        bank.record_finish(0, ms(d), true, t(1));
    }
    assert_eq!(tracer.get_next_worker(None).map(|(b, _)| b), Some(Arc::from("b")));
}

#[test]
fn get_next_worker_is_none_without_usable_workers() {
    let tracer = ActivityTracer::new();
    assert_eq!(tracer.get_next_worker(None), None);
    let a = tracer.initialize_bank(Arc::from("a"), ids("a", 1));
    tracer.initialize_bank(Arc::from("empty"), Vec::new());
    a.set_status(0, WorkerStatus::Error);
    assert_eq!(tracer.get_next_worker(None), None);
}

#[test]
fn moving_average_first_sample_sets_it_then_alpha_point_two() {
    let bank = BankActivity::new(Arc::from("b"), ids("b", 1));
    assert_eq!(bank.average_response_ms(), 0.0);
    bank.record_finish(0, ms(100), true, t(1));
    assert_eq!(bank.snapshot()[0].average_response_time_ms, 100.0);
    bank.record_finish(0, ms(200), true, t(2));
    // 100 + 0.2 * (200 - 100)
    assert!((bank.snapshot()[0].average_response_time_ms - 120.0).abs() < 1e-9);
    bank.record_finish(0, ms(0), true, t(3));
    // 120 + 0.2 * (0 - 120)
    assert!((bank.average_response_ms() - 96.0).abs() < 1e-9);
}

#[test]
fn bank_average_is_weighted_by_completed() {
    let bank = BankActivity::new(Arc::from("b"), ids("b", 2));
    for _ in 0..3 {
        bank.record_finish(0, ms(10), true, t(1));
    }
    bank.record_finish(1, ms(50), true, t(1));
    assert!((bank.average_response_ms() - (3.0 * 10.0 + 50.0) / 4.0).abs() < 1e-9);
}

#[test]
fn status_follows_load_and_explicit_marks() {
    let bank = BankActivity::new(Arc::from("b"), ids("b", 1));
    let status = || bank.worker_status(0);
    assert_eq!(status(), Some(WorkerStatus::Idle));

    bank.record_dispatch(0);
    bank.record_dispatch(0);
    bank.record_start(0, RequestId::from_u128(7), t(10));
    let w = &bank.snapshot()[0];
    assert_eq!((w.status, w.current_load, w.current_request), (WorkerStatus::Busy, 2, Some(RequestId::from_u128(7))));
    assert_eq!(w.last_activity, Some(t(10)));

    bank.record_finish(0, ms(1), true, t(20));
    assert_eq!(status(), Some(WorkerStatus::Busy), "still holds one");
    bank.record_dropped(0);
    let w = &bank.snapshot()[0];
    assert_eq!((w.status, w.current_load, w.current_request), (WorkerStatus::Idle, 0, None));
    assert_eq!((w.messages_sent, w.messages_completed), (2, 1));
    assert_eq!(w.last_activity, Some(t(20)));

    // Error is sticky through finishes but cleared by a start; offline is sticky.
    bank.set_status(0, WorkerStatus::Error);
    bank.record_dispatch(0);
    bank.record_finish(0, ms(1), false, t(30));
    assert_eq!(status(), Some(WorkerStatus::Error));
    bank.record_start(0, RequestId::from_u128(8), t(40));
    assert_eq!(status(), Some(WorkerStatus::Idle));
    bank.set_status(0, WorkerStatus::Offline);
    bank.record_start(0, RequestId::from_u128(9), t(50));
    assert_eq!(status(), Some(WorkerStatus::Offline));
    assert_eq!(bank.snapshot()[0].errors, 1);
}

#[test]
fn load_never_underflows_and_out_of_range_is_ignored() {
    let bank = BankActivity::new(Arc::from("b"), ids("b", 1));
    bank.record_finish(0, ms(1), true, t(1));
    bank.record_dropped(0);
    assert_eq!(bank.worker_load(0), 0);

    bank.record_dispatch(5);
    bank.record_start(5, RequestId::from_u128(1), t(1));
    bank.record_finish(5, ms(1), true, t(1));
    bank.record_dropped(5);
    bank.set_status(5, WorkerStatus::Error);
    assert_eq!(bank.worker_load(5), 0);
    assert_eq!(bank.worker_status(5), None);
    assert_eq!(&**bank.worker_id(5), "b/unknown");
    assert_eq!(&**bank.worker_id(0), "b/0");
    assert_eq!(bank.load(), 0);
}

#[test]
fn initialize_replaces_and_remove_forgets() {
    let tracer = ActivityTracer::new();
    let old = tracer.initialize_bank(Arc::from("a"), ids("a", 1));
    old.record_dispatch(0);
    tracer.initialize_bank(Arc::from("a"), ids("a", 3));
    let bank = tracer.bank("a");
    assert_eq!(bank.as_ref().map(|b| (b.worker_count(), b.load())), Some((3, 0)));
    assert_eq!(tracer.workers(None).len(), 3);
    assert_eq!(tracer.bank_ids(), vec![Arc::<str>::from("a")]);
    tracer.remove_bank("a");
    assert!(tracer.bank("a").is_none());
    assert!(tracer.workers(Some("a")).is_empty());
}

#[test]
fn report_totals_and_summaries() {
    let tracer = ActivityTracer::new();
    let a = tracer.initialize_bank(Arc::from("a"), ids("a", 2));
    a.record_dispatch(0);
    a.record_dispatch(1);
    a.record_finish(1, ms(10), false, t(1));
    let report = tracer.load_balancing_report();
    assert_eq!(
        report.totals,
        LoadTotals {
            banks: 1,
            workers: 2,
            busy: 1,
            idle: 1,
            error: 0,
            offline: 0,
            total_load: 1,
            messages_sent: 2,
            messages_completed: 1,
            errors: 1
        }
    );
    let s = &report.banks[0];
    assert_eq!((s.load, s.average_load_per_worker, s.average_response_ms), (1, 0.5, 10.0));
    assert_eq!(s.workers_by_status, WorkerStatusCounts { idle: 1, busy: 1, error: 0, offline: 0 });

    let json = serde_json::to_value(&report).unwrap_or_default();
    assert_eq!(json["totals"]["totalLoad"], 1);
    assert_eq!(json["banks"][0]["averageLoadPerWorker"], 0.5);
    assert_eq!(json["banks"][0]["workersByStatus"]["busy"], 1);
}

#[test]
fn report_recommends_on_overload_unavailable_and_idle_banks() {
    let tracer = ActivityTracer::new();
    let hot = tracer.initialize_bank(Arc::from("hot"), ids("hot", 2));
    tracer.initialize_bank(Arc::from("cold"), ids("cold", 2));
    let broken = tracer.initialize_bank(Arc::from("broken"), ids("broken", 2));
    for _ in 0..6 {
        hot.record_dispatch(0);
    }
    broken.set_status(0, WorkerStatus::Offline);
    broken.set_status(1, WorkerStatus::Error);
    // 6 requests over 6 workers: 1 per worker; hot has 3 per worker.
    let recs = tracer.load_balancing_report().recommendations;
    let about = |bank: &str, word: &str| recs.iter().any(|r| r.contains(&format!("`{bank}`")) && r.contains(word));
    assert!(about("hot", "overloaded"), "{recs:?}");
    assert!(about("broken", "2 of 2 workers unavailable"), "{recs:?}");
    assert!(about("cold", "idle"), "{recs:?}");
    assert!(!about("broken", "idle"), "a bank without usable workers is not idle: {recs:?}");
    assert_eq!(recs.len(), 3, "{recs:?}");

    // Balanced again: nothing to say.
    for _ in 0..6 {
        hot.record_finish(0, ms(1), true, t(1));
    }
    broken.set_status(0, WorkerStatus::Idle);
    broken.set_status(1, WorkerStatus::Idle);
    assert!(tracer.load_balancing_report().recommendations.is_empty());
}

#[test]
fn concurrent_recording_keeps_counts_exact() {
    const THREADS: usize = 8;
    const PER_THREAD: u64 = 20_000;
    let bank = Arc::new(BankActivity::new(Arc::from("b"), ids("b", 2)));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let bank = bank.clone();
            std::thread::spawn(move || {
                let idx = i % 2;
                for n in 0..PER_THREAD {
                    bank.record_dispatch(idx);
                    bank.record_start(idx, RequestId::from_u128(u128::from(n)), t(n as i64));
                    bank.record_finish(idx, ms(n % 7), n % 3 != 0, t(n as i64));
                }
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().is_ok());
    }
    let per_worker = PER_THREAD * (THREADS as u64 / 2);
    for w in bank.snapshot() {
        assert_eq!(w.messages_sent, per_worker);
        assert_eq!(w.messages_completed, per_worker);
        assert_eq!(w.errors, (THREADS as u64 / 2) * (0..PER_THREAD).filter(|n| n % 3 == 0).count() as u64);
        assert_eq!(w.current_load, 0);
        assert_eq!(w.status, WorkerStatus::Idle);
        assert_eq!(w.current_request, None);
        assert!((0.0..=6.0).contains(&w.average_response_time_ms));
        assert_eq!(w.last_activity, Some(t(PER_THREAD as i64 - 1)));
    }
}
