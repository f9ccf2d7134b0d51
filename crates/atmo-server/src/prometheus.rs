//! The Prometheus text exposition format (version 0.0.4), written by hand: it is a plain text
//! format, and the figures come from the engine's metrics and the server's counters.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use atmo_workers::{RequestStatus, SystemMetrics, WorkerInfo, WorkerStatus};

use crate::monitor::Totals;

/// Escapes a label value: backslash, double quote and newline.
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float as Prometheus writes it.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", num(value));
    }
}

/// Renders every metric.
pub(crate) fn render(m: &SystemMetrics, workers: &[WorkerInfo], totals: &Totals, ready: bool) -> String {
    let mut o = Out(String::with_capacity(4096));
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as f64;

    o.family("atmo_requests", "gauge", "Requests held by the store, by status.");
    for s in RequestStatus::ALL {
        o.sample("atmo_requests", &[("status", s.as_str())], m.requests_by_status.get(&s).copied().unwrap_or(0) as f64);
    }
    let counters: [(&str, &str, &std::sync::atomic::AtomicU64); 8] = [
        ("atmo_requests_submitted_total", "Requests accepted since the server started.", &totals.submitted),
        ("atmo_requests_completed_total", "Requests completed since the server started.", &totals.completed),
        ("atmo_requests_failed_total", "Requests failed for good since the server started.", &totals.failed),
        (
            "atmo_requests_timed_out_total",
            "Requests whose last attempt timed out since the server started.",
            &totals.timed_out,
        ),
        ("atmo_requests_cancelled_total", "Requests cancelled since the server started.", &totals.cancelled),
        ("atmo_request_retries_total", "Attempts scheduled for a retry since the server started.", &totals.retried),
        ("atmo_requests_rescued_total", "Requests returned to pending after losing their worker.", &totals.rescued),
        ("atmo_submissions_refused_total", "Submissions refused because the queue was full.", &totals.overloads),
    ];
    for (name, help, c) in counters {
        o.family(name, "counter", help);
        o.sample(name, &[], load(c));
    }
    o.family("atmo_events_lost_total", "counter", "Engine events the server's event buffer missed by lagging.");
    o.sample("atmo_events_lost_total", &[], load(&totals.events_lost));

    o.family("atmo_queue_depth", "gauge", "Requests waiting (pending and scheduled).");
    o.sample("atmo_queue_depth", &[], m.queue_depth as f64);
    o.family("atmo_worker_capacity", "gauge", "Requests all banks may hold at once.");
    o.sample("atmo_worker_capacity", &[], m.total_worker_capacity as f64);
    o.family("atmo_current_load", "gauge", "Requests the banks hold now.");
    o.sample("atmo_current_load", &[], m.current_load as f64);
    o.family("atmo_requests_per_minute", "gauge", "Requests finished in the last 60 seconds.");
    o.sample("atmo_requests_per_minute", &[], m.requests_per_minute);

    o.family("atmo_bank_utilization", "gauge", "Load over capacity of each bank (0-1).");
    for b in &m.bank_performance {
        o.sample("atmo_bank_utilization", &[("bank", &b.bank_id)], b.utilization);
    }
    o.family("atmo_bank_load", "gauge", "Requests each bank holds.");
    for b in &m.bank_performance {
        o.sample("atmo_bank_load", &[("bank", &b.bank_id)], b.current_load as f64);
    }
    o.family("atmo_bank_capacity", "gauge", "Requests each bank may hold.");
    for b in &m.bank_performance {
        o.sample("atmo_bank_capacity", &[("bank", &b.bank_id)], b.capacity as f64);
    }
    o.family("atmo_bank_completed_total", "counter", "Requests each bank completed.");
    for b in &m.bank_performance {
        o.sample("atmo_bank_completed_total", &[("bank", &b.bank_id)], b.completed as f64);
    }
    o.family("atmo_bank_failed_total", "counter", "Failed attempts on each bank (retried ones and timeouts included).");
    for b in &m.bank_performance {
        o.sample("atmo_bank_failed_total", &[("bank", &b.bank_id)], b.failed as f64);
    }
    o.family(
        "atmo_bank_abandoned_workers_total",
        "counter",
        "Worker threads of each bank written off because a handler overstayed its timeout.",
    );
    for b in &m.bank_performance {
        o.sample("atmo_bank_abandoned_workers_total", &[("bank", &b.bank_id)], b.abandoned_workers as f64);
    }

    o.family("atmo_workers", "gauge", "Workers by state.");
    for (state, name) in [
        (WorkerStatus::Idle, "idle"),
        (WorkerStatus::Busy, "busy"),
        (WorkerStatus::Error, "error"),
        (WorkerStatus::Offline, "offline"),
    ] {
        let n = workers.iter().filter(|w| w.status == state).count();
        o.sample("atmo_workers", &[("state", name)], n as f64);
    }

    let p = &m.processing_time;
    o.family("atmo_request_processing_seconds", "summary", "Processing time of completed requests held by the store.");
    for (q, v) in [("0.5", p.p50_ms), ("0.95", p.p95_ms), ("0.99", p.p99_ms)] {
        o.sample("atmo_request_processing_seconds", &[("quantile", q)], v / 1000.0);
    }
    o.sample("atmo_request_processing_seconds_sum", &[], p.mean_ms * p.count as f64 / 1000.0);
    o.sample("atmo_request_processing_seconds_count", &[], p.count as f64);

    o.family(
        "atmo_ready",
        "gauge",
        "1 while the server takes work, 0 once shutdown began or the store stopped taking writes.",
    );
    o.sample("atmo_ready", &[], if ready { 1.0 } else { 0.0 });
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(num(f64::INFINITY), "+Inf");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(3.0), "3");
    }
}
