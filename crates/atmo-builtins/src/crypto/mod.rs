//! The `crypto` manifest: hashes, HMAC, authenticated encryption, password hashing, Ed25519
//! signatures and random bytes, all from RustCrypto crates (plus the official `blake3` and
//! `ed25519-dalek`); nothing here is home-made cryptography.
//!
//! Binary values travel as strings: keys, nonces, ciphertexts and signatures in base64; hashed,
//! signed or encrypted data in the encoding its `encoding` parameter names.

mod cipher;
mod hash;
mod mac;
mod password;
mod random_bytes;
mod signature;

use std::time::Duration;

use atmo_core::manifest::{ActionDefinition, Manifest, ParamType, ParameterSpec};
use atmo_core::{Handler, Handlers};
use serde_json::json;

/// Name of the manifest.
pub const NAME: &str = "crypto";
/// Longest `data`, `plaintext`, `ciphertext` or `message` string, in characters.
pub const MAX_DATA_LEN: usize = 16 * 1024 * 1024;
/// Most bytes one `RANDOM_BYTES` request may ask for.
pub const MAX_RANDOM_BYTES: u64 = 1024 * 1024;

const ENCODINGS: [&str; 3] = ["utf8", "base64", "hex"];
const OUTPUT_FORMATS: [&str; 2] = ["hex", "base64"];
const CIPHERS: [&str; 2] = ["aes-256-gcm", "chacha20-poly1305"];
const HMAC_ALGORITHMS: [&str; 2] = ["sha256", "sha512"];

fn data(name: &str) -> ParameterSpec {
    ParameterSpec::required(name, ParamType::String).length(0, MAX_DATA_LEN)
}

fn encoding(name: &str, default: &str) -> ParameterSpec {
    ParameterSpec::optional(name, ParamType::String, json!(default)).allowed(ENCODINGS)
}

fn output_format(name: &str, default: &str) -> ParameterSpec {
    ParameterSpec::optional(name, ParamType::String, json!(default)).allowed(OUTPUT_FORMATS)
}

fn base64_key(name: &str, what: &str) -> ParameterSpec {
    ParameterSpec::required(name, ParamType::String).length(1, 1024).describe(what)
}

/// The `crypto` manifest: version 1.0.0, 8 concurrent requests per worker, 30 s default
/// timeout, every action retryable.
pub fn crypto_manifest() -> Manifest {
    let hmac = |id: &str, verify: bool| {
        let mut a = ActionDefinition::new(id)
            .param(ParameterSpec::required("key", ParamType::String).length(1, 4096))
            .param(data("data"))
            .param(ParameterSpec::optional("algorithm", ParamType::String, json!("sha256")).allowed(HMAC_ALGORITHMS))
            .param(encoding("encoding", "utf8"))
            .param(encoding("keyEncoding", "utf8"));
        a = if verify {
            a.description("Checks an HMAC tag in constant time")
                .param(ParameterSpec::required("signature", ParamType::String).length(1, 1024))
                .param(output_format("signatureEncoding", "hex"))
                .response_type("HMAC_VERIFY_RESULT")
        } else {
            a.description("Computes an HMAC tag")
                .param(output_format("outputFormat", "hex"))
                .response_type("HMAC_RESULT")
        };
        a.retryable(true)
    };
    let built = Manifest::builder(NAME)
        .version("1.0.0")
        .description("Hashes, MACs, authenticated encryption, password hashing, signatures, random bytes")
        .max_concurrent_tasks(8)
        .default_timeout(Duration::from_secs(30))
        .action(
            ActionDefinition::new("HASH")
                .description("Digest of the data (SHA-256, SHA-512, SHA3-256, BLAKE3)")
                .param(data("data"))
                .param(
                    ParameterSpec::optional("algorithm", ParamType::String, json!("sha256")).allowed(hash::ALGORITHMS),
                )
                .param(encoding("encoding", "utf8"))
                .param(output_format("outputFormat", "hex"))
                .retryable(true)
                .response_type("HASH_RESULT"),
        )
        .action(hmac("HMAC_SIGN", false))
        .action(hmac("HMAC_VERIFY", true))
        .action(
            ActionDefinition::new("ENCRYPT")
                .description("Authenticated encryption; the tag is appended to the ciphertext")
                .param(ParameterSpec::optional("algorithm", ParamType::String, json!("aes-256-gcm")).allowed(CIPHERS))
                .param(base64_key("key", "base64 of 32 bytes"))
                .param(data("plaintext"))
                .param(encoding("encoding", "utf8"))
                .param(
                    ParameterSpec::optional_no_default("nonce", ParamType::String)
                        .describe("base64 of 12 bytes; generated when absent (never reuse one with a key)"),
                )
                .param(ParameterSpec::optional_no_default("associatedData", ParamType::String).describe("utf8"))
                .retryable(true)
                .response_type("ENCRYPT_RESULT"),
        )
        .action(
            ActionDefinition::new("DECRYPT")
                .description("Authenticated decryption; a tampered ciphertext is rejected")
                .param(ParameterSpec::optional("algorithm", ParamType::String, json!("aes-256-gcm")).allowed(CIPHERS))
                .param(base64_key("key", "base64 of 32 bytes"))
                .param(data("ciphertext").describe("base64, tag included"))
                .param(ParameterSpec::required("nonce", ParamType::String).describe("base64 of 12 bytes"))
                .param(ParameterSpec::optional_no_default("associatedData", ParamType::String).describe("utf8"))
                .param(
                    ParameterSpec::optional("outputEncoding", ParamType::String, json!("utf8"))
                        .allowed(["utf8", "base64"]),
                )
                .retryable(true)
                .response_type("DECRYPT_RESULT"),
        )
        .action(
            ActionDefinition::new("PASSWORD_HASH")
                .description("Argon2id hash of a password, as a PHC string")
                .param(ParameterSpec::required("password", ParamType::String).length(1, 1024))
                .param(
                    ParameterSpec::optional("memoryCost", ParamType::Integer, json!(password::DEFAULT_MEMORY_KIB))
                        .range(8.0, password::MAX_MEMORY_KIB as f64)
                        .describe("KiB"),
                )
                .param(ParameterSpec::optional("timeCost", ParamType::Integer, json!(2)).range(1.0, 10.0))
                .param(ParameterSpec::optional("parallelism", ParamType::Integer, json!(1)).range(1.0, 8.0))
                .param(
                    ParameterSpec::optional_no_default("salt", ParamType::String)
                        .describe("base64 of 8–48 bytes; generated when absent"),
                )
                .retryable(true)
                .response_type("PASSWORD_HASH_RESULT"),
        )
        .action(
            ActionDefinition::new("PASSWORD_VERIFY")
                .description("Checks a password against an Argon2 PHC string")
                .param(ParameterSpec::required("password", ParamType::String).length(1, 1024))
                .param(ParameterSpec::required("hash", ParamType::String).length(1, 1024))
                .retryable(true)
                .response_type("PASSWORD_VERIFY_RESULT"),
        )
        .action(
            ActionDefinition::new("GENERATE_KEYPAIR")
                .description("A new Ed25519 key pair (base64 32-byte secret seed and public key)")
                .param(ParameterSpec::optional("algorithm", ParamType::String, json!("ed25519")).allowed(["ed25519"]))
                .param(
                    ParameterSpec::optional_no_default("seed", ParamType::String)
                        .describe("base64 of 32 bytes: derive the pair from it instead of fresh randomness"),
                )
                .retryable(true)
                .response_type("KEYPAIR_RESULT"),
        )
        .action(
            ActionDefinition::new("SIGN")
                .description("Ed25519 signature of a message")
                .param(base64_key("privateKey", "base64 of the 32-byte secret seed"))
                .param(data("message"))
                .param(encoding("encoding", "utf8"))
                .retryable(true)
                .response_type("SIGNATURE_RESULT"),
        )
        .action(
            ActionDefinition::new("VERIFY")
                .description("Checks an Ed25519 signature (strict verification)")
                .param(base64_key("publicKey", "base64 of 32 bytes"))
                .param(data("message"))
                .param(
                    ParameterSpec::required("signature", ParamType::String)
                        .length(1, 1024)
                        .describe("base64 of 64 bytes"),
                )
                .param(encoding("encoding", "utf8"))
                .retryable(true)
                .response_type("SIGNATURE_VERIFY_RESULT"),
        )
        .action(
            ActionDefinition::new("RANDOM_BYTES")
                .description("Cryptographically secure random bytes (or deterministic ones from a seed)")
                .param(ParameterSpec::required("length", ParamType::Integer).range(1.0, MAX_RANDOM_BYTES as f64))
                .param(output_format("outputFormat", "base64"))
                .param(
                    ParameterSpec::optional_no_default("seed", ParamType::Integer)
                        .min(0.0)
                        .describe("deterministic ChaCha20 output for tests and simulations; never for secrets"),
                )
                .retryable(true)
                .response_type("RANDOM_BYTES_RESULT"),
        )
        .build();
    built.unwrap_or_else(|_| Manifest::empty(NAME))
}

/// The handlers of [`crypto_manifest`], one per action (all synchronous: CPU-bound).
pub fn crypto_handlers() -> Handlers {
    Handlers::new()
        .on("HASH", Handler::sync(hash::handle))
        .on("HMAC_SIGN", Handler::sync(mac::sign))
        .on("HMAC_VERIFY", Handler::sync(mac::verify))
        .on("ENCRYPT", Handler::sync(cipher::encrypt))
        .on("DECRYPT", Handler::sync(cipher::decrypt))
        .on("PASSWORD_HASH", Handler::sync(password::hash))
        .on("PASSWORD_VERIFY", Handler::sync(password::verify))
        .on("GENERATE_KEYPAIR", Handler::sync(signature::generate))
        .on("SIGN", Handler::sync(signature::sign))
        .on("VERIFY", Handler::sync(signature::verify))
        .on("RANDOM_BYTES", Handler::sync(random_bytes::handle))
}
