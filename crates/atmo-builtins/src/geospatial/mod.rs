//! The `geospatial` manifest: distances, point in polygon, buffers, intersections, coordinate
//! transformations and H3 cells.
//!
//! Positions are WGS84 degrees. Points are objects `{lat, lng}` (a GeoJSON-ordered `[lng, lat]`
//! pair is accepted too); geometries are GeoJSON (a geometry, a feature or a feature
//! collection). Inputs are bounded by the constants below; loops over many items poll the
//! attempt's cancellation token.
//!
//! Geometry work is done by the `geo` crate (Vincenty and Karney geodesics, boolean operations,
//! buffers), H3 by `h3o`; the point-in-polygon tests and the projection formulas (Web Mercator,
//! UTM by the Krüger series) are small and written here.

mod buffer;
mod containment;
mod distance;
mod h3;
mod input;
mod intersection;
mod transform;

use std::time::Duration;

use atmo_core::manifest::{ActionDefinition, Manifest, ParamType, ParameterSpec};
use atmo_core::{Handler, Handlers};
use serde_json::json;

/// Name of the manifest.
pub const NAME: &str = "geospatial";
/// Most vertices of a polygon, or positions of a GeoJSON geometry.
pub const MAX_VERTICES: usize = 100_000;
/// Most coordinates of one `COORDINATE_TRANSFORMATION`.
pub const MAX_COORDINATES: usize = 1_000_000;
/// Largest `BUFFER_GEOMETRY` distance in meters (the local projection it uses degrades beyond).
pub const MAX_BUFFER_METERS: f64 = 1_000_000.0;
/// Most cells `GENERATE_H3_CELLS` may return (checked against h3o's upper bound beforehand).
pub const MAX_H3_CELLS: usize = 100_000;

/// The length units, with their size in meters.
pub(crate) const UNITS: [(&str, f64); 4] = [("km", 1000.0), ("miles", 1609.344), ("meters", 1.0), ("feet", 0.3048)];

fn unit_names() -> [&'static str; 4] {
    UNITS.map(|(name, _)| name)
}

/// The `geospatial` manifest: version 1.0.0, 6 concurrent requests per worker, 30 s default
/// timeout, every action retryable.
pub fn geospatial_manifest() -> Manifest {
    let built = Manifest::builder(NAME)
        .version("1.0.0")
        .description("Geospatial operations: distances, point in polygon, buffers, intersections, projections, H3")
        .max_concurrent_tasks(6)
        .default_timeout(Duration::from_secs(30))
        .action(
            ActionDefinition::new("DISTANCE_CALCULATION")
                .description("Distance between two WGS84 points (haversine, Vincenty, or planar degrees)")
                .param(ParameterSpec::required("point1", ParamType::Object).describe("{lat, lng} in degrees"))
                .param(ParameterSpec::required("point2", ParamType::Object).describe("{lat, lng} in degrees"))
                .param(
                    ParameterSpec::optional("method", ParamType::String, json!("haversine"))
                        .allowed(distance::METHODS)
                        .describe("euclidean: planar distance in degrees, scaled by the mean length of a degree"),
                )
                .param(ParameterSpec::optional("unit", ParamType::String, json!("km")).allowed(unit_names()))
                .retryable(true)
                .response_type("DISTANCE_RESULT"),
        )
        .action(
            ActionDefinition::new("POLYGON_CONTAINS_POINT")
                .description("Whether a point lies inside a polygon (ray casting or winding number)")
                .param(ParameterSpec::required("point", ParamType::Object).describe("{lat, lng} in degrees"))
                .param(
                    ParameterSpec::required("polygon", ParamType::Array)
                        .length(3, MAX_VERTICES)
                        .describe("vertices {lat, lng} (or [lng, lat]); points on the boundary are not contained"),
                )
                .param(
                    ParameterSpec::optional("algorithm", ParamType::String, json!("ray-casting"))
                        .allowed(containment::ALGORITHMS),
                )
                .retryable(true)
                .response_type("CONTAINMENT_RESULT"),
        )
        .action(
            ActionDefinition::new("BUFFER_GEOMETRY")
                .description("Buffers a GeoJSON geometry by a distance, on a local equirectangular projection")
                .param(ParameterSpec::required("geometry", ParamType::Object).describe("GeoJSON"))
                .param(
                    ParameterSpec::required("distance", ParamType::Number)
                        .min(0.0)
                        .describe("buffer distance (> 0, at most 1,000 km)"),
                )
                .param(ParameterSpec::optional("unit", ParamType::String, json!("meters")).allowed(unit_names()))
                .param(
                    ParameterSpec::optional("segments", ParamType::Integer, json!(8))
                        .range(4.0, 64.0)
                        .describe("segments per quarter circle of round ends and joins"),
                )
                .retryable(true)
                .response_type("BUFFER_RESULT"),
        )
        .action(
            ActionDefinition::new("SPATIAL_INTERSECTION")
                .description("Intersection of two GeoJSON polygons or multi-polygons")
                .param(ParameterSpec::required("geometry1", ParamType::Object).describe("GeoJSON Polygon or MultiPolygon"))
                .param(ParameterSpec::required("geometry2", ParamType::Object).describe("GeoJSON Polygon or MultiPolygon"))
                .param(
                    ParameterSpec::optional("precision", ParamType::Integer, json!(6))
                        .range(1.0, 15.0)
                        .describe("decimal places of the output coordinates"),
                )
                .retryable(true)
                .response_type("INTERSECTION_RESULT"),
        )
        .action(
            ActionDefinition::new("COORDINATE_TRANSFORMATION")
                .description("Transforms coordinates between WGS84, Web Mercator and UTM zones")
                .param(
                    ParameterSpec::required("coordinates", ParamType::Array)
                        .length(1, MAX_COORDINATES)
                        .describe("pairs [x, y]; for EPSG:4326, [lng, lat]"),
                )
                .param(
                    ParameterSpec::required("fromProjection", ParamType::String)
                        .describe("EPSG:4326, EPSG:3857, EPSG:326zz (UTM north) or EPSG:327zz (UTM south)"),
                )
                .param(
                    ParameterSpec::required("toProjection", ParamType::String)
                        .describe("EPSG:4326, EPSG:3857, EPSG:326zz (UTM north) or EPSG:327zz (UTM south)"),
                )
                .retryable(true)
                .response_type("TRANSFORMATION_RESULT"),
        )
        .action(
            ActionDefinition::new("GENERATE_H3_CELLS")
                .description("H3 cells of a GeoJSON polygon at a resolution")
                .param(ParameterSpec::required("geometry", ParamType::Object).describe("GeoJSON Polygon or MultiPolygon"))
                .param(ParameterSpec::required("resolution", ParamType::Integer).range(0.0, 15.0))
                .param(
                    ParameterSpec::optional("mode", ParamType::String, json!("intersecting"))
                        .allowed(h3::MODES)
                        .describe("contained: cells inside; intersecting: cells touching; covering: intersecting, or the cell holding a small polygon"),
                )
                .retryable(true)
                .response_type("H3_RESULT"),
        )
        .build();
    // The definition above is static; a failure here is a bug caught by the crate's tests, and
    // the fallback keeps the signature infallible without panicking.
    built.unwrap_or_else(|_| Manifest::empty(NAME))
}

/// The handlers of [`geospatial_manifest`], one per action (all synchronous: CPU-bound).
pub fn geospatial_handlers() -> Handlers {
    Handlers::new()
        .on("DISTANCE_CALCULATION", Handler::sync(distance::handle))
        .on("POLYGON_CONTAINS_POINT", Handler::sync(containment::handle))
        .on("BUFFER_GEOMETRY", Handler::sync(buffer::handle))
        .on("SPATIAL_INTERSECTION", Handler::sync(intersection::handle))
        .on("COORDINATE_TRANSFORMATION", Handler::sync(transform::handle))
        .on("GENERATE_H3_CELLS", Handler::sync(h3::handle))
}

/// Meters in one `unit` (one of [`UNITS`]).
pub(crate) fn meters_per(unit: &str) -> f64 {
    UNITS.iter().find(|(name, _)| *name == unit).map_or(1.0, |(_, m)| *m)
}
