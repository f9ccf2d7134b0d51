//! The client commands: `atmo submit | submit-many | get | wait | query | cancel | metrics |
//! banks | workers | events`, talking to `atmo serve` over its HTTP API ([`http`]).
//!
//! Lists print as tables and single records as aligned fields; `--json` prints the API's JSON
//! instead. Parameters come from an argument, a file (`@FILE`) or stdin (`-`). Long waits show a
//! spinner with the request's status and progress (on a terminal), `submit-many` a progress bar.
//! Exit codes are listed in [`http::exit`].

mod http;
mod show;

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

pub(crate) use self::http::exit;
use self::http::{Client, ClientError};

/// Where the server is, for every client command.
#[derive(Debug, Args)]
pub(crate) struct Conn {
    /// The service's URL.
    #[arg(long, global = true, value_name = "URL", env = "ATMO_SERVER", default_value = "http://127.0.0.1:7070")]
    pub(crate) server: String,
    /// The bearer token.
    #[arg(long, global = true, value_name = "TOKEN", env = "ATMO_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

/// Options of `atmo submit`.
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The task (an action of a manifest), e.g. HASH.
    pub(crate) task: String,
    /// The parameters as JSON; `-` reads stdin, `@FILE` a file [default: {}].
    pub(crate) params: Option<String>,
    /// 1–10, 10 runs first [default: 5].
    #[arg(long, short, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub(crate) priority: Option<u8>,
    /// Who submits (queryable).
    #[arg(long)]
    pub(crate) client_id: Option<String>,
    /// A metadata label, KEY=VALUE (VALUE as JSON if it parses, else a string); repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub(crate) meta: Vec<String>,
    /// Submitting again with the same key returns the first request.
    #[arg(long)]
    pub(crate) idempotency_key: Option<String>,
    /// Run no sooner than this many milliseconds from now.
    #[arg(long, value_name = "MS")]
    pub(crate) delay: Option<u64>,
    /// Timeout of each attempt in milliseconds.
    #[arg(long, value_name = "MS")]
    pub(crate) timeout: Option<u64>,
    /// Retries after the first attempt.
    #[arg(long)]
    pub(crate) max_retries: Option<u32>,
    /// Wait for the result (spinner with status and progress); the exit code says how it ended.
    #[arg(long, short)]
    pub(crate) wait: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

/// Options of `atmo submit-many`.
#[derive(Debug, Args)]
pub(crate) struct SubmitManyArgs {
    /// A file of JSON lines, each `{"taskId": ..., "parameters": {...}, ...}` (the body of
    /// POST /v1/requests); `-` or nothing reads stdin.
    pub(crate) file: Option<String>,
    /// Requests per API call (each batch is all-or-nothing).
    #[arg(long, default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub(crate) batch: usize,
    /// Wait until every request finished (progress bar); exit 1 if any did not complete.
    #[arg(long, short)]
    pub(crate) wait: bool,
    /// Print the request ids as a JSON array instead of one per line.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

/// Options of `atmo get` and `atmo cancel`.
#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// The request id.
    pub(crate) id: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

/// Options of `atmo wait`.
#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// The request id.
    pub(crate) id: String,
    /// Give up after this many seconds (exit 7) [default: wait as long as it takes].
    #[arg(long, value_name = "SECS")]
    pub(crate) timeout: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

/// Options of `atmo query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// Only these statuses (repeat or comma-separate): pending, scheduled, assigned,
    /// processing, completed, failed, timed_out, cancelled.
    #[arg(long, short, value_delimiter = ',', value_name = "STATUS",
          value_parser = ["pending", "scheduled", "assigned", "processing", "completed", "failed", "timed_out", "cancelled"])]
    pub(crate) status: Vec<String>,
    /// Only this task.
    #[arg(long)]
    pub(crate) task: Option<String>,
    /// Only this client.
    #[arg(long)]
    pub(crate) client_id: Option<String>,
    /// Only requests handled by this bank.
    #[arg(long)]
    pub(crate) bank: Option<String>,
    /// Lowest priority.
    #[arg(long)]
    pub(crate) priority_min: Option<u8>,
    /// Highest priority.
    #[arg(long)]
    pub(crate) priority_max: Option<u8>,
    /// Created at or after (RFC 3339 or epoch ms).
    #[arg(long)]
    pub(crate) created_from: Option<String>,
    /// Created before (RFC 3339 or epoch ms).
    #[arg(long)]
    pub(crate) created_to: Option<String>,
    /// Metadata label KEY=VALUE that must match; repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub(crate) meta: Vec<String>,
    /// Sort by created, updated, priority or status.
    #[arg(long)]
    pub(crate) sort: Option<String>,
    /// asc or desc.
    #[arg(long)]
    pub(crate) order: Option<String>,
    /// Page size.
    #[arg(long, short, default_value_t = 50)]
    pub(crate) limit: u32,
    /// Skip this many.
    #[arg(long)]
    pub(crate) offset: Option<u64>,
    /// The next page: the cursor a previous page printed.
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

/// Options of `atmo metrics`, `atmo banks` and `atmo workers`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

/// Options of `atmo tasks`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  atmo tasks                   every task, with its parameter names\n  \
                        atmo tasks HASH              HASH's parameters: type, required, default, limits")]
pub(crate) struct TasksArgs {
    /// One task to describe in full [default: list them all].
    pub(crate) task: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

/// Options of `atmo events`.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Only events of this request.
    #[arg(long)]
    pub(crate) request: Option<String>,
    /// Only events of this bank.
    #[arg(long)]
    pub(crate) bank: Option<String>,
    /// Only these event types (repeat or comma-separate), e.g. request-completed.
    #[arg(long = "type", value_delimiter = ',')]
    pub(crate) types: Vec<String>,
    /// Stop after this many events.
    #[arg(long, short = 'n')]
    pub(crate) count: Option<usize>,
    /// Print each event's JSON on its own line.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

fn client(conn: &Conn) -> Client {
    Client::new(&conn.server, conn.token.clone())
}

/// Runs a client command and turns its failure into a message on stderr and an exit code.
pub(crate) fn run(f: impl FnOnce() -> Result<u8, ClientError>) -> anyhow::Result<ExitCode> {
    match f() {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(e) => {
            eprintln!("atmo: {}", e.message);
            Ok(ExitCode::from(e.code))
        }
    }
}

fn bad_input(message: impl Into<String>) -> ClientError {
    ClientError::new(exit::BAD_INPUT, message)
}

/// Reads JSON from an argument, `-` (stdin) or `@FILE`.
fn read_json_arg(arg: Option<&str>) -> Result<Value, ClientError> {
    let text = match arg {
        None => return Ok(json!({})),
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| bad_input(format!("cannot read stdin: {e}")))?;
            s
        }
        Some(a) if a.starts_with('@') => {
            std::fs::read_to_string(&a[1..]).map_err(|e| bad_input(format!("cannot read {}: {e}", &a[1..])))?
        }
        Some(a) => a.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| bad_input(format!("the parameters are not valid JSON: {e}")))
}

fn parse_meta(items: &[String]) -> Result<Map<String, Value>, ClientError> {
    let mut map = Map::new();
    for item in items {
        let (k, v) = item.split_once('=').ok_or_else(|| bad_input(format!("--meta `{item}`: expected KEY=VALUE")))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        map.insert(k.to_owned(), value);
    }
    Ok(map)
}

fn print_json(v: &Value) -> Result<(), ClientError> {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(v).map_err(|e| bad_input(e.to_string()))?;
    writeln!(out, "{text}").map_err(|e| ClientError::new(exit::OK, e.to_string()))
}

/// Prints `v` as JSON (`--json`) or for people with `show`.
fn output(json: bool, v: &Value, show: fn(&Value)) -> Result<(), ClientError> {
    if json {
        print_json(v)
    } else {
        show(v);
        Ok(())
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `atmo submit`.
pub(crate) fn submit(args: &SubmitArgs) -> Result<u8, ClientError> {
    let c = client(&args.conn);
    let mut body = json!({"taskId": args.task, "parameters": read_json_arg(args.params.as_deref())?});
    let fields = [
        ("priority", args.priority.map(Value::from)),
        ("clientId", args.client_id.clone().map(Value::from)),
        ("idempotencyKey", args.idempotency_key.clone().map(Value::from)),
        ("delayMs", args.delay.map(Value::from)),
        ("timeoutMs", args.timeout.map(Value::from)),
        ("maxRetries", args.max_retries.map(Value::from)),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            body[k] = v;
        }
    }
    if !args.meta.is_empty() {
        body["metadata"] = Value::Object(parse_meta(&args.meta)?);
    }
    let reply = c.post("/v1/requests", &body, &[])?;
    let id = reply.body["requestId"].as_str().unwrap_or_default().to_owned();
    if !args.wait {
        if args.json {
            print_json(&reply.body)?;
        } else {
            println!("{}", show::clean(&id));
        }
        return Ok(exit::OK);
    }
    wait_and_print(&c, &id, None, args.json)
}

/// `atmo wait`.
pub(crate) fn wait(args: &WaitArgs) -> Result<u8, ClientError> {
    let c = client(&args.conn);
    wait_and_print(&c, &args.id, args.timeout.map(Duration::from_secs), args.json)
}

/// Long-polls the result, showing a spinner with the status and progress meanwhile.
fn wait_and_print(c: &Client, id: &str, limit: Option<Duration>, json_out: bool) -> Result<u8, ClientError> {
    let started = Instant::now();
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner.set_message(format!("{}: submitted", show::clean(id)));
    let result = loop {
        let reply = c.get(&format!("/v1/requests/{}/result?wait=1s", encode(id)))?;
        if reply.status == 200 {
            break reply.body;
        }
        let req = c.get(&format!("/v1/requests/{}", encode(id)))?.body;
        let mut msg = format!("{}: {}", show::clean(id), show::clean(req["status"].as_str().unwrap_or("?")));
        if let Some(p) = req.get("progress").filter(|p| !p.is_null()) {
            msg.push_str(&format!(" {:.0}%", p["percent"].as_f64().unwrap_or(0.0)));
            if let Some(m) = p["message"].as_str() {
                msg.push_str(&format!(" {}", show::clean(m)));
            }
        }
        spinner.set_message(msg);
        if limit.is_some_and(|l| started.elapsed() >= l) {
            spinner.finish_and_clear();
            eprintln!(
                "atmo: {} is still {} after {} s",
                show::clean(id),
                show::clean(req["status"].as_str().unwrap_or("running")),
                started.elapsed().as_secs()
            );
            return Ok(exit::STILL_RUNNING);
        }
    };
    spinner.finish_and_clear();
    output(json_out, &result, show::result)?;
    Ok(if result["success"].as_bool() == Some(true) { exit::OK } else { exit::REQUEST_FAILED })
}

/// `atmo submit-many`.
pub(crate) fn submit_many(args: &SubmitManyArgs) -> Result<u8, ClientError> {
    let c = client(&args.conn);
    let reader: Box<dyn BufRead> = match args.file.as_deref() {
        None | Some("-") => Box::new(std::io::BufReader::new(std::io::stdin())),
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).map_err(|e| bad_input(format!("cannot open {path}: {e}")))?,
        )),
    };
    let mut requests = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| bad_input(format!("cannot read line {}: {e}", n + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).map_err(|e| bad_input(format!("line {}: not JSON: {e}", n + 1)))?;
        requests.push(v);
    }
    let total = requests.len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("submitted");
    let mut ids = Vec::with_capacity(requests.len());
    for (k, chunk) in requests.chunks(args.batch).enumerate() {
        let reply = c.post("/v1/requests/batch", &json!({"requests": chunk}), &[]).map_err(|mut e| {
            bar.abandon();
            e.message = format!(
                "batch {} (lines {}–{}) was refused; earlier batches were accepted ({} requests): {}",
                k + 1,
                k * args.batch + 1,
                k * args.batch + chunk.len(),
                ids.len(),
                e.message
            );
            e
        })?;
        for id in reply.body["requestIds"].as_array().into_iter().flatten() {
            ids.push(id.as_str().unwrap_or_default().to_owned());
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let mut code = exit::OK;
    if args.wait {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message("finished");
        let mut failed = 0usize;
        for id in &ids {
            let result = loop {
                let r = c.get(&format!("/v1/requests/{}/result?wait=30s", encode(id)))?;
                if r.status == 200 {
                    break r.body;
                }
            };
            if result["success"].as_bool() != Some(true) {
                failed += 1;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        eprintln!("atmo: {} requests finished, {} completed, {failed} did not", ids.len(), ids.len() - failed);
        if failed > 0 {
            code = exit::REQUEST_FAILED;
        }
    }
    if args.json {
        print_json(&json!(ids))?;
    } else {
        let mut out = std::io::stdout().lock();
        for id in &ids {
            let _ = writeln!(out, "{}", show::clean(id));
        }
    }
    Ok(code)
}

/// `atmo get`.
pub(crate) fn get(args: &IdArgs) -> Result<u8, ClientError> {
    let c = client(&args.conn);
    let lifecycle = c.get(&format!("/v1/requests/{}/lifecycle", encode(&args.id)))?.body;
    output(args.json, &lifecycle, show::lifecycle)?;
    Ok(exit::OK)
}

/// `atmo cancel`.
pub(crate) fn cancel(args: &IdArgs) -> Result<u8, ClientError> {
    let c = client(&args.conn);
    let reply = c.post(&format!("/v1/requests/{}/cancel", encode(&args.id)), &json!({}), &[])?;
    if args.json {
        print_json(&reply.body)?;
    } else {
        println!("{}: cancelled", args.id);
    }
    Ok(exit::OK)
}

/// `atmo query`.
pub(crate) fn query(args: &QueryArgs) -> Result<u8, ClientError> {
    let c = client(&args.conn);
    let mut q: Vec<(String, String)> = vec![("limit".into(), args.limit.to_string())];
    if !args.status.is_empty() {
        q.push(("status".into(), args.status.join(",")));
    }
    let optional = [
        ("taskId", args.task.clone()),
        ("clientId", args.client_id.clone()),
        ("bankId", args.bank.clone()),
        ("priorityMin", args.priority_min.map(|p| p.to_string())),
        ("priorityMax", args.priority_max.map(|p| p.to_string())),
        ("createdFrom", args.created_from.clone()),
        ("createdTo", args.created_to.clone()),
        ("sort", args.sort.clone()),
        ("order", args.order.clone()),
        ("offset", args.offset.map(|o| o.to_string())),
        ("cursor", args.cursor.clone()),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            q.push((k.into(), v));
        }
    }
    for (k, v) in parse_meta(&args.meta)? {
        q.push((format!("metadata.{k}"), v.as_str().map_or_else(|| v.to_string(), str::to_owned)));
    }
    let qs: Vec<String> = q.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    let page = c.get(&format!("/v1/requests?{}", qs.join("&")))?.body;
    output(args.json, &page, show::requests)?;
    Ok(exit::OK)
}

/// `atmo tasks [TASK]`.
pub(crate) fn tasks(args: &TasksArgs) -> Result<u8, ClientError> {
    let c = client(&args.conn);
    match &args.task {
        Some(t) => output(args.json, &c.get(&format!("/v1/tasks/{}", encode(t)))?.body, show::task),
        None => output(args.json, &c.get("/v1/tasks")?.body, show::tasks),
    }?;
    Ok(exit::OK)
}

/// `atmo metrics`.
pub(crate) fn metrics(args: &ListArgs) -> Result<u8, ClientError> {
    show_one(args, "/v1/metrics", show::metrics)
}

/// `atmo banks`.
pub(crate) fn banks(args: &ListArgs) -> Result<u8, ClientError> {
    show_one(args, "/v1/banks", show::banks)
}

/// `atmo workers`.
pub(crate) fn workers(args: &ListArgs) -> Result<u8, ClientError> {
    show_one(args, "/v1/workers", show::workers)
}

/// GETs `path` and prints the answer.
fn show_one(args: &ListArgs, path: &str, show: fn(&Value)) -> Result<u8, ClientError> {
    output(args.json, &client(&args.conn).get(path)?.body, show)?;
    Ok(exit::OK)
}

/// `atmo events`.
pub(crate) fn events(args: &EventsArgs) -> Result<u8, ClientError> {
    let c = client(&args.conn);
    let mut q = Vec::new();
    if let Some(r) = &args.request {
        q.push(format!("requestId={}", encode(r)));
    }
    if let Some(b) = &args.bank {
        q.push(format!("bankId={}", encode(b)));
    }
    if !args.types.is_empty() {
        q.push(format!("type={}", encode(&args.types.join(","))));
    }
    let path = if q.is_empty() { "/v1/events".to_owned() } else { format!("/v1/events?{}", q.join("&")) };
    let mut seen = 0usize;
    let limit = args.count;
    c.events(&path, |id, kind, data| {
        let mut out = std::io::stdout().lock();
        let ok =
            if args.json { writeln!(out, "{data}") } else { writeln!(out, "{}", show::event_line(id, kind, data)) };
        let _ = out.flush();
        seen += 1;
        ok.is_ok() && limit.is_none_or(|l| seen < l)
    })?;
    Ok(exit::OK)
}
