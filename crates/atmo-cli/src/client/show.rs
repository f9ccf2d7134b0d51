//! How the client commands print records for people: tables for lists, aligned fields for one
//! record. (`--json` bypasses all of this.)
//!
//! Everything printed here comes from the server, and so, in the end, from whoever submitted
//! a request or wrote a worker: every string goes through [`clean`], so that stored text
//! cannot send escape sequences to the terminal (retitle it, clear it, fake output).

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

/// `s` with every control character (C0, DEL, C1: ESC, BEL, CSI, newlines, ...) written as
/// `\u{1b}`, so that it prints as visible text and cannot drive the terminal.
pub(crate) fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    clean_keeping(s, false)
}

/// [`clean`], but line breaks stay (multi-line text this client laid out itself).
pub(crate) fn clean_lines(s: &str) -> std::borrow::Cow<'_, str> {
    clean_keeping(s, true)
}

fn clean_keeping(s: &str, newlines: bool) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && !(newlines && c == '\n');
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A value as one line of printable text.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => clean(s).into_owned(),
        other => clean(&other.to_string()).into_owned(),
    }
}

/// A value as (pretty or compact) JSON, cleaned: JSON escapes C0 controls in strings, not DEL or
/// the C1 controls (`\u{9b}` is a CSI on many terminals).
fn json_text(v: &Value, pretty: bool) -> String {
    let s = if pretty { serde_json::to_string_pretty(v) } else { serde_json::to_string(v) }.unwrap_or_default();
    clean_lines(&s).into_owned()
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic).set_header(header.to_vec());
    t
}

fn short_time(v: &Value) -> String {
    // 2026-11-26T10:24:22.981474Z → 2026-11-26 10:24:22
    v.as_str().map_or_else(|| "-".into(), |s| clean(s.get(..19).unwrap_or(s)).replace('T', " "))
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
        println!("result    {}", json_text(&r["payload"], true).replace('\n', "\n          "));
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
    println!("{:<10}{}", "params", json_text(&r["parameters"], false));
    if let Some(p) = r.get("progress").filter(|p| !p.is_null()) {
        println!("{:<10}{}% {}", "progress", text(&p["percent"]), clean(p["message"].as_str().unwrap_or("")));
    }
    if !r["result"].is_null() {
        println!("{:<10}{}", "result", json_text(&r["result"], false));
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
                clean(h["at"].as_str().unwrap_or("-")).replace('T', " "),
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
        println!("next page: --cursor {}", clean(c));
    }
}

/// The system metrics.
pub(super) fn metrics(m: &Value) {
    println!("requests      {}", text(&m["totalRequests"]));
    let mut statuses = table(&["status", "count"]);
    if let Some(by) = m["requestsByStatus"].as_object() {
        for (k, v) in by {
            statuses.add_row(vec![clean(k).into_owned(), text(v)]);
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
            (Some(task), Some(req)) => format!("{} {}", clean(task), clean(req)),
            (None, Some(req)) => clean(req).into_owned(),
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
    let at = v["at"].as_str().map_or_else(String::new, |s| clean(s.get(11..23).unwrap_or(s)).into_owned());
    let subject = clean(
        v["requestId"].as_str().or_else(|| v["workerId"].as_str()).or_else(|| v["bankId"].as_str()).unwrap_or(""),
    )
    .into_owned();
    let mut extra = Vec::new();
    for key in ["taskId", "status", "attempt", "percent", "message", "code", "reason"] {
        if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
            extra.push(format!("{key}={}", text(x)));
        }
    }
    format!("{:>6} {at} {:<22} {subject} {}", clean(id.unwrap_or("")), clean(kind), extra.join(" "))
}

/// Every task: id, manifest, banks, parameter names (`?` marks optional ones).
pub(super) fn tasks(v: &Value) {
    let list = v["tasks"].as_array().cloned().unwrap_or_default();
    let mut t = table(&["task", "manifest", "banks", "parameters"]);
    for task in &list {
        let params: Vec<String> = task["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let name = text(&p["name"]);
                if p["required"].as_bool() == Some(true) { name } else { format!("{name}?") }
            })
            .collect();
        let banks: Vec<String> = task["banks"].as_array().into_iter().flatten().map(text).collect();
        let params = if params.is_empty() && task["strict"] == false { "(any)".to_owned() } else { params.join(" ") };
        t.add_row(vec![text(&task["taskId"]), text(&task["manifest"]), banks.join(" "), clip(&params, 60)]);
    }
    println!("{t}");
    println!("{} tasks; `atmo tasks TASK` shows one task's parameters", list.len());
}

/// One task: what it does, its parameters with types, defaults and bounds, and how it runs.
pub(super) fn task(v: &Value) {
    println!("task        {}", text(&v["taskId"]));
    if let Some(d) = v["description"].as_str().filter(|d| !d.is_empty()) {
        println!("about       {}", clean(d));
    }
    println!("manifest    {} {}", text(&v["manifest"]), v["manifestVersion"].as_str().map(clean).unwrap_or_default());
    let banks: Vec<String> = v["banks"].as_array().into_iter().flatten().map(text).collect();
    println!("banks       {}", if banks.is_empty() { "-".to_owned() } else { banks.join(", ") });
    if let Some(ms) = v["timeoutMs"].as_u64() {
        println!("timeout     {ms} ms");
    }
    if let Some(n) = v["retry"]["maxRetries"].as_u64() {
        let retryable = v["retryable"].as_bool() != Some(false);
        println!("retries     {}", if retryable { n.to_string() } else { "none (not retryable)".into() });
    }
    let p = &v["limits"]["priority"];
    if p.is_object() {
        println!(
            "priority    {}–{}, default {} (10 runs first)",
            text(&p["min"]),
            text(&p["max"]),
            text(&p["default"])
        );
    }
    let params = v["parameters"].as_array().cloned().unwrap_or_default();
    if params.is_empty() {
        let any = v["strict"] == false;
        println!("parameters  {}", if any { "any" } else { "none" });
        return;
    }
    let mut t = table(&["parameter", "type", "required", "default", "accepts", "about"]);
    for p in &params {
        let mut accepts = Vec::new();
        if let Some(values) = p["allowedValues"].as_array() {
            accepts.push(format!(
                "one of {}",
                values.iter().map(|x| clean(&x.to_string()).into_owned()).collect::<Vec<_>>().join(", ")
            ));
        }
        match (p["minimum"].as_f64(), p["maximum"].as_f64()) {
            (Some(a), Some(b)) => accepts.push(format!("{a} to {b}")),
            (Some(a), None) => accepts.push(format!(">= {a}")),
            (None, Some(b)) => accepts.push(format!("<= {b}")),
            (None, None) => {}
        }
        match (p["minLength"].as_u64(), p["maxLength"].as_u64()) {
            (Some(a), Some(b)) => accepts.push(format!("length {a} to {b}")),
            (Some(a), None) => accepts.push(format!("length >= {a}")),
            (None, Some(b)) => accepts.push(format!("length <= {b}")),
            (None, None) => {}
        }
        if let Some(i) = p["items"].as_str() {
            accepts.push(format!("items: {}", clean(i)));
        }
        let ty = p["type"]
            .as_str()
            .or_else(|| p["paramType"].as_str())
            .map_or_else(|| "-".into(), |s| clean(s).into_owned());
        t.add_row(vec![
            text(&p["name"]),
            ty,
            if p["required"].as_bool() == Some(true) { "yes".into() } else { "no".into() },
            if p["default"].is_null() { "-".into() } else { clip(&json_text(&p["default"], false), 30) },
            clip(&accepts.join("; "), 50),
            p["description"].as_str().map_or_else(String::new, |d| clip(&clean(d), 50)),
        ]);
    }
    println!("\n{t}");
    if v["strict"] == true {
        println!("other parameters are refused");
    }
}
