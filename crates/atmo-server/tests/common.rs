//! Fixtures: an engine with one bank, the server's router, and calls through `oneshot`.

use std::time::Duration;

use atmo_server::{Server, ServerConfig};
use atmo_workers::{
    ActionDefinition, BankSpec, Handler, Handlers, Manifest, ParamType, ParameterSpec, TaskError, WorkerManager,
};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct TestApp {
    pub server: Server,
    pub router: Router,
    pub manager: WorkerManager,
    pub token: Option<String>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// A manifest with `add` (a, b numbers), `slow` (sleeps `ms`), `fail` (always fails) and
/// `echo` (anything).
pub fn manifest() -> Manifest {
    Manifest::builder("math")
        .action(
            ActionDefinition::new("add")
                .param(ParameterSpec::required("a", ParamType::Number))
                .param(ParameterSpec::required("b", ParamType::Number)),
        )
        .action(ActionDefinition::new("slow").param(ParameterSpec::optional("ms", ParamType::Integer, json!(300))))
        .action(ActionDefinition::new("fail").lenient())
        .action(ActionDefinition::new("echo").lenient())
        .build()
        .expect("manifest")
}

pub fn handlers() -> Handlers {
    Handlers::new()
        .on(
            "add",
            Handler::sync(|_, p| Ok(json!({"sum": p["a"].as_f64().unwrap_or(0.0) + p["b"].as_f64().unwrap_or(0.0)}))),
        )
        .on(
            "slow",
            Handler::sync(|_, p| {
                std::thread::sleep(Duration::from_millis(p["ms"].as_u64().unwrap_or(300)));
                Ok(json!({"slept": p["ms"]}))
            }),
        )
        .on("fail", Handler::sync(|_, _| Err(TaskError::fatal("BOOM", "this task always fails"))))
        .on("echo", Handler::sync(|_, p| Ok(p.clone())))
}

pub async fn engine() -> WorkerManager {
    let manager = WorkerManager::builder().name("test").start().await.expect("engine");
    manager
        .initialize_worker_bank(BankSpec::new("math-bank", manifest()).workers(2).handlers(handlers()))
        .expect("bank");
    manager
}

pub fn config() -> ServerConfig {
    ServerConfig {
        history_interval: Duration::from_millis(50),
        keep_alive: Duration::from_secs(1),
        max_wait: Duration::from_secs(10),
        ..ServerConfig::default()
    }
}

pub async fn app() -> TestApp {
    app_with(engine().await, config()).await
}

pub async fn app_with(manager: WorkerManager, config: ServerConfig) -> TestApp {
    let token = config.auth_token.clone();
    let server = Server::new(manager.clone(), config).expect("server");
    TestApp { router: server.router(), server, manager, token }
}

impl TestApp {
    pub fn request(&self, method: Method, uri: &str, body: Option<Vec<u8>>) -> Request<Body> {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        b.body(body.map(Body::from).unwrap_or_else(Body::empty)).expect("request")
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body, text }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(self.request(Method::GET, uri, None)).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> Reply {
        self.send(self.request(Method::POST, uri, Some(body.to_string().into_bytes()))).await
    }

    pub async fn post_raw(&self, uri: &str, body: impl Into<Vec<u8>>) -> Reply {
        self.send(self.request(Method::POST, uri, Some(body.into()))).await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.send(self.request(Method::DELETE, uri, None)).await
    }

    /// Submits and returns the id.
    pub async fn submit(&self, body: Value) -> String {
        let r = self.post("/v1/requests", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["requestId"].as_str().expect("requestId").to_owned()
    }

    /// Waits until the request finished; returns its result.
    pub async fn result(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/requests/{id}/result?wait=5s")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
    }

    pub async fn stop(self) {
        let _ = self.manager.shutdown(Duration::from_millis(200)).await;
    }
}

/// Polls `f` until it returns `Some`, up to `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
