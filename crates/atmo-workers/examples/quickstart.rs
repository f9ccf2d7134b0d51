//! The seed's usage example in Rust: a request manager in test mode adds two numbers.
//!
//! Run with `cargo run --release --example quickstart`; prints `{"result":8}`.

use atmo_workers::{Bank, BankStatus, RequestManager, SubmitOptions, Task, TaskError};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // Create a manager in test mode: the reducer processes each request at once.
    let manager = RequestManager::builder()
        .name("math-processor")
        .request_reducer(|task_id: &str, params: &Value| match task_id {
            "add-numbers" => {
                let a = params["a"].as_f64().ok_or_else(|| TaskError::invalid("`a` must be a number"))?;
                let b = params["b"].as_f64().ok_or_else(|| TaskError::invalid("`b` must be a number"))?;
                let sum = a + b;
                // Whole numbers print as integers, as JavaScript would.
                Ok(if sum.fract() == 0.0 && sum.abs() < 9e15 {
                    json!({ "result": sum as i64 })
                } else {
                    json!({ "result": sum })
                })
            }
            other => Err(TaskError::fatal("UNKNOWN_TASK", format!("Unknown task: {other}"))),
        })
        .build();

    // Register a bank and a task.
    let mut bank = Bank::new("math-bank", "Math Operations");
    bank.status = BankStatus::Active;
    manager.register_bank(bank);
    manager.register_task(Task::new("add-numbers", "Add Two Numbers"));

    // Submit a request.
    let request_id =
        manager.submit("add-numbers", json!({ "a": 5, "b": 3 }), SubmitOptions::new().client_id("client-1")).await?;

    // Wait for processing (immediate in test mode) and get the result.
    let result = manager.wait(request_id).await?;
    let payload = result.payload.ok_or_else(|| anyhow::anyhow!("request {request_id} finished without a result"))?;
    println!("{}", serde_json::to_string(&*payload)?);
    Ok(())
}
