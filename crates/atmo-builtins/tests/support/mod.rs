//! Calling built-in handlers directly and through their manifests' schemas.

use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use atmo_core::{ErrorCategory, Handlers, Manifest, Resources, TaskContext, TaskError};
use serde_json::Value;

/// Which built-in manifest an action belongs to.
#[derive(Clone, Copy, Debug)]
pub enum Kit {
    Computation,
    Crypto,
    DataProcessing,
    Geospatial,
    ImageProcessing,
    Simulation,
}

impl Kit {
    pub fn manifest(self) -> Manifest {
        match self {
            Kit::Computation => atmo_builtins::computation_manifest(),
            Kit::Crypto => atmo_builtins::crypto_manifest(),
            Kit::DataProcessing => atmo_builtins::data_processing_manifest(),
            Kit::Geospatial => atmo_builtins::geospatial_manifest(),
            Kit::ImageProcessing => atmo_builtins::image_processing_manifest(),
            Kit::Simulation => atmo_builtins::simulation_manifest(),
        }
    }

    pub fn handlers(self) -> Handlers {
        match self {
            Kit::Computation => atmo_builtins::computation_handlers(),
            Kit::Crypto => atmo_builtins::crypto_handlers(),
            Kit::DataProcessing => atmo_builtins::data_processing_handlers(),
            Kit::Geospatial => atmo_builtins::geospatial_handlers(),
            Kit::ImageProcessing => atmo_builtins::image_processing_handlers(),
            Kit::Simulation => atmo_builtins::simulation_handlers(),
        }
    }
}

pub fn ctx(action: &str) -> TaskContext {
    TaskContext::detached(action, Arc::new(Resources::new()))
}

/// Calls the handler directly, without schema validation.
pub fn call(kit: Kit, action: &str, params: Value) -> Result<Value, TaskError> {
    let handlers = kit.handlers();
    let Some(handler) = handlers.get(action) else {
        return Err(TaskError::fatal("NO_HANDLER", action.to_owned()));
    };
    handler.call_blocking(&ctx(action), &params)
}

/// Validates through the manifest (filling defaults), then calls the handler; checks the
/// result's `type` tag against the action's declared response type.
pub fn run(kit: Kit, action: &str, params: Value) -> Result<Value> {
    let manifest = kit.manifest();
    let def = manifest.action(action).with_context(|| format!("no action {action}"))?;
    let params = def.validate(params).map_err(|e| anyhow!("schema rejected {action}: {e}"))?;
    let result = call(kit, action, params).map_err(|e| anyhow!("{action} failed: {} ({})", e.message, e.code))?;
    let declared = def.response_type.as_deref().context("no response type")?;
    anyhow::ensure!(result["type"] == declared, "{action}: type {} but declared {declared}", result["type"]);
    Ok(result)
}

/// The handler (called directly) rejects `params` with a validation error naming `parameter`.
pub fn assert_invalid(kit: Kit, action: &str, params: Value, parameter: &str) {
    let err = match call(kit, action, params.clone()) {
        Ok(v) => panic!("{action} accepted {params}: {v}"),
        Err(e) => e,
    };
    assert_eq!(err.category, ErrorCategory::Validation, "{action} {params}: {err:?}");
    assert!(err.message.contains(&format!("`{parameter}`")), "{action}: `{parameter}` not named in {}", err.message);
    assert_eq!(err.details.as_ref().and_then(|d| d.get("parameter")), Some(&Value::from(parameter)), "{err:?}");
}

/// The manifest's schema rejects `params`, naming `parameter`.
pub fn assert_schema_rejects(kit: Kit, action: &str, params: Value, parameter: &str) {
    let manifest = kit.manifest();
    let Some(def) = manifest.action(action) else { panic!("no action {action}") };
    match def.validate(params.clone()) {
        Ok(v) => panic!("schema of {action} accepted {params} as {v}"),
        Err(e) => assert!(e.issues().iter().any(|i| i.parameter == parameter), "{action}: {e}"),
    }
}

pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default()
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}
