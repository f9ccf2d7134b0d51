//! `PRIME_FACTORIZATION`: trial division, then Pollard's rho (Brent's variant) with a
//! deterministic Miller–Rabin test, for 64-bit integers.
//!
//! Numbers beyond 64 bits are rejected with a validation error for now (they need a bignum
//! crate; issue 6 asks for them later).

use atmo_core::{HandlerResult, TaskContext, TaskError};
use serde_json::{Value, json};

use crate::params::{Params, invalid};

/// Primes below this are found by trial division.
const TRIAL_LIMIT: u64 = 1_000;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let number = parse_number(p.value("number")?)?;
    let max_time = p.opt_u64("maxTime", 1, u64::MAX)?.unwrap_or(30_000);
    let budget = Budget::new(max_time);
    let mut f = Factorizer { ctx, budget, factors: Vec::new(), unfactored: Vec::new() };
    f.factor(number)?;
    let Factorizer { mut factors, mut unfactored, .. } = f;
    factors.sort_unstable();
    unfactored.sort_unstable();
    let mut grouped: Vec<(u64, u32)> = Vec::new();
    for &q in &factors {
        match grouped.last_mut() {
            Some((p, e)) if *p == q => *e += 1,
            _ => grouped.push((q, 1)),
        }
    }
    Ok(json!({
        "type": "FACTORIZATION_RESULT",
        "number": number,
        "factors": factors,
        "primeFactors": grouped.iter().map(|(p, e)| json!({"prime": p, "exponent": e})).collect::<Vec<_>>(),
        "isPrime": is_prime(number),
        "complete": unfactored.is_empty(),
        "unfactored": unfactored,
    }))
}

fn parse_number(v: &Value) -> Result<u64, TaskError> {
    if let Some(n) = v.as_u64() {
        return if n >= 2 { Ok(n) } else { Err(invalid("number", format_args!("must be an integer > 1, got {n}"))) };
    }
    if v.as_i64().is_some() {
        return Err(invalid("number", "must be an integer > 1"));
    }
    match v.as_f64() {
        Some(f) if f.fract() != 0.0 || !f.is_finite() => Err(invalid("number", "must be an integer > 1")),
        Some(f) if f < 2.0 => Err(invalid("number", "must be an integer > 1")),
        Some(_) => {
            Err(invalid("number", "is larger than 18446744073709551615: numbers beyond 64 bits are not supported yet"))
        }
        None => Err(invalid("number", "must be an integer > 1")),
    }
}

struct Factorizer<'a> {
    ctx: &'a TaskContext,
    budget: Budget,
    factors: Vec<u64>,
    /// Composite cofactors left when `maxTime` ran out.
    unfactored: Vec<u64>,
}

impl Factorizer<'_> {
    fn factor(&mut self, mut n: u64) -> Result<(), TaskError> {
        let mut d = 2;
        while d < TRIAL_LIMIT && d * d <= n {
            while n.is_multiple_of(d) {
                self.factors.push(d);
                n /= d;
            }
            d += if d == 2 { 1 } else { 2 };
        }
        self.split(n)
    }

    fn split(&mut self, n: u64) -> Result<(), TaskError> {
        if n == 1 {
            return Ok(());
        }
        if is_prime(n) {
            self.factors.push(n);
            return Ok(());
        }
        match self.rho(n)? {
            Some(d) => {
                self.split(d)?;
                self.split(n / d)
            }
            None => {
                self.unfactored.push(n);
                Ok(())
            }
        }
    }

    /// A non-trivial divisor of the composite `n`, or `None` when the time budget ran out.
    fn rho(&self, n: u64) -> Result<Option<u64>, TaskError> {
        if n.is_multiple_of(2) {
            return Ok(Some(2));
        }
        for c in 1..u64::MAX {
            self.ctx.cancel.check()?;
            if self.budget.exhausted() {
                return Ok(None);
            }
            if let Some(d) = brent(n, c, || self.ctx.cancel.is_cancelled() || self.budget.exhausted())
                && d != n
            {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }
}

/// One run of Brent's cycle finding with `x² + c`; `None` if interrupted, `Some(n)` on failure.
fn brent(n: u64, c: u64, stop: impl Fn() -> bool) -> Option<u64> {
    const BATCH: u64 = 128;
    let f = |x: u64| ((u128::from(x) * u128::from(x) + u128::from(c)) % u128::from(n)) as u64;
    let (mut y, mut r, mut q, mut g) = (2u64, 1u64, 1u64, 1u64);
    let (mut x, mut ys) = (0u64, 0u64);
    while g == 1 {
        if stop() {
            return None;
        }
        x = y;
        for _ in 0..r {
            y = f(y);
        }
        let mut k = 0;
        while k < r && g == 1 {
            ys = y;
            for _ in 0..BATCH.min(r - k) {
                y = f(y);
                q = mul_mod(q, x.abs_diff(y), n);
            }
            g = gcd(q, n);
            k += BATCH;
        }
        r *= 2;
    }
    if g == n {
        loop {
            ys = f(ys);
            g = gcd(x.abs_diff(ys), n);
            if g > 1 {
                break;
            }
        }
    }
    Some(g)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(m)) as u64
}

fn pow_mod(mut base: u64, mut exp: u64, m: u64) -> u64 {
    let mut acc = 1 % m;
    base %= m;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    acc
}

/// Deterministic Miller–Rabin: these bases decide every 64-bit integer.
pub(super) fn is_prime(n: u64) -> bool {
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for p in BASES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'bases: for a in BASES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// The `maxTime` budget. `wasm32-unknown-unknown` has no clock without JavaScript glue, so
/// there only the cancellation token (the engine's timeout) bounds the run.
struct Budget {
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    deadline: Option<std::time::Instant>,
}

impl Budget {
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    fn new(max_time_ms: u64) -> Self {
        let deadline = std::time::Instant::now().checked_add(std::time::Duration::from_millis(max_time_ms));
        Budget { deadline }
    }

    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    fn new(_max_time_ms: u64) -> Self {
        Budget {}
    }

    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    fn exhausted(&self) -> bool {
        self.deadline.is_some_and(|d| std::time::Instant::now() >= d)
    }

    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    fn exhausted(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miller_rabin_knows_small_and_large_primes() {
        let primes: Vec<u64> = (0..100).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes.len(), 25);
        assert!(is_prime(18_446_744_073_709_551_557)); // largest 64-bit prime
        assert!(!is_prime(3_215_031_751)); // strong pseudoprime to bases 2, 3, 5, 7
    }
}
