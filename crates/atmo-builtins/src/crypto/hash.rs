//! `HASH`: SHA-256, SHA-512, SHA3-256 (RustCrypto) and BLAKE3 (the official crate).

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};
use sha3::Sha3_256;

use super::{ENCODINGS, OUTPUT_FORMATS};
use crate::params::{Params, encode};

/// The `algorithm` values.
pub(super) const ALGORITHMS: [&str; 4] = ["sha256", "sha512", "sha3-256", "blake3"];

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let algorithm = p.choice("algorithm", "sha256", &ALGORITHMS)?;
    let encoding = p.choice("encoding", "utf8", &ENCODINGS)?;
    let output = p.choice("outputFormat", "hex", &OUTPUT_FORMATS)?;
    let data = p.bytes("data", encoding)?;
    ctx.cancel.check()?;
    let digest = match algorithm {
        "sha512" => Sha512::digest(&data).to_vec(),
        "sha3-256" => Sha3_256::digest(&data).to_vec(),
        "blake3" => blake3::hash(&data).as_bytes().to_vec(),
        _ => Sha256::digest(&data).to_vec(),
    };
    Ok(json!({
        "type": "HASH_RESULT",
        "algorithm": algorithm,
        "hash": encode(&digest, output),
        "outputFormat": output,
        "inputBytes": data.len(),
    }))
}
