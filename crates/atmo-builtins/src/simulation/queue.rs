//! `QUEUE_SIMULATION`: an M/M/c first-come-first-served queue by discrete-event simulation,
//! next to the analytic Erlang-C values when the queue is stable (ρ = λ/(cμ) < 1).
//!
//! Customers are served in arrival order, so each one takes the server that frees up first: a
//! min-heap of the servers' next free times is the whole event list.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};

use super::input::positive;
use super::rng::{Rng, seed};
use super::{MAX_CUSTOMERS, MAX_SERVERS};
use crate::params::Params;

/// Customers between two cancellation checks.
const CHUNK: u64 = 1 << 14;

/// A time ordered by `total_cmp` (times here are finite and non-negative).
#[derive(Clone, Copy, PartialEq)]
struct Time(f64);

impl Eq for Time {}

impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Time {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let lambda = positive(p, "arrivalRate", 1e12)?;
    let mu = positive(p, "serviceRate", 1e12)?;
    let servers = p.opt_u64("servers", 1, MAX_SERVERS)?.unwrap_or(1);
    let customers = p.opt_u64("customers", 1, MAX_CUSTOMERS)?.unwrap_or(10_000);
    let seed = seed(ctx, p)?;

    let mut rng = Rng::new(seed);
    let mut free: BinaryHeap<Reverse<Time>> = (0..servers).map(|_| Reverse(Time(0.0))).collect();
    let (mut clock, mut last_departure) = (0.0f64, 0.0f64);
    let (mut total_wait, mut total_system, mut total_service, mut max_wait) = (0.0, 0.0, 0.0, 0.0f64);
    let mut waited = 0u64;
    for c in 0..customers {
        if c % CHUNK == 0 {
            ctx.cancel.check()?;
        }
        clock += rng.exponential(lambda);
        let Some(Reverse(Time(available))) = free.pop() else { break };
        let start = clock.max(available);
        let service = rng.exponential(mu);
        let end = start + service;
        free.push(Reverse(Time(end)));
        let wait = start - clock;
        if wait > 0.0 {
            waited += 1;
        }
        total_wait += wait;
        total_system += end - clock;
        total_service += service;
        max_wait = max_wait.max(wait);
        last_departure = last_departure.max(end);
    }
    let n = customers as f64;
    let c = servers as f64;
    let rho = lambda / (c * mu);
    let mut result = json!({
        "type": "QUEUE_SIMULATION_RESULT",
        "customers": customers,
        "servers": servers,
        "arrivalRate": lambda,
        "serviceRate": mu,
        "trafficIntensity": rho,
        "meanWait": total_wait / n,
        "meanTimeInSystem": total_system / n,
        "maxWait": max_wait,
        "fractionWaited": waited as f64 / n,
        "utilization": if last_departure > 0.0 { total_service / (c * last_departure) } else { 0.0 },
        "simulatedTime": last_departure,
        "unstable": rho >= 1.0,
        "seed": seed,
    });
    result["analytic"] = match erlang_c(lambda, mu, servers) {
        Some(a) => json!({
            "probabilityOfWaiting": a.p_wait,
            "meanWait": a.wq,
            "meanTimeInSystem": a.wq + 1.0 / mu,
            "meanQueueLength": lambda * a.wq,
            "meanNumberInSystem": lambda * (a.wq + 1.0 / mu),
            "utilization": rho,
        }),
        None => Value::Null,
    };
    Ok(result)
}

/// Steady-state values of an M/M/c queue.
pub(super) struct ErlangC {
    /// Probability that an arrival has to wait (Erlang's C formula).
    pub(super) p_wait: f64,
    /// Mean wait in the queue, `Wq`.
    pub(super) wq: f64,
}

/// Erlang C through the Erlang B recursion `B(k) = aB(k−1) / (k + aB(k−1))`, which stays finite
/// for thousands of servers; `None` when the queue is unstable (ρ ≥ 1).
pub(super) fn erlang_c(lambda: f64, mu: f64, servers: u64) -> Option<ErlangC> {
    let a = lambda / mu;
    let c = servers as f64;
    let rho = a / c;
    if rho >= 1.0 {
        return None;
    }
    let mut b = 1.0;
    for k in 1..=servers {
        b = a * b / (k as f64 + a * b);
    }
    let p_wait = b / (1.0 - rho * (1.0 - b));
    Some(ErlangC { p_wait, wq: p_wait / (c * mu - lambda) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_reduces_to_mm1() {
        let e = erlang_c(0.5, 1.0, 1);
        assert!(e.as_ref().is_some_and(|e| (e.p_wait - 0.5).abs() < 1e-12 && (e.wq - 1.0).abs() < 1e-12));
        // M/M/2 with a = 1: C = 1/3, Wq = C / (2μ − λ) = 1/3.
        let e = erlang_c(1.0, 1.0, 2);
        assert!(e.as_ref().is_some_and(|e| (e.p_wait - 1.0 / 3.0).abs() < 1e-12 && (e.wq - 1.0 / 3.0).abs() < 1e-12));
        assert!(erlang_c(2.0, 1.0, 2).is_none());
    }
}
