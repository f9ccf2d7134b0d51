//! The `computation` manifest: matrices, primes, FFT, Monte Carlo π, linear systems and
//! numerical integration.
//!
//! Inputs are bounded by the constants below so that a request cannot exhaust memory; long
//! loops poll the attempt's cancellation token.

mod fft;
mod integration;
mod linear;
mod matrix;
mod monte_carlo;
mod prime;

use std::time::Duration;

use atmo_core::manifest::{ActionDefinition, Manifest, ParamType, ParameterSpec};
use atmo_core::{Handler, Handlers};
use serde_json::json;

/// Name of the manifest.
pub const NAME: &str = "computation";
/// Largest number of rows or columns of a matrix parameter.
pub const MAX_MATRIX_DIM: usize = 512;
/// Longest FFT signal.
pub const MAX_SIGNAL_LEN: usize = 1 << 20;
/// Most Monte Carlo iterations.
pub const MAX_ITERATIONS: u64 = 1_000_000_000;
/// Most integration subdivisions.
pub const MAX_SUBDIVISIONS: u64 = 10_000_000;
/// Longest integrand expression, in characters.
pub const MAX_EXPRESSION_LEN: usize = 1_000;

/// The `computation` manifest: version 1.0.0, 5 concurrent requests per worker, 60 s default
/// timeout, every action retryable, parameters as in the original package.
pub fn computation_manifest() -> Manifest {
    let built = Manifest::builder(NAME)
        .version("1.0.0")
        .description("Numerical computation: matrices, primes, FFT, Monte Carlo, linear systems, integration")
        .max_concurrent_tasks(5)
        .default_timeout(Duration::from_secs(60))
        .action(
            ActionDefinition::new("MATRIX_MULTIPLY")
                .description("Multiplies two matrices (standard, Strassen or parallel)")
                .param(
                    ParameterSpec::required("matrixA", ParamType::Array)
                        .length(1, MAX_MATRIX_DIM)
                        .items(ParamType::Array)
                        .describe("left matrix, an array of rows"),
                )
                .param(
                    ParameterSpec::required("matrixB", ParamType::Array)
                        .length(1, MAX_MATRIX_DIM)
                        .items(ParamType::Array)
                        .describe("right matrix, an array of rows"),
                )
                .param(
                    ParameterSpec::optional("algorithm", ParamType::String, json!("standard"))
                        .allowed(matrix::ALGORITHMS),
                )
                .retryable(true)
                .response_type("MATRIX_RESULT"),
        )
        .action(
            ActionDefinition::new("PRIME_FACTORIZATION")
                .description("Factors an integer > 1 (trial division, Pollard rho, Miller–Rabin); 64-bit for now")
                .param(ParameterSpec::required("number", ParamType::Integer).min(2.0).describe("integer > 1"))
                .param(
                    ParameterSpec::optional("maxTime", ParamType::Integer, json!(30000))
                        .min(1.0)
                        .describe("time budget in milliseconds"),
                )
                .retryable(true)
                .response_type("FACTORIZATION_RESULT"),
        )
        .action(
            ActionDefinition::new("FOURIER_TRANSFORM")
                .description("Discrete Fourier transform of a real or complex signal, with an optional window")
                .param(
                    ParameterSpec::required("signal", ParamType::Array)
                        .length(1, MAX_SIGNAL_LEN)
                        .describe("numbers, or [re, im] pairs"),
                )
                .param(ParameterSpec::optional("inverse", ParamType::Boolean, json!(false)))
                .param(
                    ParameterSpec::optional("windowFunction", ParamType::String, json!("none")).allowed(fft::WINDOWS),
                )
                .retryable(true)
                .response_type("FFT_RESULT"),
        )
        .action(
            ActionDefinition::new("MONTE_CARLO_PI")
                .description("Estimates π by sampling the unit square; a seeded run is reproducible")
                .param(ParameterSpec::required("iterations", ParamType::Integer).range(1.0, MAX_ITERATIONS as f64))
                .param(ParameterSpec::optional_no_default("seed", ParamType::Integer).min(0.0))
                .retryable(true)
                .response_type("MONTE_CARLO_RESULT"),
        )
        .action(
            ActionDefinition::new("SOLVE_LINEAR_SYSTEM")
                .description("Solves Ax = b for a square A")
                .param(
                    ParameterSpec::required("coefficientMatrix", ParamType::Array)
                        .length(1, MAX_MATRIX_DIM)
                        .items(ParamType::Array),
                )
                .param(
                    ParameterSpec::required("constantVector", ParamType::Array)
                        .length(1, MAX_MATRIX_DIM)
                        .items(ParamType::Number),
                )
                .param(ParameterSpec::optional("method", ParamType::String, json!("gaussian")).allowed(linear::METHODS))
                .retryable(true)
                .response_type("LINEAR_SYSTEM_RESULT"),
        )
        .action(
            ActionDefinition::new("NUMERICAL_INTEGRATION")
                .description("Integrates an expression in x over [lowerBound, upperBound]")
                .param(
                    ParameterSpec::required("function", ParamType::String)
                        .length(1, MAX_EXPRESSION_LEN)
                        .describe("an expression in x, e.g. `x^2 + sin(x)`"),
                )
                .param(ParameterSpec::required("lowerBound", ParamType::Number))
                .param(ParameterSpec::required("upperBound", ParamType::Number))
                .param(
                    ParameterSpec::optional("method", ParamType::String, json!("simpson"))
                        .allowed(integration::METHODS),
                )
                .param(
                    ParameterSpec::optional("subdivisions", ParamType::Integer, json!(1000))
                        .range(1.0, MAX_SUBDIVISIONS as f64),
                )
                .retryable(true)
                .response_type("INTEGRATION_RESULT"),
        )
        .build();
    // The definition above is static; a failure here is a bug caught by the crate's tests, and
    // the fallback keeps the signature infallible without panicking.
    built.unwrap_or_else(|_| Manifest::empty(NAME))
}

/// The handlers of [`computation_manifest`], one per action (all synchronous: CPU-bound).
pub fn computation_handlers() -> Handlers {
    Handlers::new()
        .on("MATRIX_MULTIPLY", Handler::sync(matrix::handle))
        .on("PRIME_FACTORIZATION", Handler::sync(prime::handle))
        .on("FOURIER_TRANSFORM", Handler::sync(fft::handle))
        .on("MONTE_CARLO_PI", Handler::sync(monte_carlo::handle))
        .on("SOLVE_LINEAR_SYSTEM", Handler::sync(linear::handle))
        .on("NUMERICAL_INTEGRATION", Handler::sync(integration::handle))
}
