//! `BUFFER_GEOMETRY`: `geo`'s buffer on a local equirectangular projection.
//!
//! The geometry is projected to meters around the centre of its bounding box
//! (`x = N·cos φ₀·Δλ`, `y = M·Δφ`, with N and M the WGS84 radii of curvature at the centre),
//! buffered there by `geo::Buffer`
//! with round ends and joins of `segments` segments per quarter circle, and projected back. The
//! projection is exact along the central parallel and meridian; its scale error grows with
//! the distance from the centre (about 0.1 % at 300 km north or south at mid latitudes), which is
//! why `distance` is bounded by [`MAX_BUFFER_METERS`]. A buffer reaching a pole or the
//! antimeridian is rejected rather than wrapped. `areaSquareMeters` is the geodesic (WGS84)
//! area of the result, measured independently of the projection.

use std::f64::consts::FRAC_PI_2;

use atmo_core::{HandlerResult, TaskContext};
use geo::algorithm::buffer::{BufferStyle, LineCap, LineJoin};
use geo::{BoundingRect as _, Buffer as _, Coord, CoordsIter as _, GeodesicArea as _, Geometry, MapCoords as _};
use serde_json::{Value, json};

use super::input::{geometry, to_geojson};
use super::{MAX_BUFFER_METERS, UNITS, meters_per};
use crate::params::{Params, invalid};

/// WGS84 semi-major axis, meters.
const WGS84_A: f64 = 6_378_137.0;
/// WGS84 first eccentricity squared.
const E2: f64 = 0.006_694_379_990_141_317;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let geom = geometry(p, "geometry")?;
    let unit = p.choice("unit", "meters", &UNITS.map(|(name, _)| name))?;
    let distance = p.f64("distance")?;
    let meters = distance * meters_per(unit);
    if !(meters > 0.0 && meters <= MAX_BUFFER_METERS) {
        return Err(invalid(
            "distance",
            format_args!("must be greater than 0 and at most {MAX_BUFFER_METERS} meters, got {distance} {unit}"),
        ));
    }
    let segments = p.opt_u64("segments", 4, 64)?.unwrap_or(8);

    let Some(bbox) = geom.bounding_rect() else { return Err(invalid("geometry", "has no coordinates")) };
    let center = bbox.center();
    // Meters per degree along the parallel and the meridian at the centre, on WGS84.
    let (sin0, cos0) = center.y.to_radians().sin_cos();
    let w = (1.0 - E2 * sin0 * sin0).sqrt();
    let kx = (WGS84_A / w * cos0).max(1e-3).to_radians();
    let ky = (WGS84_A * (1.0 - E2) / (w * w * w)).to_radians();
    let to_local = |c: Coord| Coord { x: (c.x - center.x) * kx, y: (c.y - center.y) * ky };
    let to_globe = |c: Coord| Coord { x: c.x / kx + center.x, y: c.y / ky + center.y };

    ctx.cancel.check()?;
    let local: Geometry<f64> = geom.map_coords(to_local);
    let angle = FRAC_PI_2 / segments as f64;
    let style = BufferStyle::new(meters).line_cap(LineCap::Round(angle)).line_join(LineJoin::Round(angle));
    let buffered = local.buffer_with_style(style).map_coords(to_globe);
    ctx.cancel.check()?;

    if buffered.coords_iter().any(|c| !(-90.0..=90.0).contains(&c.y) || !(-180.0..=180.0).contains(&c.x)) {
        return Err(invalid("distance", "makes the buffer reach a pole or the antimeridian"));
    }
    let area = buffered.geodesic_area_unsigned();
    let result = Geometry::MultiPolygon(buffered);
    Ok(json!({
        "type": "BUFFER_RESULT",
        "geometry": to_geojson(&result),
        "distance": distance,
        "unit": unit,
        "meters": meters,
        "segments": segments,
        "areaSquareMeters": area,
        "vertices": result.coords_count(),
    }))
}
