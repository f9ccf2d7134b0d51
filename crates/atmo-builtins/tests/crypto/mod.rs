//! NIST and RFC test vectors for the crypto handlers.

use anyhow::Result;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::support::{Kit, assert_invalid, assert_schema_rejects, call, run};

const K: Kit = Kit::Crypto;

fn b64_of_hex(h: &str) -> String {
    B64.encode(hex::decode(h).unwrap_or_default())
}

fn hex_of_b64(v: &Value) -> String {
    hex::encode(B64.decode(v.as_str().unwrap_or_default()).unwrap_or_default())
}

#[test]
fn hashes_match_official_vectors() -> Result<()> {
    let cases = [
        ("sha256", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "sha512",
            "abc",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
        ("sha3-256", "abc", "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
        ("blake3", "", "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
    ];
    for (algorithm, data, expected) in cases {
        let r = run(K, "HASH", json!({"algorithm": algorithm, "data": data}))?;
        assert_eq!(r["hash"], expected, "{algorithm}");
    }
    // base64 in, base64 out: "abc" is "YWJj".
    let r = run(K, "HASH", json!({"data": "YWJj", "encoding": "base64", "outputFormat": "base64"}))?;
    assert_eq!(hex_of_b64(&r["hash"]), cases[0].2);
    Ok(())
}

#[test]
fn hmac_matches_rfc_4231_case_2() -> Result<()> {
    let base = json!({"key": "Jefe", "data": "what do ya want for nothing?"});
    let with = |extra: Value| {
        let mut p = base.clone();
        if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        p
    };
    let sha256 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    let sha512 = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737";
    assert_eq!(run(K, "HMAC_SIGN", base.clone())?["signature"], sha256);
    assert_eq!(run(K, "HMAC_SIGN", with(json!({"algorithm": "sha512"})))?["signature"], sha512);
    assert_eq!(run(K, "HMAC_VERIFY", with(json!({"signature": sha256})))?["valid"], true);
    let wrong = format!("{}0", &sha256[..63]);
    assert_eq!(run(K, "HMAC_VERIFY", with(json!({"signature": wrong})))?["valid"], false);
    // The same key given as hex.
    let r = run(K, "HMAC_SIGN", with(json!({"key": "4a656665", "keyEncoding": "hex"})))?;
    assert_eq!(r["signature"], sha256);
    Ok(())
}

#[test]
fn aes_256_gcm_matches_the_gcm_spec_test_case_14() -> Result<()> {
    // McGrew & Viega, GCM specification, test case 14: zero key, zero IV, 16 zero bytes.
    let zero_key = B64.encode([0u8; 32]);
    let r = run(
        K,
        "ENCRYPT",
        json!({"key": zero_key, "nonce": B64.encode([0u8; 12]), "plaintext": B64.encode([0u8; 16]), "encoding": "base64"}),
    )?;
    assert_eq!(hex_of_b64(&r["ciphertext"]), "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
    Ok(())
}

#[test]
fn authenticated_encryption_round_trips_and_rejects_tampering() -> Result<()> {
    let key = B64.encode((0u8..32).collect::<Vec<_>>());
    for algorithm in ["aes-256-gcm", "chacha20-poly1305"] {
        let sealed = run(
            K,
            "ENCRYPT",
            json!({"algorithm": algorithm, "key": key, "plaintext": "attack at dawn", "associatedData": "v1"}),
        )?;
        let opened = run(
            K,
            "DECRYPT",
            json!({"algorithm": algorithm, "key": key, "ciphertext": sealed["ciphertext"], "nonce": sealed["nonce"], "associatedData": "v1"}),
        )?;
        assert_eq!(opened["plaintext"], "attack at dawn", "{algorithm}");

        let mut bytes = B64.decode(sealed["ciphertext"].as_str().unwrap_or_default())?;
        bytes[0] ^= 1;
        let tampered = json!({"algorithm": algorithm, "key": key, "ciphertext": B64.encode(&bytes), "nonce": sealed["nonce"], "associatedData": "v1"});
        let err = call(K, "DECRYPT", tampered).err().map(|e| e.code);
        assert_eq!(err.as_deref(), Some("DECRYPTION_FAILED"), "{algorithm}");

        let wrong_aad = json!({"algorithm": algorithm, "key": key, "ciphertext": sealed["ciphertext"], "nonce": sealed["nonce"], "associatedData": "v2"});
        assert!(call(K, "DECRYPT", wrong_aad).is_err(), "{algorithm}");
    }
    // Fresh nonces differ.
    let a = run(K, "ENCRYPT", json!({"key": key, "plaintext": "x"}))?;
    let b = run(K, "ENCRYPT", json!({"key": key, "plaintext": "x"}))?;
    assert_ne!(a["nonce"], b["nonce"]);
    Ok(())
}

#[test]
fn argon2id_hash_verifies_only_the_right_password() -> Result<()> {
    let h = run(K, "PASSWORD_HASH", json!({"password": "correct horse", "memoryCost": 64, "timeCost": 1}))?;
    let phc = h["hash"].as_str().unwrap_or_default().to_owned();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
    assert_eq!(run(K, "PASSWORD_VERIFY", json!({"password": "correct horse", "hash": phc}))?["valid"], true);
    assert_eq!(run(K, "PASSWORD_VERIFY", json!({"password": "battery staple", "hash": phc}))?["valid"], false);
    // A given salt makes the hash deterministic.
    let salted = json!({"password": "pw", "memoryCost": 64, "timeCost": 1, "salt": B64.encode([7u8; 16])});
    assert_eq!(run(K, "PASSWORD_HASH", salted.clone())?["hash"], run(K, "PASSWORD_HASH", salted)?["hash"]);
    Ok(())
}

#[test]
fn ed25519_matches_rfc_8032_test_1() -> Result<()> {
    let secret = b64_of_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let public_hex = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let sig_hex = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    let pair = run(K, "GENERATE_KEYPAIR", json!({"seed": secret}))?;
    assert_eq!(hex_of_b64(&pair["publicKey"]), public_hex);
    let signed = run(K, "SIGN", json!({"privateKey": secret, "message": ""}))?;
    assert_eq!(hex_of_b64(&signed["signature"]), sig_hex);
    let verify = |message: &str| {
        run(K, "VERIFY", json!({"publicKey": pair["publicKey"], "message": message, "signature": signed["signature"]}))
    };
    assert_eq!(verify("")?["valid"], true);
    assert_eq!(verify("x")?["valid"], false);

    let fresh = run(K, "GENERATE_KEYPAIR", json!({}))?;
    let other = run(K, "GENERATE_KEYPAIR", json!({}))?;
    assert_ne!(fresh["privateKey"], other["privateKey"]);
    Ok(())
}

#[test]
fn random_bytes_have_the_right_length_and_seeds_repeat() -> Result<()> {
    let r = run(K, "RANDOM_BYTES", json!({"length": 32, "outputFormat": "hex"}))?;
    assert_eq!(r["bytes"].as_str().map(str::len), Some(64));
    let seeded = json!({"length": 16, "seed": 9});
    assert_eq!(run(K, "RANDOM_BYTES", seeded.clone())?["bytes"], run(K, "RANDOM_BYTES", seeded)?["bytes"]);
    assert_ne!(
        run(K, "RANDOM_BYTES", json!({"length": 16}))?["bytes"],
        run(K, "RANDOM_BYTES", json!({"length": 16}))?["bytes"]
    );
    Ok(())
}

#[test]
fn invalid_inputs_name_their_parameter() {
    let key = B64.encode([1u8; 32]);
    let cases = [
        ("HASH", json!({"data": "abc", "algorithm": "md5"}), "algorithm"),
        ("HASH", json!({"data": "!!!", "encoding": "base64"}), "data"),
        ("HASH", json!({}), "data"),
        ("HMAC_SIGN", json!({"key": "", "data": "x"}), "key"),
        ("HMAC_SIGN", json!({"key": "k", "data": "x", "algorithm": "sha1"}), "algorithm"),
        ("HMAC_VERIFY", json!({"key": "k", "data": "x", "signature": "zz"}), "signature"),
        ("ENCRYPT", json!({"key": "c2hvcnQ=", "plaintext": "x"}), "key"),
        ("ENCRYPT", json!({"key": key, "plaintext": "x", "nonce": "AAAA"}), "nonce"),
        ("ENCRYPT", json!({"key": key, "plaintext": "x", "algorithm": "des"}), "algorithm"),
        ("DECRYPT", json!({"key": key, "ciphertext": "AAAA"}), "nonce"),
        ("DECRYPT", json!({"key": key, "ciphertext": "%%%", "nonce": B64.encode([0u8; 12])}), "ciphertext"),
        ("PASSWORD_HASH", json!({"password": ""}), "password"),
        ("PASSWORD_HASH", json!({"password": "pw", "memoryCost": 4}), "memoryCost"),
        ("PASSWORD_HASH", json!({"password": "pw", "salt": "AAAA"}), "salt"),
        ("PASSWORD_VERIFY", json!({"password": "pw", "hash": "not-a-phc"}), "hash"),
        (
            "PASSWORD_VERIFY",
            json!({"password": "pw", "hash": "$argon2id$v=19$m=999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaA"}),
            "hash",
        ),
        ("GENERATE_KEYPAIR", json!({"seed": "AAAA"}), "seed"),
        ("GENERATE_KEYPAIR", json!({"algorithm": "rsa"}), "algorithm"),
        ("SIGN", json!({"privateKey": "AAAA", "message": "m"}), "privateKey"),
        ("VERIFY", json!({"publicKey": key, "message": "m", "signature": "AAAA"}), "signature"),
        ("VERIFY", json!({"message": "m", "signature": "AAAA"}), "publicKey"),
        ("RANDOM_BYTES", json!({"length": 0}), "length"),
        ("RANDOM_BYTES", json!({"length": 2_000_000}), "length"),
    ];
    for (action, params, parameter) in cases {
        assert_invalid(K, action, params, parameter);
    }
    let schema_cases = [
        ("HASH", json!({"data": "abc", "algorithm": "md5"}), "algorithm"),
        ("HASH", json!({"data": "abc", "colour": "red"}), "colour"),
        ("HMAC_VERIFY", json!({"key": "k", "data": "x"}), "signature"),
        ("ENCRYPT", json!({"plaintext": "x"}), "key"),
        ("DECRYPT", json!({"key": key, "ciphertext": "AAAA"}), "nonce"),
        ("PASSWORD_HASH", json!({"password": "pw", "timeCost": 0}), "timeCost"),
        ("GENERATE_KEYPAIR", json!({"algorithm": "rsa"}), "algorithm"),
        ("RANDOM_BYTES", json!({"length": 0}), "length"),
    ];
    for (action, params, parameter) in schema_cases {
        assert_schema_rejects(K, action, params, parameter);
    }
}
