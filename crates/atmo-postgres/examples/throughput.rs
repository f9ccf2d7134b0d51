//! A rough throughput of the store's batch operations against a server: inserts, claims and
//! applies (start and complete) of N requests in batches, one store, one caller, in a schema
//! of its own that is dropped afterwards.
//!
//! ```bash
//! cargo run --release -p atmo-postgres --example throughput [-- N BATCH]
//! ```
//!
//! Connects to `ATMO_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use atmo_core::{ClaimParams, Request, RequestId, Store, Timestamp, Transition};
use atmo_postgres::{PostgresConfig, PostgresStore};
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(20_000, |a| a.parse().expect("N"));
    let batch: usize = args.next().map_or(500, |a| a.parse().expect("BATCH"));
    let url =
        std::env::var("ATMO_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let schema = format!("atmo_bench_{}", std::process::id());
    let store = PostgresStore::connect(PostgresConfig::new(&url).schema(schema.clone())).await.expect("connect");
    let t0 = Timestamp::from_millis(1_700_000_000_000);
    let requests: Vec<Request> = (0..n)
        .map(|i| {
            let mut random = [0u8; 10];
            random[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Request::new(RequestId::from_parts(t0, random), "bench", json!({"i": i}), t0, None)
        })
        .collect();

    let start = Instant::now();
    for chunk in requests.chunks(batch) {
        store.insert_many(chunk.to_vec()).await.expect("insert");
    }
    let insert = start.elapsed();

    let start = Instant::now();
    let mut claimed = Vec::with_capacity(n);
    loop {
        let got = store
            .claim(ClaimParams {
                bank_id: Arc::from("bank"),
                task_ids: vec![Arc::from("bench")],
                limit: batch,
                owner: Arc::from("node"),
                now: t0,
                lease_until: Timestamp::from_millis(1_800_000_000_000),
            })
            .await
            .expect("claim");
        if got.is_empty() {
            break;
        }
        claimed.extend(got);
    }
    let claim = start.elapsed();
    assert_eq!(claimed.len(), n, "every request is claimed once");

    let start = Instant::now();
    for chunk in claimed.chunks(batch) {
        let mut ts = Vec::with_capacity(chunk.len() * 2);
        for c in chunk {
            ts.push(Transition::start(c.request_id, c.attempt, Arc::from("w"), t0));
            ts.push(Transition::complete(c.request_id, c.attempt, Arc::new(json!(1)), t0));
        }
        let out = store.apply(ts).await.expect("apply");
        assert!(out.iter().all(Result::is_ok));
    }
    let apply = start.elapsed();
    drop(store);

    let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    println!("postgres store, {n} requests in batches of {batch}:");
    println!("  insert_many           {:>9.0} requests/s", rate(insert));
    println!("  claim                 {:>9.0} requests/s", rate(claim));
    println!("  apply start+complete  {:>9.0} requests/s", rate(apply));

    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("drop schema");
}
