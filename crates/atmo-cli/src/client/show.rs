//! How the client commands print records for people: tables for lists, aligned fields for one
//! record. (`--json` bypasses all of this.)

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic).set_header(header.to_vec());
    t
}

fn short_time(v: &Value) -> String {
    // 2026-11-26T10:24:22.981474Z → 2026-11-26 10:24:22
    v.as_str().map_or_else(|| "-".into(), |s| s.get(..19).unwrap_or(s).replace('T', " "))
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() > n { format!("{}…", s.chars().take(n).collect::<String>()) } else { s.to_owned() }
}

/// A request's result.
pub(super) fn result(r: &Value) {
    println!("request   {}", text(&r["requestId"]));
    println!("status    {}", text(&r["status"]));
    println!("attempts  {}", text(&r["attempts"]));
    if let Some(ms) = r["processingTimeMs"].as_f64() {
        println!("time      {ms:.2} ms");
    }
    if r["success"].as_bool() == Some(true) {
        println!(
            "result    {}",
            serde_json::to_string_pretty(&r["payload"]).unwrap_or_default().replace('\n', "\n          ")
        );
    } else if let Some(e) = r.get("error").filter(|e| !e.is_null()) {
        println!("error     {} ({}): {}", text(&e["code"]), text(&e["category"]), text(&e["message"]));
    }
}

/// A request with its whole lifecycle.
pub(super) fn lifecycle(l: &Value) {
    let r = &l["request"];
    let rows = [
        ("request", text(&r["requestId"])),
        ("task", text(&r["taskId"])),
        ("status", text(&r["status"])),
        ("priority", text(&r["priority"])),
        ("attempts", text(&r["attempts"])),
        ("client", text(&r["clientId"])),
        ("bank", text(&r["bankId"])),
        ("worker", text(&r["workerId"])),
        ("created", short_time(&r["createdAt"])),
        ("updated", short_time(&r["updatedAt"])),
    ];
    for (k, v) in rows {
        println!("{k:<10}{v}");
    }
    println!("{:<10}{}", "params", serde_json::to_string(&r["parameters"]).unwrap_or_default());
    if let Some(p) = r.get("progress").filter(|p| !p.is_null()) {
        println!("{:<10}{}% {}", "progress", text(&p["percent"]), p["message"].as_str().unwrap_or(""));
    }
    if !r["result"].is_null() {
        println!("{:<10}{}", "result", serde_json::to_string(&r["result"]).unwrap_or_default());
    }
    let errors = r["errors"].as_array().cloned().unwrap_or_default();
    if !errors.is_empty() {
        let mut t = table(&["attempt", "code", "category", "retried", "message"]);
        for e in &errors {
            t.add_row(vec![
                text(&e["attempt"]),
                text(&e["code"]),
                text(&e["category"]),
                text(&e["retryable"]),
                clip(&text(&e["message"]), 80),
            ]);
        }
        println!("\nerrors\n{t}");
    }
    let history = r["history"].as_array().cloned().unwrap_or_default();
    if !history.is_empty() {
        let mut t = table(&["at", "from", "to", "reason"]);
        for h in &history {
            t.add_row(vec![
                h["at"].as_str().unwrap_or("-").replace('T', " "),
                text(&h["from"]),
                text(&h["to"]),
                clip(&text(&h["reason"]), 60),
            ]);
        }
        println!("\nhistory\n{t}");
    }
}

/// A page of requests.
pub(super) fn requests(page: &Value) {
    let mut t = table(&["request", "task", "status", "prio", "tries", "bank", "created"]);
    let list = page["requests"].as_array().cloned().unwrap_or_default();
    for r in &list {
        t.add_row(vec![
            text(&r["requestId"]),
            text(&r["taskId"]),
            text(&r["status"]),
            text(&r["priority"]),
            text(&r["attempts"]),
            text(&r["bankId"]),
            short_time(&r["createdAt"]),
        ]);
    }
    println!("{t}");
    let total = page["total"].as_u64().map_or_else(|| "?".into(), |n| n.to_string());
    println!("{} of {total}", list.len());
    if let Some(c) = page["nextCursor"].as_str() {
        println!("next page: --cursor {c}");
    }
}

/// The system metrics.
pub(super) fn metrics(m: &Value) {
    println!("requests      {}", text(&m["totalRequests"]));
    let mut statuses = table(&["status", "count"]);
    if let Some(by) = m["requestsByStatus"].as_object() {
        for (k, v) in by {
            statuses.add_row(vec![k.clone(), text(v)]);
        }
    }
    println!("success rate  {:.1}%", m["successRate"].as_f64().unwrap_or(0.0) * 100.0);
    println!("per minute    {:.1}", m["requestsPerMinute"].as_f64().unwrap_or(0.0));
    println!("queue depth   {}", text(&m["queueDepth"]));
    println!("load          {} of {}", text(&m["currentLoad"]), text(&m["totalWorkerCapacity"]));
    let p = &m["processingTime"];
    println!(
        "processing    mean {} ms, p50 {} ms, p99 {} ms",
        text(&p["meanMs"]),
        text(&p["p50Ms"]),
        text(&p["p99Ms"])
    );
    println!("\n{statuses}");
    let errors = m["topErrors"].as_array().cloned().unwrap_or_default();
    if !errors.is_empty() {
        let mut t = table(&["error", "count"]);
        for e in &errors {
            t.add_row(vec![text(&e["code"]), text(&e["count"])]);
        }
        println!("\n{t}");
    }
}

/// The banks with their live figures.
pub(super) fn banks(b: &Value) {
    let list = b.as_array().or_else(|| b["banks"].as_array()).cloned().unwrap_or_default();
    let mut t = table(&["bank", "manifest", "status", "workers", "load", "done", "failed", "success"]);
    for bank in &list {
        let perf = if bank["performance"].is_object() { &bank["performance"] } else { bank };
        t.add_row(vec![
            text(&bank["bankId"]),
            text(&bank["manifest"]),
            text(&bank["status"]),
            text(&bank["workerCount"]),
            format!("{}/{}", text(&perf["currentLoad"]), text(&bank["capacity"])),
            text(&perf["completed"]),
            text(&perf["failed"]),
            perf["successRate"].as_f64().map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0)),
        ]);
    }
    println!("{t}");
}

/// The workers.
pub(super) fn workers(w: &Value) {
    let list = w.as_array().or_else(|| w["workers"].as_array()).cloned().unwrap_or_default();
    let mut t = table(&["worker", "bank", "status", "current", "done", "errors"]);
    for worker in &list {
        let current = match (worker["currentTaskId"].as_str(), worker["currentRequest"].as_str()) {
            (Some(task), Some(req)) => format!("{task} {req}"),
            (None, Some(req)) => req.to_owned(),
            _ => "-".into(),
        };
        t.add_row(vec![
            text(&worker["workerId"]),
            text(&worker["bankId"]),
            text(&worker["status"]),
            current,
            text(&worker["messagesCompleted"]),
            text(&worker["errors"]),
        ]);
    }
    println!("{t}");
}

/// One event as a line: `[id] type  request  details`.
pub(super) fn event_line(id: Option<&str>, kind: &str, data: &str) -> String {
    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let at = v["at"].as_str().map_or_else(String::new, |s| s.get(11..23).unwrap_or(s).to_owned());
    let subject = v["requestId"]
        .as_str()
        .or_else(|| v["workerId"].as_str())
        .or_else(|| v["bankId"].as_str())
        .unwrap_or("")
        .to_owned();
    let mut extra = Vec::new();
    for key in ["taskId", "status", "attempt", "percent", "message", "code", "reason"] {
        if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
            extra.push(format!("{key}={}", text(x)));
        }
    }
    format!("{:>6} {at} {kind:<22} {subject} {}", id.unwrap_or(""), extra.join(" "))
}
