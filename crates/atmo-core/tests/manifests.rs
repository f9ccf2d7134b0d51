//! Manifests loaded from files: the seed's `computation` manifest in JSON, TOML and YAML, an
//! invalid manifest, and validation against the loaded schema.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use atmo_core::RetryPolicy;
use atmo_core::manifest::{
    ActionDefinition, Manifest, ManifestError, ManifestFormat, ManifestRegistry, ParamType, ParameterSpec,
    ValidationIssueKind,
};
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The seed's `computation` manifest, written in code; the fixtures must load to exactly this.
fn computation_in_code() -> Manifest {
    fn matrix(name: &str) -> ParameterSpec {
        ParameterSpec::required(name, ParamType::Array).items(ParamType::Array).describe("2-D matrix, an array of rows")
    }
    fn action(id: &str, description: &str, response_type: &str) -> ActionDefinition {
        ActionDefinition::new(id).description(description).response_type(response_type)
    }
    let mut matrix_multiply = action("MATRIX_MULTIPLY", "Multiply two matrices", "MATRIX_RESULT")
        .timeout(Duration::from_secs(120))
        .param(matrix("matrixA"))
        .param(matrix("matrixB"))
        .param(
            ParameterSpec::optional("algorithm", ParamType::String, json!("standard"))
                .allowed(["standard", "strassen", "parallel"]),
        );
    matrix_multiply.estimated_duration = Some(Duration::from_secs(2));

    Manifest::builder("computation")
        .version("1.0.0")
        .description("Mathematical and scientific computation")
        .max_concurrent_tasks(5)
        .default_timeout(Duration::from_secs(60))
        .retry(RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            ..RetryPolicy::default()
        })
        .action(matrix_multiply)
        .action(
            action("PRIME_FACTORIZATION", "Factor an integer into primes", "FACTORIZATION_RESULT")
                .param(ParameterSpec::required("number", ParamType::Integer).min(2.0))
                .param(
                    ParameterSpec::optional("maxTime", ParamType::Integer, json!(30000))
                        .min(1.0)
                        .describe("time budget in milliseconds"),
                ),
        )
        .action(
            action("FOURIER_TRANSFORM", "Discrete Fourier transform of a signal", "FOURIER_RESULT")
                .param(ParameterSpec::required("signal", ParamType::Array).min_len(1).items(ParamType::Number))
                .param(ParameterSpec::optional("inverse", ParamType::Boolean, json!(false)))
                .param(
                    ParameterSpec::optional("windowFunction", ParamType::String, json!("none"))
                        .allowed(["none", "hamming", "hanning", "blackman"]),
                ),
        )
        .action(
            action("MONTE_CARLO_PI", "Estimate pi by random sampling", "MONTE_CARLO_RESULT")
                .param(ParameterSpec::required("iterations", ParamType::Integer).min(1.0))
                .param(ParameterSpec::optional_no_default("seed", ParamType::Number)),
        )
        .action(
            action("SOLVE_LINEAR_SYSTEM", "Solve Ax = b", "LINEAR_SYSTEM_RESULT")
                .param(ParameterSpec::required("coefficientMatrix", ParamType::Array).items(ParamType::Array))
                .param(ParameterSpec::required("constantVector", ParamType::Array).items(ParamType::Number))
                .param(ParameterSpec::optional("method", ParamType::String, json!("gaussian")).allowed([
                    "gaussian",
                    "lu",
                    "qr",
                    "iterative",
                ])),
        )
        .action(
            action("NUMERICAL_INTEGRATION", "Integrate a function of x over an interval", "INTEGRATION_RESULT")
                .param(ParameterSpec::required("function", ParamType::String).min_len(1).describe("an expression in x"))
                .param(ParameterSpec::required("lowerBound", ParamType::Number))
                .param(ParameterSpec::required("upperBound", ParamType::Number))
                .param(ParameterSpec::optional("method", ParamType::String, json!("simpson")).allowed([
                    "simpson",
                    "trapezoidal",
                    "gauss",
                ]))
                .param(ParameterSpec::optional("subdivisions", ParamType::Integer, json!(1000)).min(1.0)),
        )
        .build()
        .unwrap()
}

#[test]
fn computation_loads_the_same_from_json_toml_and_yaml() {
    let json = Manifest::from_path(fixture("computation.json")).unwrap();
    let toml = Manifest::from_path(fixture("computation.toml")).unwrap();
    let yaml = Manifest::from_path(fixture("computation.yaml")).unwrap();
    assert_eq!(json, toml);
    assert_eq!(json, yaml);
    assert_eq!(json, computation_in_code());
}

#[test]
fn loaded_manifest_has_the_seed_facts() {
    let m = Manifest::from_path(fixture("computation.yaml")).unwrap();
    assert_eq!(m.name, "computation");
    assert_eq!(m.concurrency_per_worker(), 5);
    assert_eq!(
        m.action_ids().collect::<Vec<_>>(),
        [
            "MATRIX_MULTIPLY",
            "PRIME_FACTORIZATION",
            "FOURIER_TRANSFORM",
            "MONTE_CARLO_PI",
            "SOLVE_LINEAR_SYSTEM",
            "NUMERICAL_INTEGRATION"
        ]
    );
    assert!(m.actions.iter().all(|a| a.retryable && a.strict));
    let mm = m.action("MATRIX_MULTIPLY").unwrap();
    assert_eq!(m.timeout_for(mm), Duration::from_secs(120));
    assert_eq!(m.timeout_for(m.action("MONTE_CARLO_PI").unwrap()), Duration::from_secs(60));
    assert_eq!(m.retry_for(mm).max_retries, 3);
}

#[test]
fn a_manifest_survives_a_json_round_trip() {
    let m = computation_in_code();
    let text = serde_json::to_string_pretty(&m).unwrap();
    assert_eq!(Manifest::from_str_format(&text, ManifestFormat::Json).unwrap(), m);
}

#[test]
fn loaded_schema_validates_requests() {
    let m = Manifest::from_path(fixture("computation.toml")).unwrap();
    let fft = m.action("FOURIER_TRANSFORM").unwrap();
    assert_eq!(
        fft.validate(json!({"signal": [1, 0.5, -1]})).unwrap(),
        json!({"signal": [1, 0.5, -1], "inverse": false, "windowFunction": "none"})
    );

    let err =
        fft.validate(json!({"signal": [], "windowFunction": "kaiser", "inverse": 1, "zeroPad": true})).unwrap_err();
    let kinds: Vec<_> = err.issues().iter().map(|i| (i.parameter.as_str(), i.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("signal", ValidationIssueKind::BadLength),
            ("inverse", ValidationIssueKind::WrongType),
            ("windowFunction", ValidationIssueKind::NotAllowed),
            ("zeroPad", ValidationIssueKind::Undeclared),
        ]
    );
    assert!(err.to_string().contains(r#""none", "hamming", "hanning", "blackman""#), "{err}");

    let pi = m.action("MONTE_CARLO_PI").unwrap();
    assert_eq!(pi.validate(json!({"iterations": 1e6})).unwrap(), json!({"iterations": 1e6}));
    let err = pi.validate(json!({"iterations": "abc"})).unwrap_err();
    assert_eq!(err.to_string(), r#"parameter `iterations` must be an integer, got string "abc""#);
}

#[test]
fn invalid_manifest_lists_every_problem() {
    let err = Manifest::from_path(fixture("invalid.toml")).unwrap_err();
    let ManifestError::Invalid { name, problems } = err else { panic!("expected Invalid, got {err:?}") };
    assert_eq!(name, "");
    let expected = [
        "`name` must not be empty",
        "`maxConcurrentTasks` must be at least 1",
        "`command.program` must name the executable",
        "action id `RESIZE_IMAGE` is declared 2 times",
        "action `RESIZE_IMAGE`: parameter `width` is declared 2 times",
        "action `RESIZE_IMAGE`: parameter `width`: `minimum` (8192) is greater than `maximum` (1)",
        "action `RESIZE_IMAGE`: parameter `caption`: `minLength` (10) is greater than `maxLength` (2)",
        "action `RESIZE_IMAGE`: the default of parameter `quality` must be between 1 and 100, got 150",
        r#"action `RESIZE_IMAGE`: the default of parameter `filter` must be one of "blur", "sepia", got string "neon""#,
        r#"action `RESIZE_IMAGE`: the default of parameter `preserveAspectRatio` must be a boolean, got string "yes""#,
        "action #3 has an empty `actionId`",
    ];
    for want in expected {
        assert!(problems.iter().any(|p| p.contains(want)), "no problem mentions {want:?} in {problems:#?}");
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}

#[test]
fn missing_file_keeps_its_path() {
    let path = fixture("no-such-manifest.json");
    match Manifest::from_path(&path) {
        Err(ManifestError::Io { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn unknown_extension_is_rejected_before_reading() {
    let path = fixture("computation.ini");
    let err = Manifest::from_path(&path).unwrap_err();
    assert!(matches!(&err, ManifestError::UnknownFormat(p) if *p == path), "{err:?}");
    assert!(err.to_string().contains(".json, .toml, .yaml or .yml"));
    assert!(matches!(Manifest::from_path(fixture("computation")), Err(ManifestError::UnknownFormat(_))));
}

#[test]
fn parse_errors_name_their_format() {
    let json = fixture("computation.json");
    let text = std::fs::read_to_string(json).unwrap();
    assert!(matches!(Manifest::from_str_format(&text, ManifestFormat::Toml), Err(ManifestError::Toml(_))));
    assert!(matches!(Manifest::from_str_format("name: [", ManifestFormat::Yaml), Err(ManifestError::Yaml(_))));
    assert!(matches!(Manifest::from_str_format("{\"name\": 1}", ManifestFormat::Json), Err(ManifestError::Json(_))));
}

#[test]
fn registry_of_loaded_manifests() {
    let mut registry = ManifestRegistry::new();
    registry.register(Manifest::from_path(fixture("computation.json")).unwrap());
    let (m, action) = registry.action("SOLVE_LINEAR_SYSTEM").unwrap();
    assert_eq!(m.name, "computation");
    assert_eq!(action.response_type.as_deref(), Some("LINEAR_SYSTEM_RESULT"));
    assert_eq!(registry.all_action_ids().len(), 6);
    let recs = registry.recommend_banks(&["MONTE_CARLO_PI", "PRIME_FACTORIZATION"], 4);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].worker_count, 4);
    assert_eq!(recs[0].actions, ["MONTE_CARLO_PI", "PRIME_FACTORIZATION"]);
}
