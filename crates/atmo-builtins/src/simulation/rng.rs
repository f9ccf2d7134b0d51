//! The seeded generator shared by the simulation handlers.
//!
//! ChaCha8 (`rand_chacha`) output is fixed by its specification, so a seeded run gives the same
//! result on every platform and version. Without a seed one is drawn from the OS (or, on
//! `wasm32-unknown-unknown`, derived from the request id) and reported so the run can be repeated.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

pub(super) use crate::random::seed;

/// A seeded ChaCha8 stream with the few distributions the simulations need.
pub(super) struct Rng(ChaCha8Rng);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in `[0, 1)` from the top 53 bits.
    pub(super) fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)` (`n > 0`); the bias of the multiply-shift is below 2⁻³².
    pub(super) fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.0.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// Two independent standard normals (Box–Muller).
    pub(super) fn normal_pair(&mut self) -> (f64, f64) {
        // 1 − u is in (0, 1], so the logarithm is finite.
        let r = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        let theta = std::f64::consts::TAU * self.unit();
        (r * theta.cos(), r * theta.sin())
    }

    /// Exponential with the given rate (`rate > 0`).
    pub(super) fn exponential(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }
}
