//! The `simulation` manifest: Monte Carlo option pricing, random walks, N-body dynamics,
//! Conway's Game of Life, the SIR epidemic model and M/M/c queues.
//!
//! Every action takes an optional integer `seed`; the same seed gives the same result on every
//! platform (ChaCha8 from `rand_chacha`), and the seed actually used is reported in the result. The
//! deterministic actions (`N_BODY`, `SIR_MODEL`) accept and report it too so that all requests of
//! this manifest have the same shape. Inputs are bounded by the constants below; long loops poll
//! the attempt's cancellation token.

mod input;
mod life;
mod n_body;
mod option_pricing;
mod queue;
mod random_walk;
mod rng;
mod sir;

use std::time::Duration;

use atmo_core::manifest::{ActionDefinition, Manifest, ParamType, ParameterSpec};
use atmo_core::{Handler, Handlers};
use serde_json::json;

/// Name of the manifest.
pub const NAME: &str = "simulation";
/// Most Monte Carlo paths of `OPTION_PRICING`.
pub const MAX_PATHS: u64 = 10_000_000;
/// Most steps of one `RANDOM_WALK` walker.
pub const MAX_WALK_STEPS: u64 = 10_000_000;
/// Most `RANDOM_WALK` walkers.
pub const MAX_WALKERS: u64 = 100_000;
/// Most walker steps in total (`steps × walkers`) of one `RANDOM_WALK`.
pub const MAX_WALK_WORK: u64 = 100_000_000;
/// Most points of the first walker's path returned by `RANDOM_WALK` (longer paths are sampled).
pub const MAX_PATH_POINTS: u64 = 10_000;
/// Most bodies of `N_BODY`.
pub const MAX_BODIES: usize = 256;
/// Most `N_BODY` steps.
pub const MAX_NBODY_STEPS: u64 = 10_000_000;
/// Most pair interactions in total (`bodies² × steps`) of one `N_BODY`.
pub const MAX_NBODY_WORK: u64 = 1_000_000_000;
/// Largest `GAME_OF_LIFE` width or height.
pub const MAX_GRID_DIM: u64 = 1024;
/// Most `GAME_OF_LIFE` generations.
pub const MAX_GENERATIONS: u64 = 100_000;
/// Most cell updates in total (`width × height × generations`) of one `GAME_OF_LIFE`.
pub const MAX_LIFE_WORK: u64 = 2_000_000_000;
/// Most alive cells listed in a `GAME_OF_LIFE` result (the rest are counted, not listed).
pub const MAX_OUTPUT_CELLS: usize = 100_000;
/// Most `SIR_MODEL` days.
pub const MAX_DAYS: u64 = 100_000;
/// Most `SIR_MODEL` integration steps in total.
pub const MAX_SIR_STEPS: u64 = 10_000_000;
/// Most `QUEUE_SIMULATION` servers.
pub const MAX_SERVERS: u64 = 10_000;
/// Most `QUEUE_SIMULATION` customers.
pub const MAX_CUSTOMERS: u64 = 10_000_000;

fn seed_param() -> ParameterSpec {
    ParameterSpec::optional_no_default("seed", ParamType::Integer)
        .min(0.0)
        .describe("seed of the ChaCha8 generator; the same seed gives the same result")
}

/// The `simulation` manifest: version 1.0.0, 4 concurrent requests per worker, 60 s default
/// timeout, every action retryable and reproducible for a given `seed`.
pub fn simulation_manifest() -> Manifest {
    let built = Manifest::builder(NAME)
        .version("1.0.0")
        .description("Seeded simulations: option pricing, random walks, N-body, Game of Life, SIR, M/M/c queues")
        .max_concurrent_tasks(4)
        .default_timeout(Duration::from_secs(60))
        .action(
            ActionDefinition::new("OPTION_PRICING")
                .description("Prices a European call or put by Monte Carlo under geometric Brownian motion")
                .param(ParameterSpec::required("spot", ParamType::Number).min(0.0).describe("spot price (> 0)"))
                .param(ParameterSpec::required("strike", ParamType::Number).min(0.0).describe("strike price (> 0)"))
                .param(
                    ParameterSpec::required("rate", ParamType::Number)
                        .range(-1.0, 1.0)
                        .describe("continuously compounded risk-free rate per year"),
                )
                .param(
                    ParameterSpec::required("volatility", ParamType::Number)
                        .range(0.0, 10.0)
                        .describe("annual volatility (> 0)"),
                )
                .param(
                    ParameterSpec::required("maturity", ParamType::Number)
                        .range(0.0, 100.0)
                        .describe("time to maturity in years (> 0)"),
                )
                .param(
                    ParameterSpec::optional("optionType", ParamType::String, json!("call"))
                        .allowed(option_pricing::OPTION_TYPES),
                )
                .param(
                    ParameterSpec::optional("paths", ParamType::Integer, json!(100_000)).range(2.0, MAX_PATHS as f64),
                )
                .param(ParameterSpec::optional("antithetic", ParamType::Boolean, json!(true)))
                .param(seed_param())
                .retryable(true)
                .response_type("OPTION_PRICING_RESULT"),
        )
        .action(
            ActionDefinition::new("RANDOM_WALK")
                .description("Simple random walks on a 1-, 2- or 3-dimensional lattice")
                .param(ParameterSpec::required("steps", ParamType::Integer).range(1.0, MAX_WALK_STEPS as f64))
                .param(ParameterSpec::optional("dimensions", ParamType::Integer, json!(2)).range(1.0, 3.0))
                .param(ParameterSpec::optional("stepSize", ParamType::Number, json!(1.0)).min(0.0))
                .param(ParameterSpec::optional("walkers", ParamType::Integer, json!(1)).range(1.0, MAX_WALKERS as f64))
                .param(
                    ParameterSpec::optional("includePath", ParamType::Boolean, json!(false))
                        .describe("return the first walker's path (sampled to at most 10,000 points)"),
                )
                .param(seed_param())
                .retryable(true)
                .response_type("RANDOM_WALK_RESULT"),
        )
        .action(
            ActionDefinition::new("N_BODY")
                .description("Gravitational N-body dynamics by velocity Verlet (leapfrog)")
                .param(
                    ParameterSpec::required("bodies", ParamType::Array)
                        .length(1, MAX_BODIES)
                        .items(ParamType::Object)
                        .describe("objects {mass, position: [x, y(, z)], velocity: [vx, vy(, vz)]}"),
                )
                .param(ParameterSpec::required("dt", ParamType::Number).min(0.0).describe("time step (> 0)"))
                .param(ParameterSpec::required("steps", ParamType::Integer).range(1.0, MAX_NBODY_STEPS as f64))
                .param(ParameterSpec::optional("G", ParamType::Number, json!(1.0)).min(0.0))
                .param(
                    ParameterSpec::optional("softening", ParamType::Number, json!(0.0))
                        .min(0.0)
                        .describe("Plummer softening length"),
                )
                .param(seed_param())
                .retryable(true)
                .response_type("N_BODY_RESULT"),
        )
        .action(
            ActionDefinition::new("GAME_OF_LIFE")
                .description("Conway's Game of Life (B3/S23) on a bounded, optionally toroidal grid")
                .param(ParameterSpec::required("width", ParamType::Integer).range(1.0, MAX_GRID_DIM as f64))
                .param(ParameterSpec::required("height", ParamType::Integer).range(1.0, MAX_GRID_DIM as f64))
                .param(
                    ParameterSpec::optional_no_default("cells", ParamType::Array)
                        .items(ParamType::Array)
                        .describe("alive cells as [x, y]; if absent, cells are drawn with `density`"),
                )
                .param(
                    ParameterSpec::optional_no_default("density", ParamType::Number)
                        .range(0.0, 1.0)
                        .describe("probability that a cell starts alive (with `seed`)"),
                )
                .param(
                    ParameterSpec::optional("generations", ParamType::Integer, json!(100))
                        .range(0.0, MAX_GENERATIONS as f64),
                )
                .param(ParameterSpec::optional("wrap", ParamType::Boolean, json!(true)))
                .param(seed_param())
                .retryable(true)
                .response_type("GAME_OF_LIFE_RESULT"),
        )
        .action(
            ActionDefinition::new("SIR_MODEL")
                .description("Susceptible–infected–recovered epidemic model integrated by RK4")
                .param(ParameterSpec::required("population", ParamType::Number).range(0.0, 1e15))
                .param(ParameterSpec::required("initialInfected", ParamType::Number).min(0.0))
                .param(
                    ParameterSpec::required("beta", ParamType::Number)
                        .range(0.0, 1e6)
                        .describe("infection rate per day"),
                )
                .param(
                    ParameterSpec::required("gamma", ParamType::Number)
                        .range(0.0, 1e6)
                        .describe("recovery rate per day"),
                )
                .param(ParameterSpec::required("days", ParamType::Integer).range(1.0, MAX_DAYS as f64))
                .param(
                    ParameterSpec::optional("dt", ParamType::Number, json!(0.1))
                        .range(0.0, 1.0)
                        .describe("integration step in days (> 0); rounded down to a whole fraction of a day"),
                )
                .param(seed_param())
                .retryable(true)
                .response_type("SIR_RESULT"),
        )
        .action(
            ActionDefinition::new("QUEUE_SIMULATION")
                .description("Discrete-event simulation of an M/M/c FCFS queue, with Erlang-C values")
                .param(ParameterSpec::required("arrivalRate", ParamType::Number).min(0.0).describe("λ (> 0)"))
                .param(
                    ParameterSpec::required("serviceRate", ParamType::Number).min(0.0).describe("μ per server (> 0)"),
                )
                .param(ParameterSpec::optional("servers", ParamType::Integer, json!(1)).range(1.0, MAX_SERVERS as f64))
                .param(
                    ParameterSpec::optional("customers", ParamType::Integer, json!(10_000))
                        .range(1.0, MAX_CUSTOMERS as f64),
                )
                .param(seed_param())
                .retryable(true)
                .response_type("QUEUE_SIMULATION_RESULT"),
        )
        .build();
    // The definition above is static; a failure here is a bug caught by the crate's tests, and
    // the fallback keeps the signature infallible without panicking.
    built.unwrap_or_else(|_| Manifest::empty(NAME))
}

/// The handlers of [`simulation_manifest`], one per action (all synchronous: CPU-bound).
pub fn simulation_handlers() -> Handlers {
    Handlers::new()
        .on("OPTION_PRICING", Handler::sync(option_pricing::handle))
        .on("RANDOM_WALK", Handler::sync(random_walk::handle))
        .on("N_BODY", Handler::sync(n_body::handle))
        .on("GAME_OF_LIFE", Handler::sync(life::handle))
        .on("SIR_MODEL", Handler::sync(sir::handle))
        .on("QUEUE_SIMULATION", Handler::sync(queue::handle))
}
