//! `SPATIAL_INTERSECTION`: the intersection of two polygonal GeoJSON geometries by `geo`'s
//! boolean operations, on (lng, lat) taken as planar coordinates, with the output coordinates
//! rounded to `precision` decimal places (polygons that collapse when rounded are dropped). `area` is the planar area in square degrees, `areaSquareMeters` the
//! geodesic (WGS84) area.

use atmo_core::{HandlerResult, TaskContext};
use geo::{Area as _, BooleanOps as _, Coord, GeodesicArea as _, Geometry, MapCoords as _, MultiPolygon};
use serde_json::{Value, json};

use super::input::{polygons, to_geojson};
use crate::params::Params;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let a = polygons(p, "geometry1")?;
    let b = polygons(p, "geometry2")?;
    let precision = p.opt_u64("precision", 1, 15)?.unwrap_or(6);

    ctx.cancel.check()?;
    let raw = a.intersection(&b);
    let scale = 10f64.powi(precision as i32);
    let round = |c: Coord| Coord { x: (c.x * scale).round() / scale, y: (c.y * scale).round() / scale };
    let rounded: MultiPolygon<f64> = raw.map_coords(round);
    // Slivers thinner than the precision collapse when rounded: drop them.
    let result = MultiPolygon::new(rounded.0.into_iter().filter(|poly| poly.unsigned_area() > 0.0).collect());
    ctx.cancel.check()?;

    let intersects = !result.0.is_empty();
    Ok(json!({
        "type": "INTERSECTION_RESULT",
        "intersects": intersects,
        "geometry": if intersects { to_geojson(&Geometry::MultiPolygon(result.clone())) } else { Value::Null },
        "polygons": result.0.len(),
        "area": result.unsigned_area(),
        "areaSquareMeters": result.geodesic_area_unsigned(),
        "precision": precision,
    }))
}
