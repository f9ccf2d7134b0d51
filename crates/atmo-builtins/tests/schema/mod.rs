//! The manifests themselves: names, policies, one handler per action, declared schemas.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::support::Kit;

#[test]
fn computation_manifest_matches_the_original() {
    let m = atmo_builtins::computation_manifest();
    assert_eq!((m.name.as_str(), m.version.as_str()), ("computation", "1.0.0"));
    assert_eq!(m.max_concurrent_tasks, Some(5));
    assert_eq!(m.default_timeout, Some(Duration::from_secs(60)));
    let ids: Vec<&str> = m.action_ids().collect();
    assert_eq!(
        ids,
        [
            "MATRIX_MULTIPLY",
            "PRIME_FACTORIZATION",
            "FOURIER_TRANSFORM",
            "MONTE_CARLO_PI",
            "SOLVE_LINEAR_SYSTEM",
            "NUMERICAL_INTEGRATION"
        ]
    );
    let params = |id: &str| -> Vec<String> {
        m.action(id).map(|a| a.parameters.iter().map(|p| p.name.clone()).collect()).unwrap_or_default()
    };
    assert_eq!(params("MATRIX_MULTIPLY"), ["matrixA", "matrixB", "algorithm"]);
    assert_eq!(params("PRIME_FACTORIZATION"), ["number", "maxTime"]);
    assert_eq!(params("FOURIER_TRANSFORM"), ["signal", "inverse", "windowFunction"]);
    assert_eq!(params("MONTE_CARLO_PI"), ["iterations", "seed"]);
    assert_eq!(params("SOLVE_LINEAR_SYSTEM"), ["coefficientMatrix", "constantVector", "method"]);
    assert_eq!(params("NUMERICAL_INTEGRATION"), ["function", "lowerBound", "upperBound", "method", "subdivisions"]);
}

#[test]
fn defaults_are_those_of_the_original() -> Result<()> {
    let m = atmo_builtins::computation_manifest();
    let validate = |id: &str, p| m.action(id).map(|a| a.validate(p));
    let v = validate("MATRIX_MULTIPLY", json!({"matrixA": [[1]], "matrixB": [[1]]}));
    assert_eq!(v.and_then(Result::ok).map(|v| v["algorithm"].clone()), Some(json!("standard")));
    let v = validate("PRIME_FACTORIZATION", json!({"number": 12})).and_then(Result::ok);
    assert_eq!(v.map(|v| v["maxTime"].clone()), Some(json!(30000)));
    let v = validate("FOURIER_TRANSFORM", json!({"signal": [1]})).and_then(Result::ok);
    assert_eq!(v.map(|v| (v["inverse"].clone(), v["windowFunction"].clone())), Some((json!(false), json!("none"))));
    let v = validate("SOLVE_LINEAR_SYSTEM", json!({"coefficientMatrix": [[1]], "constantVector": [1]}))
        .and_then(Result::ok);
    assert_eq!(v.map(|v| v["method"].clone()), Some(json!("gaussian")));
    let v = validate("NUMERICAL_INTEGRATION", json!({"function": "x", "lowerBound": 0, "upperBound": 1}))
        .and_then(Result::ok);
    assert_eq!(v.map(|v| (v["method"].clone(), v["subdivisions"].clone())), Some((json!("simpson"), json!(1000))));
    Ok(())
}

#[test]
fn every_action_has_a_handler_a_type_tag_and_is_retryable() {
    for kit in [Kit::Computation, Kit::Crypto] {
        let (m, h) = (kit.manifest(), kit.handlers());
        assert!(!m.actions.is_empty());
        assert_eq!(h.len(), m.actions.len(), "{}", m.name);
        for a in &m.actions {
            assert!(h.get(&a.action_id).is_some_and(|h| h.is_sync()), "{}", a.action_id);
            assert!(a.retryable, "{}", a.action_id);
            assert!(a.response_type.as_deref().is_some_and(|t| t.ends_with("_RESULT")), "{}", a.action_id);
            assert!(!a.description.is_empty(), "{}", a.action_id);
        }
    }
}

#[test]
fn all_lists_every_builtin_and_manifests_round_trip_through_json() -> Result<()> {
    let all = atmo_builtins::all();
    let names: Vec<&str> = all.iter().map(|(m, _)| m.name.as_str()).collect();
    assert_eq!(names, ["computation", "crypto", "data-processing", "geospatial", "image-processing", "simulation"]);
    for (m, _) in &all {
        let back: atmo_core::Manifest = serde_json::from_value(serde_json::to_value(m)?)?;
        assert_eq!(&back, m);
    }
    let crypto = atmo_builtins::crypto_manifest();
    assert_eq!(crypto.action_ids().count(), 11);
    Ok(())
}
