//! Known answers of the data-processing handlers.

use anyhow::{Context as _, Result};
use atmo_core::{ErrorCategory, TaskError};
use serde_json::{Value, json};

use crate::support::{self, Kit, close};

fn call(action: &str, params: Value) -> Result<Value, TaskError> {
    support::call(Kit::DataProcessing, action, params)
}

fn run(action: &str, params: Value) -> Result<Value> {
    support::run(Kit::DataProcessing, action, params)
}

fn assert_invalid(action: &str, params: Value, parameter: &str) {
    support::assert_invalid(Kit::DataProcessing, action, params, parameter)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn manifest_matches_the_original() {
    let m = atmo_builtins::data_processing_manifest();
    assert_eq!((m.name.as_str(), m.max_concurrent_tasks), ("data-processing", Some(8)));
    assert_eq!(m.default_timeout, Some(std::time::Duration::from_secs(45)));
    let ids: Vec<&str> = m.action_ids().collect();
    assert_eq!(
        ids,
        [
            "CSV_PARSE",
            "JSON_TRANSFORM",
            "DATA_AGGREGATION",
            "DATA_VALIDATION",
            "TIME_SERIES_ANALYSIS",
            "DATA_DEDUPLICATION"
        ]
    );
    let handlers = atmo_builtins::data_processing_handlers();
    assert_eq!(handlers.len(), m.actions.len());
    for a in &m.actions {
        assert!(handlers.get(&a.action_id).is_some_and(|h| h.is_sync()), "{}", a.action_id);
        assert!(a.retryable, "{}", a.action_id);
    }
    let defaults = |id: &str, p: Value| m.action(id).and_then(|a| a.validate(p).ok()).unwrap_or_default();
    let v = defaults("CSV_PARSE", json!({"csvData": "a"}));
    assert_eq!((&v["delimiter"], &v["hasHeader"], &v["skipEmptyLines"]), (&json!(","), &json!(true), &json!(true)));
    let v = defaults("TIME_SERIES_ANALYSIS", json!({"timeSeries": [], "timeColumn": "t", "valueColumn": "v"}));
    assert_eq!((&v["analysisType"], &v["windowSize"]), (&json!(["trend", "seasonality"]), &json!(30)));
    let v = defaults("DATA_DEDUPLICATION", json!({"dataset": [], "matchFields": ["name"]}));
    assert_eq!((&v["threshold"], &v["algorithm"]), (&json!(0.8), &json!("levenshtein")));
    let v = defaults("DATA_VALIDATION", json!({"data": [], "schema": {}}));
    assert_eq!((&v["businessRules"], &v["strictMode"]), (&json!([]), &json!(false)));
}

#[test]
fn csv_with_quotes_escaped_delimiters_and_empty_lines() -> Result<()> {
    let text = "name,quote,n\n\"Smith, John\",\"He said \"\"hi\"\"\",1\n\nDoe,plain,2\n";
    let r = run("CSV_PARSE", json!({"csvData": text}))?;
    assert_eq!(r["headers"], json!(["name", "quote", "n"]));
    assert_eq!(
        r["rows"],
        json!([{"name": "Smith, John", "quote": "He said \"hi\"", "n": "1"}, {"name": "Doe", "quote": "plain", "n": "2"}])
    );
    assert_eq!(r["rowCount"], 2);

    let r = run(
        "CSV_PARSE",
        json!({"csvData": "a;\"b;c\"\n\n1;2", "delimiter": ";", "hasHeader": false, "skipEmptyLines": false}),
    )?;
    assert_eq!(r["rows"], json!([["a", "b;c"], [], ["1", "2"]]));
    assert_eq!(r["headers"], Value::Null);
    Ok(())
}

#[test]
fn jsonpath_select_rename_set_delete_map() -> Result<()> {
    let data = json!({"users": [{"name": "ann", "age": 31, "tmp": 1}, {"name": "bob", "age": 42, "tmp": 2}]});
    let r = run(
        "JSON_TRANSFORM",
        json!({"data": data, "transformations": [
            {"path": "$.users[*].name", "op": "rename", "to": "fullName"},
            {"path": "$.users[*].tmp", "op": "delete"},
            {"path": "$.users[*].fullName", "op": "map", "function": "uppercase"},
            {"path": "$.users[?@.age > 40]", "op": "select"}
        ]}),
    )?;
    assert_eq!(r["result"], json!([{"fullName": "BOB", "age": 42}]));
    assert_eq!(r["matchesPerTransformation"], json!([2, 2, 2, 1]));

    let r = run(
        "JSON_TRANSFORM",
        json!({"data": {"a": {"b": [1, 2]}}, "transformations": [{"path": "$.a.c", "op": "set", "value": 0},
               {"path": "$.a.b[0]", "op": "set", "value": 9}], "outputFormat": "flat"}),
    )?;
    assert_eq!(r["result"], json!({"a.b[0]": 9, "a.b[1]": 2}));
    let r = run("JSON_TRANSFORM", json!({"data": {"x": 1}, "transformations": [{"path": "$.x", "op": "select"}]}))?;
    assert_eq!(r["result"], json!([1]));
    Ok(())
}

#[test]
fn aggregation_sums_means_and_percentiles_with_a_filter() -> Result<()> {
    let dataset = json!([
        {"region": "north", "sales": 10, "status": "ok"},
        {"region": "north", "sales": 20, "status": "ok"},
        {"region": "north", "sales": 30, "status": "ok"},
        {"region": "north", "sales": 40, "status": "ok"},
        {"region": "south", "sales": 5, "status": "ok"},
        {"region": "south", "sales": 1000, "status": "void"},
    ]);
    let r = run(
        "DATA_AGGREGATION",
        json!({"dataset": dataset, "groupBy": ["region"],
               "aggregations": {"sales": ["sum", "mean", "min", "max", "count", "p50", "p90"]},
               "filters": [{"field": "status", "op": "ne", "value": "void"}]}),
    )?;
    assert_eq!(r["filteredRecords"], 5);
    assert_eq!(r["groupCount"], 2);
    let north = &r["groups"][0];
    assert_eq!(north["key"], json!({"region": "north"}));
    let s = &north["aggregations"]["sales"];
    assert_eq!((f(&s["sum"]), f(&s["mean"]), f(&s["min"]), f(&s["max"])), (100.0, 25.0, 10.0, 40.0));
    assert_eq!(s["count"], 4);
    assert!(close(f(&s["p50"]), 25.0, 1e-12) && close(f(&s["p90"]), 37.0, 1e-12), "{s}");
    assert_eq!(f(&r["groups"][1]["aggregations"]["sales"]["sum"]), 5.0);

    let r = run(
        "DATA_AGGREGATION",
        json!({"dataset": dataset, "groupBy": [], "aggregations": {"sales": "max"},
               "filters": [{"field": "sales", "op": "lt", "value": 35}, {"field": "region", "op": "in", "value": ["north"]}]}),
    )?;
    assert_eq!(f(&r["groups"][0]["aggregations"]["sales"]["max"]), 30.0);
    Ok(())
}

#[test]
fn validation_reports_schema_and_business_rule_failures() -> Result<()> {
    let schema = json!({"type": "object", "required": ["id", "email"],
                        "properties": {"id": {"type": "integer"}, "email": {"type": "string"}}});
    let rules = json!([{"field": "age", "rule": "min", "value": 18}, {"field": "id", "rule": "unique"}]);
    let data = json!([{"id": 1, "email": "a@x", "age": 30}, {"id": 2, "age": 12}, {"id": 1, "email": "c@x"}]);
    let r = run("DATA_VALIDATION", json!({"data": data, "schema": schema, "businessRules": rules}))?;
    assert_eq!(
        (r["valid"].clone(), r["invalidRecords"].clone(), r["validRecords"].clone()),
        (json!(false), json!(2), json!(1))
    );
    let errors = r["errors"].as_array().context("errors")?;
    assert!(
        errors.iter().any(|e| e["record"] == 1
            && e["rule"] == "schema"
            && e["message"].as_str().is_some_and(|m| m.contains("email"))),
        "{r}"
    );
    assert!(errors.iter().any(|e| e["record"] == 1 && e["rule"] == "min" && e["field"] == "age"), "{r}");
    assert!(errors.iter().any(|e| e["record"] == 2 && e["rule"] == "unique"), "{r}");

    let ok = run("DATA_VALIDATION", json!({"data": [{"id": 1, "email": "a"}], "schema": schema}))?;
    assert_eq!(ok["valid"], true);
    let err = call("DATA_VALIDATION", json!({"data": data, "schema": schema, "strictMode": true}));
    assert!(err.is_err_and(|e| e.category == ErrorCategory::Validation && e.message.contains("`data`")));
    Ok(())
}

fn series(values: impl IntoIterator<Item = f64>) -> Value {
    Value::Array(values.into_iter().enumerate().map(|(t, v)| json!({"t": t, "v": v})).collect())
}

#[test]
fn time_series_trend_seasonality_anomalies_and_forecast() -> Result<()> {
    let linear = series((0..50).map(|t| 2.5 * f64::from(t) + 7.0));
    let r = run(
        "TIME_SERIES_ANALYSIS",
        json!({"timeSeries": linear, "timeColumn": "t", "valueColumn": "v", "analysisType": ["trend", "forecast"], "horizon": 3}),
    )?;
    assert!(close(f(&r["trend"]["slope"]), 2.5, 1e-12) && close(f(&r["trend"]["intercept"]), 7.0, 1e-10), "{r}");
    let next = &r["forecast"]["values"];
    assert!(close(f(&next[0]["value"]), 2.5 * 50.0 + 7.0, 1e-9) && close(f(&next[2]["x"]), 52.0, 1e-12), "{r}");

    let sine = series((0..120).map(|t| (2.0 * std::f64::consts::PI * f64::from(t) / 12.0).sin()));
    let r = run("TIME_SERIES_ANALYSIS", json!({"timeSeries": sine, "timeColumn": "t", "valueColumn": "v"}))?;
    assert_eq!(r["seasonality"]["period"], 12, "{r}");
    assert_eq!(r["seasonality"]["detected"], true);

    let spiky = series((0..100).map(|t| if t == 60 { 50.0 } else { (f64::from(t) * 0.7).sin() }));
    let r = run(
        "TIME_SERIES_ANALYSIS",
        json!({"timeSeries": spiky, "timeColumn": "t", "valueColumn": "v", "analysisType": ["anomalies"], "windowSize": 20}),
    )?;
    assert_eq!(r["anomalies"]["count"], 1, "{r}");
    assert_eq!(r["anomalies"]["points"][0]["index"], 60);
    Ok(())
}

#[test]
fn deduplication_finds_fuzzy_duplicates() -> Result<()> {
    let people = json!([{"name": "Jon Smith"}, {"name": "Mary Jones"}, {"name": "John Smith"}, {"name": "Zed"}]);
    let r = run("DATA_DEDUPLICATION", json!({"dataset": people, "matchFields": ["name"], "threshold": 0.8}))?;
    assert_eq!(r["uniqueCount"], 3);
    assert_eq!(r["duplicateGroups"][0]["indices"], json!([0, 2]));
    assert_eq!(r["uniqueRecords"][0]["name"], "Jon Smith");

    let r = run(
        "DATA_DEDUPLICATION",
        json!({"dataset": [{"n": "Robert"}, {"n": "Rupert"}], "matchFields": ["n"], "algorithm": "soundex"}),
    )?;
    assert_eq!(r["duplicateCount"], 1);
    let r = run(
        "DATA_DEDUPLICATION",
        json!({"dataset": [{"n": "red big dog"}, {"n": "big red dog"}], "matchFields": ["n"], "algorithm": "jaccard", "threshold": 1.0}),
    )?;
    assert_eq!(r["duplicateCount"], 1);

    use atmo_builtins::data_processing::soundex;
    assert_eq!((soundex("Robert"), soundex("Rupert")), ("R163".to_owned(), "R163".to_owned()));
    assert_eq!(
        (soundex("Ashcraft"), soundex("Tymczak"), soundex("Pfister"), soundex("Lee")),
        ("A261".into(), "T522".into(), "P236".into(), "L000".into())
    );
    Ok(())
}

#[test]
fn invalid_inputs_name_the_parameter() {
    assert_invalid("CSV_PARSE", json!({"csvData": 5}), "csvData");
    assert_invalid("CSV_PARSE", json!({"csvData": "a", "delimiter": ";;"}), "delimiter");
    assert_invalid(
        "JSON_TRANSFORM",
        json!({"data": {}, "transformations": [{"path": "$[", "op": "select"}]}),
        "transformations",
    );
    assert_invalid("JSON_TRANSFORM", json!({"data": {}, "transformations": []}), "transformations");
    assert_invalid("JSON_TRANSFORM", json!({"data": [], "transformations": [{"path": "$", "op": "select"}]}), "data");
    assert_invalid(
        "DATA_AGGREGATION",
        json!({"dataset": [], "groupBy": [], "aggregations": {"x": ["median"]}}),
        "aggregations",
    );
    assert_invalid(
        "DATA_AGGREGATION",
        json!({"dataset": [], "groupBy": [], "aggregations": {}, "filters": [{"field": "x", "op": "like", "value": 1}]}),
        "filters",
    );
    assert_invalid("DATA_AGGREGATION", json!({"dataset": [1], "groupBy": [], "aggregations": {}}), "dataset");
    assert_invalid("DATA_VALIDATION", json!({"data": [], "schema": {"type": 12}}), "schema");
    assert_invalid(
        "DATA_VALIDATION",
        json!({"data": [], "schema": {}, "businessRules": [{"field": "a", "rule": "max"}]}),
        "businessRules",
    );
    let ts = json!([{"t": 0, "v": 1}, {"t": 1, "v": 2}, {"t": 2, "v": 3}]);
    assert_invalid(
        "TIME_SERIES_ANALYSIS",
        json!({"timeSeries": ts, "timeColumn": "t", "valueColumn": "v", "windowSize": 1}),
        "windowSize",
    );
    assert_invalid(
        "TIME_SERIES_ANALYSIS",
        json!({"timeSeries": ts, "timeColumn": "t", "valueColumn": "v", "analysisType": ["magic"]}),
        "analysisType",
    );
    assert_invalid(
        "TIME_SERIES_ANALYSIS",
        json!({"timeSeries": ts, "timeColumn": "t", "valueColumn": "w"}),
        "timeSeries",
    );
    assert_invalid("DATA_DEDUPLICATION", json!({"dataset": [], "matchFields": []}), "matchFields");
    assert_invalid("DATA_DEDUPLICATION", json!({"dataset": [], "matchFields": ["a"], "threshold": 1.5}), "threshold");
    assert_invalid(
        "DATA_DEDUPLICATION",
        json!({"dataset": [], "matchFields": ["a"], "algorithm": "metaphone"}),
        "algorithm",
    );
}

#[test]
fn csv_keeps_empty_lines_after_multi_line_fields() -> Result<()> {
    let text = "\"x\ny\",1\n\n\nz,2\n";
    let r = run("CSV_PARSE", json!({"csvData": text, "hasHeader": false, "skipEmptyLines": false}))?;
    assert_eq!(r["rows"], json!([["x\ny", "1"], [], [], ["z", "2"]]));
    let r = run("CSV_PARSE", json!({"csvData": text, "hasHeader": false}))?;
    assert_eq!(r["rowCount"], 2);
    Ok(())
}
