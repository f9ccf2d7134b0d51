//! Property tests of the query-string parser of `GET /v1/requests`: whatever the query string
//! (known and unknown keys, percent-encoded bytes, control characters, huge numbers, bad
//! cursors), the answer is 200 with a page or 400 with a JSON error and a stable code, never a
//! 5xx.

use axum::http::StatusCode;
use proptest::prelude::*;

use crate::common;

/// Keys the parser knows, a few it does not, and `metadata.` keys.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "status",
            "taskId",
            "clientId",
            "bankId",
            "priorityMin",
            "priorityMax",
            "createdFrom",
            "createdTo",
            "metadata",
            "sort",
            "order",
            "limit",
            "offset",
            "cursor",
            "token",
            "nope",
        ])
        .prop_map(str::to_owned),
        encoded().prop_map(|k| format!("metadata.{k}")),
        encoded(),
    ]
}

/// Text as it may appear in a query string: plain characters, percent-encoded bytes (any
/// byte, NUL and invalid UTF-8 included), numbers of every size, JSON fragments.
fn encoded() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9_.~-]{0,8}",
        any::<u8>().prop_map(|b| format!("%{b:02X}")),
        any::<i128>().prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "%7B%22a%22%3A1%7D",
            "%5B%5D",
            "null",
            "-1",
            "0",
            "11",
            "1e309",
            "pending",
            "completed",
            "asc",
            "DESC",
            "created",
            "2024-01-01T00:00:00Z",
            "%2B",
            "+",
            "%",
            "%G0",
            "&",
            "=",
            "==",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|p| p.concat())
}

fn query_string() -> impl Strategy<Value = String> {
    prop::collection::vec((key(), encoded(), any::<bool>()), 0..6).prop_map(|pairs| {
        pairs.into_iter().map(|(k, v, bare)| if bare { k } else { format!("{k}={v}") }).collect::<Vec<_>>().join("&")
    })
}

#[test]
fn any_query_string_gets_a_page_or_a_400() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = rt.block_on(common::app());
    // A few requests, so that pages are not empty.
    rt.block_on(async {
        for i in 0..3 {
            app.submit(serde_json::json!({"taskId": "add", "parameters": {"a": i, "b": 1}, "metadata": {"n": i}}))
                .await;
        }
    });
    let config = ProptestConfig { cases: 1_000, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(q in query_string())| {
        let uri = format!("/v1/requests?{q}");
        let Ok(uri) = uri.parse::<axum::http::Uri>() else { return Ok(()) };
        let reply = rt.block_on(app.get(&uri.to_string()));
        prop_assert!(
            reply.status == StatusCode::OK || reply.status == StatusCode::BAD_REQUEST,
            "{uri}: {} {}", reply.status, reply.text
        );
        if reply.status == StatusCode::BAD_REQUEST {
            prop_assert!(reply.body["code"].is_string(), "{uri}: {}", reply.text);
        } else {
            prop_assert!(reply.body["requests"].is_array(), "{uri}: {}", reply.text);
        }
    });
}
