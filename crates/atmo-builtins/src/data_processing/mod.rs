//! The `data-processing` manifest: CSV parsing, JSONPath transformations, aggregation,
//! validation against a JSON Schema and business rules, time-series analysis and fuzzy
//! de-duplication.
//!
//! Records are JSON objects; fields may be dotted paths (`address.city`). Inputs are bounded by
//! the constants below; loops over records poll the attempt's cancellation token. The crates
//! doing the heavy lifting are pure Rust: `csv`, `serde_json_path` (RFC 9535 JSONPath),
//! `jsonschema` (without remote references) and `strsim`; Soundex, the statistics and Holt's
//! smoothing are small and written here.

mod aggregation;
mod csv_parse;
mod dedup;
mod input;
mod time_series;
mod transform;
mod validation;

use std::time::Duration;

use atmo_core::manifest::{ActionDefinition, Manifest, ParamType, ParameterSpec};
use atmo_core::{Handler, Handlers};
use serde_json::json;

pub use dedup::soundex;

/// Name of the manifest.
pub const NAME: &str = "data-processing";
/// Largest `csvData` in bytes.
pub const MAX_CSV_BYTES: usize = 16 * 1024 * 1024;
/// Most data rows of one `CSV_PARSE`.
pub const MAX_CSV_ROWS: usize = 1_000_000;
/// Most records of `DATA_AGGREGATION` and `DATA_VALIDATION`.
pub const MAX_RECORDS: usize = 1_000_000;
/// Most records of `DATA_DEDUPLICATION` (comparisons grow with records × groups).
pub const MAX_DEDUP_RECORDS: usize = 20_000;
/// Most points of `TIME_SERIES_ANALYSIS`.
pub const MAX_SERIES_POINTS: usize = 1_000_000;
/// Largest `windowSize` of `TIME_SERIES_ANALYSIS`.
pub const MAX_WINDOW: usize = 10_000;
/// Largest forecast `horizon` of `TIME_SERIES_ANALYSIS`.
pub const MAX_HORIZON: usize = 10_000;
/// Most transformations of one `JSON_TRANSFORM`.
pub const MAX_TRANSFORMATIONS: usize = 1_000;
/// Most fields in `groupBy`, `aggregations`, `filters`, `businessRules` or `matchFields`.
pub const MAX_FIELDS: usize = 1_000;
/// Most problems listed by `DATA_VALIDATION` (the rest are counted).
pub const MAX_REPORTED_ERRORS: usize = 1_000;

/// The `data-processing` manifest: version 1.0.0, 8 concurrent requests per worker, 45 s default
/// timeout, every action retryable.
pub fn data_processing_manifest() -> Manifest {
    let built = Manifest::builder(NAME)
        .version("1.0.0")
        .description("Data processing: CSV, JSONPath transforms, aggregation, validation, time series, de-duplication")
        .max_concurrent_tasks(8)
        .default_timeout(Duration::from_secs(45))
        .action(
            ActionDefinition::new("CSV_PARSE")
                .description("Parses CSV text into rows (objects keyed by the header, or arrays of strings)")
                .param(ParameterSpec::required("csvData", ParamType::String).describe("the CSV text (at most 16 MiB)"))
                .param(
                    ParameterSpec::optional("delimiter", ParamType::String, json!(","))
                        .length(1, 1)
                        .describe("one ASCII character"),
                )
                .param(
                    ParameterSpec::optional("hasHeader", ParamType::Boolean, json!(true))
                        .describe("the first row names the columns; rows are then objects"),
                )
                .param(ParameterSpec::optional("skipEmptyLines", ParamType::Boolean, json!(true)))
                .retryable(true)
                .response_type("CSV_RESULT"),
        )
        .action(
            ActionDefinition::new("JSON_TRANSFORM")
                .description("Applies JSONPath-addressed operations (select, rename, set, delete, map) in order")
                .param(ParameterSpec::required("data", ParamType::Object))
                .param(
                    ParameterSpec::required("transformations", ParamType::Array)
                        .length(1, MAX_TRANSFORMATIONS)
                        .items(ParamType::Object)
                        .describe("objects {path, op: select|rename|set|delete|map, to?, value?, function?}"),
                )
                .param(
                    ParameterSpec::optional("outputFormat", ParamType::String, json!("object"))
                        .allowed(transform::FORMATS),
                )
                .retryable(true)
                .response_type("TRANSFORM_RESULT"),
        )
        .action(
            ActionDefinition::new("DATA_AGGREGATION")
                .description("Filters records, groups them and computes sums, means, extremes, counts, percentiles")
                .param(ParameterSpec::required("dataset", ParamType::Array).items(ParamType::Object))
                .param(ParameterSpec::required("groupBy", ParamType::Array).items(ParamType::String))
                .param(
                    ParameterSpec::required("aggregations", ParamType::Object)
                        .describe("{field: [sum|mean|min|max|count|p50|p90|p95|p99]}"),
                )
                .param(
                    ParameterSpec::optional("filters", ParamType::Array, json!([]))
                        .items(ParamType::Object)
                        .describe("objects {field, op: eq|ne|gt|gte|lt|lte|in|contains, value}"),
                )
                .retryable(true)
                .response_type("AGGREGATION_RESULT"),
        )
        .action(
            ActionDefinition::new("DATA_VALIDATION")
                .description("Validates every record against a JSON Schema and business rules")
                .param(ParameterSpec::required("data", ParamType::Array))
                .param(ParameterSpec::required("schema", ParamType::Object).describe("a JSON Schema for one record"))
                .param(
                    ParameterSpec::optional("businessRules", ParamType::Array, json!([]))
                        .items(ParamType::Object)
                        .describe("objects {field, rule: required|notEmpty|min|max|minLength|maxLength|oneOf|unique, value?, message?}"),
                )
                .param(
                    ParameterSpec::optional("strictMode", ParamType::Boolean, json!(false))
                        .describe("fail the request when a record is invalid instead of reporting it"),
                )
                .retryable(true)
                .response_type("VALIDATION_RESULT"),
        )
        .action(
            ActionDefinition::new("TIME_SERIES_ANALYSIS")
                .description("Trend, seasonality, anomalies and Holt forecast of a time series")
                .param(ParameterSpec::required("timeSeries", ParamType::Array).items(ParamType::Object))
                .param(ParameterSpec::required("timeColumn", ParamType::String))
                .param(ParameterSpec::required("valueColumn", ParamType::String))
                .param(
                    ParameterSpec::optional("analysisType", ParamType::Array, json!(["trend", "seasonality"]))
                        .allowed(time_series::ANALYSES),
                )
                .param(
                    ParameterSpec::optional("windowSize", ParamType::Integer, json!(30))
                        .range(2.0, MAX_WINDOW as f64)
                        .describe("neighbours of a point for its anomaly z-score"),
                )
                .param(
                    ParameterSpec::optional("horizon", ParamType::Integer, json!(10))
                        .range(1.0, MAX_HORIZON as f64)
                        .describe("steps to forecast"),
                )
                .retryable(true)
                .response_type("TIME_SERIES_RESULT"),
        )
        .action(
            ActionDefinition::new("DATA_DEDUPLICATION")
                .description("Finds fuzzy duplicates (levenshtein, jaccard or soundex) and keeps the first of each group")
                .param(ParameterSpec::required("dataset", ParamType::Array).items(ParamType::Object))
                .param(ParameterSpec::required("matchFields", ParamType::Array).min_len(1).items(ParamType::String))
                .param(ParameterSpec::optional("threshold", ParamType::Number, json!(0.8)).range(0.0, 1.0))
                .param(
                    ParameterSpec::optional("algorithm", ParamType::String, json!("levenshtein"))
                        .allowed(dedup::ALGORITHMS),
                )
                .retryable(true)
                .response_type("DEDUPLICATION_RESULT"),
        )
        .build();
    // The definition above is static; a failure here is a bug caught by the crate's tests, and
    // the fallback keeps the signature infallible without panicking.
    built.unwrap_or_else(|_| Manifest::empty(NAME))
}

/// The handlers of [`data_processing_manifest`], one per action (all synchronous: CPU-bound).
pub fn data_processing_handlers() -> Handlers {
    Handlers::new()
        .on("CSV_PARSE", Handler::sync(csv_parse::handle))
        .on("JSON_TRANSFORM", Handler::sync(transform::handle))
        .on("DATA_AGGREGATION", Handler::sync(aggregation::handle))
        .on("DATA_VALIDATION", Handler::sync(validation::handle))
        .on("TIME_SERIES_ANALYSIS", Handler::sync(time_series::handle))
        .on("DATA_DEDUPLICATION", Handler::sync(dedup::handle))
}
