//! `GENERATE_KEYPAIR` / `SIGN` / `VERIFY`: Ed25519 (RFC 8032) with `ed25519-dalek`.
//!
//! The private key is the 32-byte secret seed of RFC 8032, in base64.

use atmo_core::{HandlerResult, TaskContext};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Value, json};

use super::ENCODINGS;
use crate::params::{Params, encode, invalid};
use crate::random::os_random;

pub(super) fn generate(_ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let algorithm = p.choice("algorithm", "ed25519", &["ed25519"])?;
    let seed = match p.opt_str("seed")? {
        Some(_) => p.fixed_b64::<32>("seed")?,
        None => {
            let mut s = [0u8; 32];
            os_random(&mut s)?;
            s
        }
    };
    let key = SigningKey::from_bytes(&seed);
    Ok(json!({
        "type": "KEYPAIR_RESULT",
        "algorithm": algorithm,
        "privateKey": encode(&seed, "base64"),
        "publicKey": encode(key.verifying_key().as_bytes(), "base64"),
    }))
}

pub(super) fn sign(_ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let seed = p.fixed_b64::<32>("privateKey")?;
    let encoding = p.choice("encoding", "utf8", &ENCODINGS)?;
    let message = p.bytes("message", encoding)?;
    let key = SigningKey::from_bytes(&seed);
    let signature = key.sign(&message);
    Ok(json!({
        "type": "SIGNATURE_RESULT",
        "algorithm": "ed25519",
        "signature": encode(&signature.to_bytes(), "base64"),
        "publicKey": encode(key.verifying_key().as_bytes(), "base64"),
    }))
}

pub(super) fn verify(_ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let public = p.fixed_b64::<32>("publicKey")?;
    let signature = p.fixed_b64::<64>("signature")?;
    let encoding = p.choice("encoding", "utf8", &ENCODINGS)?;
    let message = p.bytes("message", encoding)?;
    let key = VerifyingKey::from_bytes(&public)
        .map_err(|_| invalid("publicKey", "is not a valid Ed25519 public key (not a curve point)"))?;
    let valid = key.verify_strict(&message, &Signature::from_bytes(&signature)).is_ok();
    Ok(json!({ "type": "SIGNATURE_VERIFY_RESULT", "algorithm": "ed25519", "valid": valid }))
}
