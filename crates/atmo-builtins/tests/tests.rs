//! Integration tests of atmo-builtins: one binary, one module per manifest.

mod computation;
mod crypto;
mod data_processing;
mod geospatial;
mod image_processing;
mod schema;
mod simulation;
mod support;
