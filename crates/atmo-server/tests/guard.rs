//! Browsers cannot drive the service behind their user's back: forged `Host`, `Origin` and
//! content types are refused with stable codes; configured CORS origins are let in.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::common::{TestApp, app, app_with, config, engine};

const SUBMIT: &str = r#"{"taskId":"add","parameters":{"a":1,"b":2}}"#;

fn forged(method: Method, uri: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.map(|s| Body::from(s.to_owned())).unwrap_or_else(Body::empty)).unwrap()
}

async fn send(
    app: &TestApp,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> crate::common::Reply {
    app.send(forged(method, uri, headers, body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_json_get_415() {
    let app = app().await;
    // What a page on any site can send without a preflight: text/plain, a form, a typeless blob.
    for ct in
        [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data; boundary=x"), None]
    {
        let headers: Vec<(&str, &str)> = ct.map(|c| ("content-type", c)).into_iter().collect();
        for uri in ["/v1/requests", "/v1/requests/batch", "/v1/cron"] {
            let r = send(&app, Method::POST, uri, &headers, Some(SUBMIT)).await;
            assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{uri} {ct:?}: {}", r.text);
            assert_eq!(r.body["code"], "UNSUPPORTED_MEDIA_TYPE");
        }
    }
    let r =
        send(&app, Method::POST, "/v1/requests", &[("content-type", "application/json; charset=utf-8")], Some(SUBMIT))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(app.manager.query(Default::default()).await.unwrap().total, 1, "only the JSON one was accepted");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_refused() {
    let app = app().await;
    // DNS rebinding: the page's own name, now pointing at 127.0.0.1.
    for host in ["evil.example", "evil.example:7070", "localhost.evil.example"] {
        let r = send(&app, Method::GET, "/v1/requests", &[("host", host)], None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{host}: {}", r.text);
        assert_eq!(r.body["code"], "HOST_NOT_ALLOWED");
        let r = send(&app, Method::GET, "/", &[("host", host)], None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "the dashboard too");
    }
    for host in ["127.0.0.1:7070", "localhost:7070", "[::1]:7070"] {
        let r = send(&app, Method::GET, "/v1/requests", &[("host", host)], None).await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {}", r.text);
    }
    app.stop().await;

    let app =
        app_with(engine().await, atmo_server::ServerConfig { allowed_hosts: vec!["atmo.internal".into()], ..config() })
            .await;
    let r = send(&app, Method::GET, "/v1/requests", &[("host", "atmo.internal:7070")], None).await;
    assert_eq!(r.status, StatusCode::OK, "a configured name: {}", r.text);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_writes_are_refused_and_same_origin_ones_pass() {
    let app = app().await;
    let json = ("content-type", "application/json");
    let host = ("host", "127.0.0.1:7070");
    for origin in ["https://evil.example", "null", "http://127.0.0.1:8000"] {
        let r = send(&app, Method::POST, "/v1/requests", &[json, host, ("origin", origin)], Some(SUBMIT)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin}: {}", r.text);
        assert_eq!(r.body["code"], "ORIGIN_NOT_ALLOWED");
        let r = send(&app, Method::POST, "/v1/cron", &[json, host, ("origin", origin)], Some("{}")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    // Reads are not refused (the browser keeps the answer from the page without CORS headers).
    let r = send(&app, Method::GET, "/v1/metrics", &[host, ("origin", "https://evil.example")], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    // The dashboard: same origin.
    let r = send(&app, Method::POST, "/v1/requests", &[json, host, ("origin", "http://127.0.0.1:7070")], Some(SUBMIT))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(app.manager.query(Default::default()).await.unwrap().total, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_cors_origins_get_in() {
    let cfg = atmo_server::ServerConfig {
        cors_origins: vec!["http://localhost:3000".into()],
        auth_token: Some("s3cret".into()),
        ..config()
    };
    let app = app_with(engine().await, cfg).await;
    let origin = ("origin", "http://localhost:3000");
    // The preflight is answered without a token.
    let r = send(
        &app,
        Method::OPTIONS,
        "/v1/requests",
        &[
            origin,
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization,content-type"),
        ],
        None,
    )
    .await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(r.headers["access-control-allow-origin"], "http://localhost:3000");
    let r = send(
        &app,
        Method::POST,
        "/v1/requests",
        &[origin, ("content-type", "application/json"), ("authorization", "Bearer s3cret")],
        Some(SUBMIT),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.headers["access-control-allow-origin"], "http://localhost:3000");
    // Another origin still is not.
    let r = send(
        &app,
        Method::POST,
        "/v1/requests",
        &[
            ("origin", "http://localhost:4000"),
            ("content-type", "application/json"),
            ("authorization", "Bearer s3cret"),
        ],
        Some(SUBMIT),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let _ = json!({});
    app.stop().await;
}
