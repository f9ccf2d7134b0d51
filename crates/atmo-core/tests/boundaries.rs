//! Property tests of the boundaries hostile input reaches first: the worker protocol's decoder
//! (a line from a worker process, a message from a Web Worker) and the manifest loaders (JSON,
//! TOML, YAML files). Whatever the input, they answer `Ok` or a typed error, never a panic;
//! valid input survives a round trip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use atmo_core::manifest::{Manifest, ManifestFormat};
use atmo_core::protocol::{EngineMessage, WorkerMessage};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request id as the protocol writes it.
fn request_id() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|n| atmo_core::RequestId::from_u128(n).to_string())
}

/// Well-formed worker messages of every kind, as JSON.
fn worker_message() -> impl Strategy<Value = Value> {
    prop_oneof![
        (request_id(), json_value(), 0.0..1e6f64).prop_map(|(id, result, ms)| json!({
            "type": "task-complete", "requestId": id, "success": true, "result": result, "executionTime": ms,
        })),
        (request_id(), ".{0,20}", ".{0,40}", any::<bool>()).prop_map(|(id, code, message, retryable)| json!({
            "type": "task-complete", "requestId": id, "success": false,
            "error": { "code": code, "message": message, "retryable": retryable },
        })),
        (request_id(), 0.0..=100.0f32).prop_map(|(id, p)| json!({
            "type": "task-progress", "requestId": id, "progress": p,
        })),
        Just(json!({ "type": "heartbeat" })),
        ("[a-z-]{1,12}", "[0-9.]{1,8}", prop::collection::vec("[A-Z_]{1,12}", 0..4)).prop_map(
            |(name, version, actions)| json!({
                "type": "worker-ready", "protocolVersion": 1,
                "manifest": { "name": name, "version": version }, "actions": actions,
            })
        ),
    ]
}

/// Damages a valid line: cuts it, flips a byte, or splices bytes in.
fn damaged(line: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = line.len().max(1);
    (0..len, any::<u8>(), 0..3u8, prop::collection::vec(any::<u8>(), 0..8)).prop_map(move |(at, byte, how, splice)| {
        let mut out = line.clone();
        let at = at.min(out.len());
        match how {
            0 => out.truncate(at),
            1 => {
                if let Some(b) = out.get_mut(at) {
                    *b ^= byte | 1;
                }
            }
            _ => {
                out.splice(at..at, splice.iter().copied());
            }
        }
        out
    })
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

proptest! {
    // Failures print their minimal input; CI runs a fresh sample each time.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any bytes at all: the decoders of both directions answer without panicking, and a
    /// decoded `task-complete` gives its outcome (or says what is wrong with it).
    #[test]
    fn protocol_decoders_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(WorkerMessage::TaskComplete(c)) = serde_json::from_slice::<WorkerMessage>(&bytes) {
            let _ = c.outcome();
        }
        let _ = serde_json::from_slice::<EngineMessage>(&bytes);
    }

    /// Well-formed worker messages decode, and what decodes encodes back to the same message.
    #[test]
    fn worker_messages_round_trip(message in worker_message()) {
        let line = serde_json::to_vec(&message).unwrap();
        let decoded: WorkerMessage = serde_json::from_slice(&line).unwrap();
        let again: WorkerMessage = serde_json::from_slice(&serde_json::to_vec(&decoded).unwrap()).unwrap();
        prop_assert_eq!(&again, &decoded);
        if let WorkerMessage::TaskComplete(c) = decoded {
            let _ = c.outcome();
        }
    }

    /// A well-formed line cut short, with a byte flipped or bytes spliced in, is decoded or
    /// refused, never a panic.
    #[test]
    fn damaged_worker_lines_are_refused_cleanly(
        line in worker_message().prop_flat_map(|m| damaged(serde_json::to_vec(&m).unwrap()))
    ) {
        if let Ok(WorkerMessage::TaskComplete(c)) = serde_json::from_slice::<WorkerMessage>(&line) {
            let _ = c.outcome();
        }
    }

    /// Any text in any of the three formats: a manifest or a typed error.
    #[test]
    fn manifest_loaders_take_any_text(text in ".{0,200}") {
        for format in [ManifestFormat::Json, ManifestFormat::Toml, ManifestFormat::Yaml] {
            let _ = Manifest::from_str_format(&text, format);
        }
    }

    /// The fixture manifests damaged: each loader answers a manifest or a typed error, and a
    /// manifest it accepts passes its own checks again after a JSON round trip.
    #[test]
    fn damaged_manifests_are_refused_cleanly(
        (which, at, byte, cut) in (0..3usize, any::<prop::sample::Index>(), any::<u8>(), any::<bool>())
    ) {
        let (name, format) = [
            ("computation.json", ManifestFormat::Json),
            ("computation.toml", ManifestFormat::Toml),
            ("computation.yaml", ManifestFormat::Yaml),
        ][which];
        let mut bytes = fixture(name).into_bytes();
        let i = at.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] = byte }
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
        if let Ok(m) = Manifest::from_str_format(&text, format) {
            let json = serde_json::to_string(&m).unwrap();
            let back = Manifest::from_str_format(&json, ManifestFormat::Json);
            prop_assert!(back.is_ok(), "{json}: {back:?}");
        }
    }

    /// Manifests of arbitrary names, versions and actions load the same from all three formats.
    #[test]
    fn manifests_load_alike_from_every_format(
        name in "[a-z][a-z0-9-]{0,15}",
        version in "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}",
        actions in prop::collection::btree_set("[A-Z][A-Z_]{0,15}", 1..5),
        max in 1u32..64,
    ) {
        let actions: Vec<Value> = actions.iter().map(|a| json!({ "actionId": a, "description": a })).collect();
        let value = json!({ "name": name, "version": version, "actions": actions, "maxConcurrentTasks": max });
        let from_json = Manifest::from_str_format(&value.to_string(), ManifestFormat::Json).unwrap();
        let toml = toml::to_string(&value).unwrap();
        let yaml = serde_yaml_ng::to_string(&value).unwrap();
        prop_assert_eq!(&Manifest::from_str_format(&toml, ManifestFormat::Toml).unwrap(), &from_json);
        prop_assert_eq!(&Manifest::from_str_format(&yaml, ManifestFormat::Yaml).unwrap(), &from_json);
    }
}
