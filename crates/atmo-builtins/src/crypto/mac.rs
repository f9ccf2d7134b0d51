//! `HMAC_SIGN` / `HMAC_VERIFY` with SHA-256 or SHA-512.

use atmo_core::{HandlerResult, TaskContext, TaskError};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Sha256, Sha512};

use super::{ENCODINGS, HMAC_ALGORITHMS, OUTPUT_FORMATS};
use crate::params::{Params, decode, encode, invalid};

struct Input<'a> {
    algorithm: &'a str,
    key: Vec<u8>,
    data: Vec<u8>,
}

fn input<'a>(p: &Params<'a>) -> Result<Input<'a>, TaskError> {
    let algorithm = p.choice("algorithm", "sha256", &HMAC_ALGORITHMS)?;
    let encoding = p.choice("encoding", "utf8", &ENCODINGS)?;
    let key_encoding = p.choice("keyEncoding", "utf8", &ENCODINGS)?;
    let key = p.bytes("key", key_encoding)?;
    if key.is_empty() {
        return Err(invalid("key", "must not be empty"));
    }
    Ok(Input { algorithm, key, data: p.bytes("data", encoding)? })
}

fn key_error(e: hmac::digest::InvalidLength) -> TaskError {
    invalid("key", format_args!("is not a usable HMAC key: {e}"))
}

fn tag(i: &Input<'_>) -> Result<Vec<u8>, TaskError> {
    Ok(if i.algorithm == "sha512" {
        let mut m = Hmac::<Sha512>::new_from_slice(&i.key).map_err(key_error)?;
        m.update(&i.data);
        m.finalize().into_bytes().to_vec()
    } else {
        let mut m = Hmac::<Sha256>::new_from_slice(&i.key).map_err(key_error)?;
        m.update(&i.data);
        m.finalize().into_bytes().to_vec()
    })
}

pub(super) fn sign(_ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let i = input(&p)?;
    let output = p.choice("outputFormat", "hex", &OUTPUT_FORMATS)?;
    Ok(json!({
        "type": "HMAC_RESULT",
        "algorithm": i.algorithm,
        "signature": encode(&tag(&i)?, output),
        "outputFormat": output,
    }))
}

pub(super) fn verify(_ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let i = input(&p)?;
    let sig_encoding = p.choice("signatureEncoding", "hex", &OUTPUT_FORMATS)?;
    let signature = decode("signature", p.str("signature")?, sig_encoding)?;
    // `verify_slice` compares in constant time.
    let valid = if i.algorithm == "sha512" {
        let mut m = Hmac::<Sha512>::new_from_slice(&i.key).map_err(key_error)?;
        m.update(&i.data);
        m.verify_slice(&signature).is_ok()
    } else {
        let mut m = Hmac::<Sha256>::new_from_slice(&i.key).map_err(key_error)?;
        m.update(&i.data);
        m.verify_slice(&signature).is_ok()
    };
    Ok(json!({ "type": "HMAC_VERIFY_RESULT", "algorithm": i.algorithm, "valid": valid }))
}
