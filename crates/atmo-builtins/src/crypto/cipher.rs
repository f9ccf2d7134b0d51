//! `ENCRYPT` / `DECRYPT`: AES-256-GCM and ChaCha20-Poly1305 with a 32-byte key and a 12-byte
//! nonce. The 16-byte tag is appended to the ciphertext.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use atmo_core::{HandlerResult, TaskContext, TaskError};
use chacha20poly1305::ChaCha20Poly1305;
use serde_json::{Value, json};

use super::CIPHERS;
use crate::params::{Params, encode, invalid};
use crate::random::os_random;

fn seal(algorithm: &str, key: &[u8; 32], nonce: &[u8; 12], payload: Payload<'_, '_>) -> Result<Vec<u8>, ()> {
    if algorithm == "chacha20-poly1305" {
        ChaCha20Poly1305::new(key.into()).encrypt(nonce.into(), payload).map_err(|_| ())
    } else {
        Aes256Gcm::new(key.into()).encrypt(nonce.into(), payload).map_err(|_| ())
    }
}

fn open(algorithm: &str, key: &[u8; 32], nonce: &[u8; 12], payload: Payload<'_, '_>) -> Result<Vec<u8>, ()> {
    if algorithm == "chacha20-poly1305" {
        ChaCha20Poly1305::new(key.into()).decrypt(nonce.into(), payload).map_err(|_| ())
    } else {
        Aes256Gcm::new(key.into()).decrypt(nonce.into(), payload).map_err(|_| ())
    }
}

pub(super) fn encrypt(_ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let algorithm = p.choice("algorithm", "aes-256-gcm", &CIPHERS)?;
    let key = p.fixed_b64::<32>("key")?;
    let encoding = p.choice("encoding", "utf8", &["utf8", "base64", "hex"])?;
    let plaintext = p.bytes("plaintext", encoding)?;
    let nonce = match p.opt_str("nonce")? {
        Some(_) => p.fixed_b64::<12>("nonce")?,
        None => {
            let mut n = [0u8; 12];
            os_random(&mut n)?;
            n
        }
    };
    let aad = p.opt_str("associatedData")?.unwrap_or("");
    let ciphertext = seal(algorithm, &key, &nonce, Payload { msg: &plaintext, aad: aad.as_bytes() })
        .map_err(|()| invalid("plaintext", "is too long to encrypt"))?;
    Ok(json!({
        "type": "ENCRYPT_RESULT",
        "algorithm": algorithm,
        "ciphertext": encode(&ciphertext, "base64"),
        "nonce": encode(&nonce, "base64"),
    }))
}

pub(super) fn decrypt(_ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let algorithm = p.choice("algorithm", "aes-256-gcm", &CIPHERS)?;
    let key = p.fixed_b64::<32>("key")?;
    let ciphertext = p.bytes("ciphertext", "base64")?;
    let nonce = p.fixed_b64::<12>("nonce")?;
    let output = p.choice("outputEncoding", "utf8", &["utf8", "base64"])?;
    let aad = p.opt_str("associatedData")?.unwrap_or("");
    let plaintext = open(algorithm, &key, &nonce, Payload { msg: &ciphertext, aad: aad.as_bytes() }).map_err(|()| {
        TaskError::fatal(
            "DECRYPTION_FAILED",
            "the ciphertext did not authenticate: wrong key, nonce or associated data, or it was tampered with",
        )
    })?;
    let plaintext = if output == "utf8" {
        Value::String(
            String::from_utf8(plaintext)
                .map_err(|_| invalid("outputEncoding", "is utf8 but the plaintext is not UTF-8; use base64"))?,
        )
    } else {
        Value::String(encode(&plaintext, "base64"))
    };
    Ok(json!({ "type": "DECRYPT_RESULT", "algorithm": algorithm, "plaintext": plaintext, "outputEncoding": output }))
}
