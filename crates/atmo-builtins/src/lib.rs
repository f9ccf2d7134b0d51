//! # atmo-builtins
//!
//! The built-in manifests of Atmo Workers with real handlers. Each manifest comes as a pair:
//! a [`Manifest`] (actions and their parameter schemas, as the original package declared them)
//! and the [`Handlers`] that do the work, ready for a thread bank:
//!
//! - [`computation_manifest`] / [`computation_handlers`]: matrix products, prime factorization,
//!   FFT, Monte Carlo π, linear systems, numerical integration;
//! - [`crypto_manifest`] / [`crypto_handlers`]: hashes, HMAC, AEAD encryption, Argon2id,
//!   Ed25519, random bytes;
//! - [`data_processing_manifest`] / [`data_processing_handlers`]: CSV parsing, JSONPath
//!   transforms, aggregation, JSON Schema validation, time series, fuzzy de-duplication;
//! - [`geospatial_manifest`] / [`geospatial_handlers`]: distances, point in polygon, buffers,
//!   intersections, WGS84 / Web Mercator / UTM transformations, H3 cells;
//! - [`image_processing_manifest`] / [`image_processing_handlers`]: resizing, filters, crops,
//!   rotations, PNG / JPEG / WebP conversion and thumbnails of base64 images;
//! - [`simulation_manifest`] / [`simulation_handlers`]: seeded Monte Carlo option pricing,
//!   random walks, N-body, Game of Life, SIR epidemics, M/M/c queues;
//! - [`all`] returns every pair, and [`banks`] the same as [`BuiltinBank`]s (bank id,
//!   manifest, handlers, suggested worker count) to register with a `WorkerManager` in one
//!   loop.
//!
//! Every result is a JSON object with a `type` tag (`MATRIX_RESULT`, `HASH_RESULT`, ...); every
//! bad input is a validation [`TaskError`](atmo_core::TaskError) whose message names the
//! parameter (also in `details.parameter`). Sizes are bounded (see the constants in
//! [`computation`], [`crypto`] and [`image_processing`]: images are measured from their
//! headers before their pixels are decoded) and long loops honour the attempt's cancellation
//! token.
//!
//! The crate depends only on `atmo-core` and pure-Rust crates, so it builds for
//! `wasm32-unknown-unknown`. There, without JavaScript glue, there is no OS random generator
//! and no clock: actions that need fresh randomness take a seed, key, nonce or salt instead (or
//! return `RANDOMNESS_UNAVAILABLE`), `PRIME_FACTORIZATION`'s `maxTime` is left to the engine's
//! timeout, and the `parallel` matrix product runs a blocked product on one thread.
//!
//! ```
//! use atmo_core::{Resources, TaskContext};
//! use serde_json::json;
//! use std::sync::Arc;
//!
//! let handlers = atmo_builtins::computation_handlers();
//! let manifest = atmo_builtins::computation_manifest();
//! let params = manifest.action("MONTE_CARLO_PI").unwrap().validate(json!({"iterations": 1000, "seed": 7})).unwrap();
//! let ctx = TaskContext::detached("MONTE_CARLO_PI", Arc::new(Resources::new()));
//! let result = handlers.get("MONTE_CARLO_PI").unwrap().call_blocking(&ctx, &params).unwrap();
//! assert_eq!(result["type"], "MONTE_CARLO_RESULT");
//! ```

mod banks;
pub mod computation;
pub mod crypto;
pub mod data_processing;
pub mod geospatial;
pub mod image_processing;
mod params;
mod random;
pub mod simulation;

use atmo_core::{Handlers, Manifest};

pub use banks::{BANK_ID_PREFIX, BuiltinBank, banks};
pub use computation::{computation_handlers, computation_manifest};
pub use crypto::{crypto_handlers, crypto_manifest};
pub use data_processing::{data_processing_handlers, data_processing_manifest};
pub use geospatial::{geospatial_handlers, geospatial_manifest};
pub use image_processing::{image_processing_handlers, image_processing_manifest};
pub use simulation::{simulation_handlers, simulation_manifest};

/// Every built-in manifest with its handlers, ready to register as banks.
pub fn all() -> Vec<(Manifest, Handlers)> {
    vec![
        (computation_manifest(), computation_handlers()),
        (crypto_manifest(), crypto_handlers()),
        (data_processing_manifest(), data_processing_handlers()),
        (geospatial_manifest(), geospatial_handlers()),
        (image_processing_manifest(), image_processing_handlers()),
        (simulation_manifest(), simulation_handlers()),
    ]
}
