//! The request manager in test mode (a request reducer, no workers): the seed's usage example,
//! reducer failures, unknown tasks and manifest validation.

use atmo_workers::manifest::ValidationIssueKind;
use atmo_workers::{
    ActionDefinition, Bank, BankStatus, Error, ErrorCategory, EventKind, Manifest, ParamType, ParameterSpec,
    RequestManager, RequestQuery, RequestStatus, SubmitOptions, SubmitRequest, Task, TaskError,
};
use serde_json::{Value, json};

use super::support::{drain, status_changes};

fn math_manager() -> RequestManager {
    RequestManager::builder()
        .name("math-processor")
        .request_reducer(|task_id: &str, params: &Value| match task_id {
            "add-numbers" => {
                let a = params["a"].as_i64().ok_or_else(|| TaskError::invalid("`a` must be an integer"))?;
                let b = params["b"].as_i64().ok_or_else(|| TaskError::invalid("`b` must be an integer"))?;
                Ok(json!({ "result": a + b }))
            }
            "divide" => {
                let a = params["a"].as_f64().unwrap_or(0.0);
                let b = params["b"].as_f64().unwrap_or(0.0);
                if b == 0.0 {
                    return Err(TaskError::new("DIVIDE_BY_ZERO", "cannot divide by zero"));
                }
                Ok(json!({ "result": a / b }))
            }
            "explode" => panic!("the reducer blew up"),
            "scale" => Ok(json!({ "mode": params["mode"], "tags": params["tags"] })),
            other => Err(TaskError::fatal("UNKNOWN_TASK", format!("unknown task: {other}"))),
        })
        .build()
}

#[tokio::test]
async fn seed_example_adds_five_and_three() -> anyhow::Result<()> {
    let manager = math_manager();
    let mut bank = Bank::new("math-bank", "Math Operations");
    bank.status = BankStatus::Active;
    manager.register_bank(bank);
    manager.register_task(Task::new("add-numbers", "Add Two Numbers"));

    let id = manager.submit("add-numbers", json!({"a": 5, "b": 3}), SubmitOptions::new().client_id("client-1")).await?;

    // Test mode finishes the request within `submit`.
    let result = manager.get_result(id).await?.ok_or_else(|| anyhow::anyhow!("no result right after submit"))?;
    assert_eq!(result.payload.as_deref(), Some(&json!({"result": 8})));
    assert_eq!(result.status, RequestStatus::Completed);
    assert!(result.success);
    assert_eq!(result.attempts, 1);
    assert_eq!(manager.wait(id).await?, result);

    let request = manager.get_request(id).await?;
    assert_eq!(request.client_id.as_deref(), Some("client-1"));
    let path: Vec<_> = request.history.iter().map(|h| (h.from, h.to)).collect();
    assert_eq!(
        path,
        [
            (None, RequestStatus::Pending),
            (Some(RequestStatus::Pending), RequestStatus::Assigned),
            (Some(RequestStatus::Assigned), RequestStatus::Processing),
            (Some(RequestStatus::Processing), RequestStatus::Completed),
        ]
    );
    assert_eq!(manager.banks().iter().map(|b| &*b.bank_id).collect::<Vec<_>>(), ["math-bank"]);
    Ok(())
}

#[tokio::test]
async fn a_reducer_error_fails_the_request_with_that_error() -> anyhow::Result<()> {
    let manager = math_manager();
    manager.register_task(Task::new("divide", "Divide"));
    let id = manager.submit("divide", json!({"a": 1, "b": 0}), SubmitOptions::new()).await?;
    let result = manager.wait(id).await?;
    assert_eq!(result.status, RequestStatus::Failed);
    assert!(!result.success);
    assert_eq!(result.payload, None);
    let error = result.error.ok_or_else(|| anyhow::anyhow!("a failed request carries its error"))?;
    assert_eq!(error.code, "DIVIDE_BY_ZERO");
    assert_eq!(error.message, "cannot divide by zero");
    assert_eq!(error.category, ErrorCategory::Processing);
    assert_eq!(error.attempt, 1);
    // Test mode does not retry.
    assert!(!error.retryable);
    assert_eq!(manager.get_request(id).await?.errors.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_reducer_panic_fails_the_request_as_a_system_error() -> anyhow::Result<()> {
    let manager = math_manager();
    manager.register_task(Task::new("explode", "Explode"));
    let id = manager.submit("explode", json!({}), SubmitOptions::new()).await?;
    let result = manager.wait(id).await?;
    assert_eq!(result.status, RequestStatus::Failed);
    let error = result.error.ok_or_else(|| anyhow::anyhow!("missing error"))?;
    assert_eq!(error.code, "HANDLER_PANIC");
    assert_eq!(error.category, ErrorCategory::System);
    assert!(error.message.contains("the reducer blew up"), "{}", error.message);
    // The manager keeps working.
    manager.register_task(Task::new("add-numbers", "Add"));
    let ok = manager.submit("add-numbers", json!({"a": 1, "b": 1}), SubmitOptions::new()).await?;
    assert_eq!(manager.wait(ok).await?.payload.as_deref(), Some(&json!({"result": 2})));
    Ok(())
}

#[tokio::test]
async fn an_unknown_task_is_refused_with_the_known_ones_listed() -> anyhow::Result<()> {
    let manager = math_manager();
    manager.register_task(Task::new("divide", "Divide"));
    manager.register_task(Task::new("add-numbers", "Add"));
    let err = manager.submit("multiply", json!({"a": 2, "b": 3}), SubmitOptions::new()).await;
    match err {
        Err(Error::UnknownTask { task_id, known }) => {
            assert_eq!(task_id, "multiply");
            assert_eq!(known, ["add-numbers", "divide"]);
        }
        other => anyhow::bail!("expected UnknownTask, got {other:?}"),
    }
    let err = manager.submit("multiply", json!({}), SubmitOptions::new()).await.err();
    let err = err.ok_or_else(|| anyhow::anyhow!("must fail"))?;
    assert_eq!(err.code(), "UNKNOWN_TASK");
    assert!(err.to_string().contains("add-numbers, divide"), "{err}");
    // Nothing was stored.
    assert_eq!(manager.query(RequestQuery::new()).await?.total, 0);
    Ok(())
}

fn scale_manifest() -> anyhow::Result<Manifest> {
    Ok(Manifest::builder("calc")
        .action(
            ActionDefinition::new("scale")
                .param(ParameterSpec::required("value", ParamType::Number))
                .param(ParameterSpec::required("factor", ParamType::Integer).range(1.0, 10.0))
                .param(ParameterSpec::optional("mode", ParamType::String, json!("fast")).allowed(["fast", "exact"]))
                .param(
                    ParameterSpec::optional("tags", ParamType::Array, json!([])).items(ParamType::String).length(0, 3),
                ),
        )
        .build()?)
}

#[tokio::test]
async fn validation_reports_every_problem_at_once_and_fills_defaults() -> anyhow::Result<()> {
    let manager = math_manager();
    let registered = manager.register_manifest(scale_manifest()?);
    assert_eq!(registered.name, "calc");
    assert!(manager.tasks().iter().any(|t| &*t.task_id == "scale" && t.manifest.as_deref() == Some("calc")));

    let bad = json!({"factor": 11, "mode": "slow", "tags": [1], "extra": true});
    let err = manager.submit("scale", bad, SubmitOptions::new()).await.err();
    let Some(Error::Validation { task_id, errors }) = err else {
        anyhow::bail!("expected a validation error, got {err:?}");
    };
    assert_eq!(task_id, "scale");
    let found: Vec<(&str, ValidationIssueKind)> =
        errors.issues().iter().map(|i| (i.parameter.as_str(), i.kind)).collect();
    assert_eq!(
        found,
        [
            ("value", ValidationIssueKind::Missing),
            ("factor", ValidationIssueKind::OutOfRange),
            ("mode", ValidationIssueKind::NotAllowed),
            ("tags", ValidationIssueKind::WrongItemType),
            ("extra", ValidationIssueKind::Undeclared),
        ]
    );
    assert!(errors.issues().iter().all(|i| !i.message.is_empty()));
    // Refused requests are not stored.
    assert_eq!(manager.query(RequestQuery::new()).await?.total, 0);

    // A valid request gets its defaults, and the reducer sees them.
    let id = manager.submit("scale", json!({"value": 2.5, "factor": 3}), SubmitOptions::new()).await?;
    let request = manager.get_request(id).await?;
    assert_eq!(*request.parameters, json!({"value": 2.5, "factor": 3, "mode": "fast", "tags": []}));
    assert_eq!(manager.wait(id).await?.payload.as_deref(), Some(&json!({"mode": "fast", "tags": []})));
    Ok(())
}

#[tokio::test]
async fn a_bad_request_in_a_batch_refuses_the_whole_batch() -> anyhow::Result<()> {
    let manager = math_manager();
    manager.register_manifest(scale_manifest()?);
    let batch = vec![
        SubmitRequest::new("scale", json!({"value": 1, "factor": 1})),
        SubmitRequest::new("scale", json!({"value": 1, "factor": 0})),
    ];
    match manager.submit_many(batch).await {
        Err(Error::Batch { index, source }) => {
            assert_eq!(index, 1);
            assert!(matches!(*source, Error::Validation { .. }), "{source:?}");
        }
        other => anyhow::bail!("expected a batch error, got {other:?}"),
    }
    assert_eq!(manager.query(RequestQuery::new()).await?.total, 0);

    // Priority is validated too.
    let err = manager.submit("scale", json!({"value": 1, "factor": 1}), SubmitOptions::new().priority(11)).await.err();
    match err {
        Some(Error::Validation { errors, .. }) => assert_eq!(errors.issues()[0].parameter, "priority"),
        other => anyhow::bail!("expected a priority validation error, got {other:?}"),
    }
    Ok(())
}

/// Test mode must report the same lifecycle through events as through the history.
#[tokio::test]
async fn test_mode_events_match_the_history() -> anyhow::Result<()> {
    let manager = math_manager();
    manager.register_task(Task::new("add-numbers", "Add"));
    let mut events = manager.subscribe();
    let id = manager.submit("add-numbers", json!({"a": 1, "b": 2}), SubmitOptions::new()).await?;
    let events = drain(&mut events);
    let request = manager.get_request(id).await?;
    let history: Vec<_> = request.history.iter().map(|h| (h.from, h.to)).collect();
    assert_eq!(status_changes(&events, id), history);
    assert!(
        events.iter().any(|e| matches!(e.kind, EventKind::RequestAssigned { request_id, .. } if request_id == id)),
        "no request-assigned event"
    );
    Ok(())
}
