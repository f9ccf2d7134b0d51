//! The baseline: the same work done the plainest way.
//!
//! Two std threads take jobs from one crossbeam channel; each job carries its JSON parameters
//! and its own reply channel (`crossbeam_channel::bounded(1)`), and the worker sends the result
//! back on it. No ids, no states, no history: what any program would write by hand to run
//! closures on two threads and get the answers back. Its figures show what the machine can do,
//! so the engine's ratio says what the bookkeeping costs.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use atmo_workers::{RequestId, Timestamp};
use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use super::work;
use crate::alloc::Counting;

/// Worker threads, as many as the engine's bank has.
pub(crate) const THREADS: usize = 2;

/// What a worker thread receives.
struct Job {
    params: Value,
    reply: Sender<Value>,
}

/// Two worker threads behind one channel.
pub(crate) struct Pool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `threads` worker threads.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub(crate) fn start(threads: usize) -> anyhow::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let threads = (0..threads)
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new().name(format!("baseline-{i}")).spawn(move || {
                    for job in rx {
                        // The driver may have given up on this reply; nothing to do then.
                        let _ = job.reply.send(work::add(&job.params));
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .context("cannot start the baseline's threads")?;
        Ok(Pool { jobs: Some(tx), threads })
    }

    fn submit(&self, params: Value) -> anyhow::Result<Receiver<Value>> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.jobs
            .as_ref()
            .ok_or_else(|| anyhow!("the baseline pool is stopped"))?
            .send(Job { params, reply })
            .map_err(|_| anyhow!("the baseline's threads stopped"))?;
        Ok(rx)
    }

    /// Runs `total` requests, `batch` at a time with up to `in_flight` batches sent before the
    /// oldest is collected (as the engine's driver does); returns the elapsed time.
    ///
    /// # Errors
    /// A worker thread that stopped, or a wrong result.
    pub(crate) fn throughput(&self, total: usize, batch: usize, in_flight: usize) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut pending: VecDeque<(usize, Vec<Receiver<Value>>)> = VecDeque::with_capacity(in_flight);
        let mut next = 0;
        while next < total || !pending.is_empty() {
            if next < total && pending.len() < in_flight {
                let end = (next + batch).min(total);
                let replies = (next..end).map(|i| self.submit(work::params(i))).collect::<anyhow::Result<Vec<_>>>()?;
                pending.push_back((next, replies));
                next = end;
                continue;
            }
            if let Some((first, replies)) = pending.pop_front() {
                for (i, rx) in (first..).zip(replies) {
                    let result = rx.recv().map_err(|_| anyhow!("a baseline thread dropped request {i}"))?;
                    work::check(i, Some(&result))?;
                }
            }
        }
        Ok(start.elapsed())
    }

    /// Round-trip times of `samples` requests sent one at a time, after `warmup` untimed ones.
    ///
    /// # Errors
    /// A worker thread that stopped, or a wrong result.
    pub(crate) fn latency(&self, warmup: usize, samples: usize) -> anyhow::Result<Vec<Duration>> {
        let mut times = Vec::with_capacity(samples);
        for i in 0..warmup + samples {
            let start = Instant::now();
            let result = self.submit(work::params(i))?.recv().map_err(|_| anyhow!("a baseline thread stopped"))?;
            let elapsed = start.elapsed();
            work::check(i, Some(&result))?;
            if i >= warmup {
                times.push(elapsed);
            }
        }
        Ok(times)
    }

    /// Heap bytes per finished request a plain program retains when it keeps each id and
    /// result in a `HashMap<RequestId, Arc<Value>>` (the least a ledger can keep), beyond the
    /// result itself: the table's slots, load factor included.
    ///
    /// # Errors
    /// A worker thread that stopped.
    pub(crate) fn memory(&self, alloc: &Counting, requests: usize, result_bytes: f64) -> anyhow::Result<f64> {
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        alloc.start();
        let mut ledger: HashMap<RequestId, Arc<Value>> = HashMap::new();
        for i in 0..requests {
            let rx = self.submit(Value::Object(serde_json::Map::new()))?;
            let result = rx.recv().map_err(|_| anyhow!("a baseline thread stopped"))?;
            let mut random = [0u8; 10];
            // Bytes 3.. are not touched by the UUID's version and variant bits.
            random[3..].copy_from_slice(&(i as u64).to_le_bytes()[..7]);
            ledger.insert(RequestId::from_parts(now, random), Arc::new(result));
        }
        let net = alloc.stop();
        drop(ledger);
        Ok(net as f64 / requests.max(1) as f64 - result_bytes)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the channel ends the workers' loops.
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
