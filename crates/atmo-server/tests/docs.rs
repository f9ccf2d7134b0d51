//! The OpenAPI document lists exactly the routes the router serves.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};

use crate::common::app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let app = app().await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["title"], "Atmo Workers");
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> =
        atmo_server::routes().into_iter().map(|(m, p)| (m.to_string(), p.to_owned())).collect();
    assert_eq!(documented, served);
    // Schemas the paths refer to are there.
    for s in ["ErrorBody", "Request", "RequestResult", "QueryPage", "SubmitBody", "CronJob"] {
        assert!(doc["components"]["schemas"].get(s).is_some(), "schema {s} missing");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    // And the router does serve each of them (no 404/405 from routing).
    for (method, path) in atmo_server::routes() {
        if path == "/v1/events" {
            continue; // a stream: exercised in events.rs
        }
        let uri = path.replace("{id}", "0190a6f2-1b2c-7d3e-8f40-5a6b7c8d9e0f");
        let body = (method == Method::POST).then(|| b"{}".to_vec());
        let r = app.send(app.request(method.clone(), &uri, body)).await;
        assert!(
            !["ROUTE_NOT_FOUND", "METHOD_NOT_ALLOWED"].contains(&r.body["code"].as_str().unwrap_or("")),
            "{method} {uri}: {}",
            r.text
        );
    }
    app.stop().await;
}
