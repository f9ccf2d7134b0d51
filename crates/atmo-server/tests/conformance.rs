//! What the service answers matches what its OpenAPI document says: responses of the read
//! routes, for tasks whose parameters have defaults and allowed values of every JSON type and
//! for results that are not objects, validate against the document's response schemas.

use atmo_workers::{ActionDefinition, BankSpec, Handler, Handlers, Manifest, ParamType, ParameterSpec, WorkerManager};
use serde_json::{Value, json};

use crate::common::{app_with, config};

/// A manifest whose parameters' defaults and allowed values are strings, numbers, booleans,
/// arrays and objects, and whose handler returns whatever it is given (a number, a string, an
/// array, null).
fn manifest() -> Manifest {
    Manifest::builder("shapes")
        .action(
            ActionDefinition::new("echo")
                .param(ParameterSpec::optional("value", ParamType::Any, json!(null)))
                .param(ParameterSpec::optional("mode", ParamType::String, json!("blur")).allowed(["blur", "sharpen"]))
                .param(ParameterSpec::optional("factor", ParamType::Number, json!(1.0)).allowed([1.0, 2.5]))
                .param(ParameterSpec::optional("flag", ParamType::Boolean, json!(true)))
                .param(ParameterSpec::optional("list", ParamType::Array, json!([1, "two"])))
                .param(ParameterSpec::optional("options", ParamType::Object, json!({"k": 1}))),
        )
        .build()
        .expect("manifest")
}

/// The response schema of `GET path` (status 200, JSON) in `doc`, as a JSON Schema whose
/// references resolve inside the document.
fn response_schema(doc: &Value, path: &str) -> Value {
    let schema = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "no 200 JSON response documented for GET {path}");
    json!({ "$ref": "#/$defs/response", "$defs": { "response": schema }, "components": doc["components"] })
}

fn assert_conforms(doc: &Value, path: &str, uri: &str, body: &Value) {
    let schema = response_schema(doc, path);
    let validator = jsonschema::validator_for(&schema).expect("the document's schema compiles");
    let problems: Vec<String> =
        validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(problems.is_empty(), "GET {uri} does not match its schema: {problems:#?}\n{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_responses_match_the_openapi_document() {
    let manager = WorkerManager::builder().name("test").start().await.expect("engine");
    manager
        .initialize_worker_bank(
            BankSpec::new("shapes-bank", manifest())
                .workers(1)
                .handlers(Handlers::new().on("echo", Handler::sync(|_, p| Ok(p["value"].clone())))),
        )
        .expect("bank");
    let app = app_with(manager, config()).await;
    let doc = app.get("/openapi.json").await.body;

    let mut ids = Vec::new();
    for value in [json!(42), json!("text"), json!([1, 2]), json!(null), json!({"a": 1})] {
        let id = app.submit(json!({"taskId": "echo", "parameters": {"value": value}})).await;
        let result = app.result(&id).await;
        assert_eq!(result["payload"], value, "{result}");
        ids.push(id);
    }
    for id in &ids {
        for (path, uri) in [
            ("/v1/requests/{id}", format!("/v1/requests/{id}")),
            ("/v1/requests/{id}/result", format!("/v1/requests/{id}/result")),
            ("/v1/requests/{id}/lifecycle", format!("/v1/requests/{id}/lifecycle")),
        ] {
            let r = app.get(&uri).await;
            assert_eq!(r.status, 200, "{uri}: {}", r.text);
            assert_conforms(&doc, path, &uri, &r.body);
        }
    }
    for path in ["/v1/tasks", "/v1/banks", "/v1/workers", "/v1/metrics", "/v1/requests", "/v1/cron"] {
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_conforms(&doc, path, path, &r.body);
    }
    let r = app.get("/v1/tasks/echo").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_conforms(&doc, "/v1/tasks/{id}", "/v1/tasks/echo", &r.body);
    app.stop().await;
}
