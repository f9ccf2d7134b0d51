//! `PASSWORD_HASH` / `PASSWORD_VERIFY`: Argon2id (RFC 9106), PHC string format.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Version};
use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};

use crate::params::{Params, decode, invalid};
use crate::random::os_random;

/// Default memory cost in KiB (OWASP's Argon2id minimum: 19 MiB, 2 passes, 1 lane).
pub(super) const DEFAULT_MEMORY_KIB: u64 = 19 * 1024;
/// Largest memory cost accepted, in KiB (256 MiB).
pub(super) const MAX_MEMORY_KIB: u64 = 256 * 1024;

pub(super) fn hash(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let password = p.str("password")?;
    if password.is_empty() {
        return Err(invalid("password", "must not be empty"));
    }
    let memory = p.opt_u64("memoryCost", 8, MAX_MEMORY_KIB)?.unwrap_or(DEFAULT_MEMORY_KIB);
    let time = p.opt_u64("timeCost", 1, 10)?.unwrap_or(2);
    let lanes = p.opt_u64("parallelism", 1, 8)?.unwrap_or(1);
    if memory < 8 * lanes {
        return Err(invalid("memoryCost", format_args!("must be at least 8 × parallelism = {} KiB", 8 * lanes)));
    }
    let salt_bytes = match p.opt_str("salt")? {
        Some(s) => {
            let b = decode("salt", s, "base64")?;
            if !(8..=48).contains(&b.len()) {
                return Err(invalid("salt", format_args!("must decode to 8–48 bytes, got {}", b.len())));
            }
            b
        }
        None => {
            let mut b = vec![0u8; 16];
            os_random(&mut b)?;
            b
        }
    };
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| invalid("salt", e))?;
    // The bounds above were checked, so these casts cannot truncate.
    let argon_params = argon2::Params::new(memory as u32, time as u32, lanes as u32, None)
        .map_err(|e| invalid("memoryCost", format_args!("with these costs: {e}")))?;
    ctx.cancel.check()?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let phc = hasher
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| atmo_core::TaskError::new("HASH_FAILED", format!("argon2 failed: {e}")))?;
    Ok(json!({
        "type": "PASSWORD_HASH_RESULT",
        "algorithm": "argon2id",
        "hash": phc.to_string(),
        "memoryCost": memory,
        "timeCost": time,
        "parallelism": lanes,
    }))
}

pub(super) fn verify(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let password = p.str("password")?;
    let phc = p.str("hash")?;
    let parsed = PasswordHash::new(phc).map_err(|e| invalid("hash", format_args!("is not a PHC string: {e}")))?;
    if parsed.algorithm.as_str() != "argon2id"
        && parsed.algorithm.as_str() != "argon2i"
        && parsed.algorithm.as_str() != "argon2d"
    {
        return Err(invalid("hash", format_args!("uses `{}`, not Argon2", parsed.algorithm)));
    }
    // Refuse costs beyond what PASSWORD_HASH accepts, so a crafted hash cannot exhaust memory.
    if let Some(m) = parsed.params.get_decimal("m")
        && u64::from(m) > MAX_MEMORY_KIB
    {
        return Err(invalid("hash", format_args!("asks for {m} KiB; at most {MAX_MEMORY_KIB} are allowed")));
    }
    if let Some(t) = parsed.params.get_decimal("t")
        && t > 10
    {
        return Err(invalid("hash", format_args!("asks for {t} passes; at most 10 are allowed")));
    }
    ctx.cancel.check()?;
    // The costs come from the PHC string itself.
    let valid = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
    Ok(json!({ "type": "PASSWORD_VERIFY_RESULT", "valid": valid }))
}
