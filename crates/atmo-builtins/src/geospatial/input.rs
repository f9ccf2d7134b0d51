//! Points, polygons and GeoJSON geometries read from parameters, with errors that name the
//! parameter.

use atmo_core::TaskError;
use geo::{CoordsIter as _, Geometry, MultiPolygon};
use serde_json::{Map, Value};

use super::MAX_VERTICES;
use crate::params::{Params, invalid};

/// A WGS84 position in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct LatLng {
    pub(super) lat: f64,
    pub(super) lng: f64,
}

/// Checks that a latitude and longitude are finite and on the globe.
fn on_globe(name: &str, what: impl std::fmt::Display, lat: f64, lng: f64) -> Result<LatLng, TaskError> {
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        return Err(invalid(name, format_args!("{what}has latitude {lat}; it must be between -90 and 90")));
    }
    if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
        return Err(invalid(name, format_args!("{what}has longitude {lng}; it must be between -180 and 180")));
    }
    Ok(LatLng { lat, lng })
}

/// A position given as `{lat, lng}` (also `lon`) or as a GeoJSON-ordered `[lng, lat]` pair.
fn lat_lng(name: &str, what: &str, v: &Value) -> Result<LatLng, TaskError> {
    let number = |v: Option<&Value>| v.and_then(Value::as_f64);
    let (lat, lng) = match v {
        Value::Object(o) => (number(o.get("lat")), number(o.get("lng").or_else(|| o.get("lon")))),
        Value::Array(a) if a.len() == 2 => (number(a.get(1)), number(a.first())),
        _ => (None, None),
    };
    match (lat, lng) {
        (Some(lat), Some(lng)) => on_globe(name, what, lat, lng),
        _ => Err(invalid(name, format_args!("{what}must be an object {{lat, lng}} or a pair [lng, lat] of numbers"))),
    }
}

/// A required point parameter.
pub(super) fn point(p: Params<'_>, name: &str) -> Result<LatLng, TaskError> {
    lat_lng(name, "", p.value(name)?)
}

/// A required polygon given as a list of vertices (at least three distinct ones; a closing vertex
/// equal to the first is dropped).
pub(super) fn vertices(p: Params<'_>, name: &str) -> Result<Vec<LatLng>, TaskError> {
    let items = p.value(name)?.as_array().ok_or_else(|| invalid(name, "must be an array of vertices"))?;
    if items.len() > MAX_VERTICES {
        return Err(invalid(name, format_args!("has {} vertices; at most {MAX_VERTICES} are allowed", items.len())));
    }
    let mut out = items
        .iter()
        .enumerate()
        .map(|(i, v)| lat_lng(name, &format!("vertex {i} "), v))
        .collect::<Result<Vec<_>, _>>()?;
    if out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    if out.len() < 3 {
        return Err(invalid(name, format_args!("must have at least 3 distinct vertices, got {}", out.len())));
    }
    Ok(out)
}

/// A required GeoJSON parameter (a geometry, or a feature or feature collection whose geometries
/// are taken), with every position on the globe and at most [`MAX_VERTICES`] positions.
pub(super) fn geometry(p: Params<'_>, name: &str) -> Result<Geometry<f64>, TaskError> {
    let value = p.value(name)?;
    if !value.is_object() {
        return Err(invalid(name, "must be a GeoJSON object"));
    }
    let gj = geojson::GeoJson::from_json_value(value.clone())
        .map_err(|e| invalid(name, format_args!("is not valid GeoJSON: {e}")))?;
    let geom = Geometry::<f64>::try_from(gj).map_err(|e| invalid(name, format_args!("is not valid GeoJSON: {e}")))?;
    let count = geom.coords_count();
    if count == 0 {
        return Err(invalid(name, "has no coordinates"));
    }
    if count > MAX_VERTICES {
        return Err(invalid(name, format_args!("has {count} positions; at most {MAX_VERTICES} are allowed")));
    }
    for (i, c) in geom.coords_iter().enumerate() {
        on_globe(name, format_args!("position {i} "), c.y, c.x)?;
    }
    Ok(geom)
}

/// A required GeoJSON `Polygon` or `MultiPolygon` (or a feature of one).
pub(super) fn polygons(p: Params<'_>, name: &str) -> Result<MultiPolygon<f64>, TaskError> {
    match geometry(p, name)? {
        Geometry::Polygon(poly) => Ok(MultiPolygon(vec![poly])),
        Geometry::MultiPolygon(mp) => Ok(mp),
        Geometry::Rect(r) => Ok(MultiPolygon(vec![r.to_polygon()])),
        Geometry::Triangle(t) => Ok(MultiPolygon(vec![t.to_polygon()])),
        Geometry::GeometryCollection(gc) if !gc.0.is_empty() => {
            let mut out = Vec::new();
            for g in gc.0 {
                match g {
                    Geometry::Polygon(poly) => out.push(poly),
                    Geometry::MultiPolygon(mp) => out.extend(mp.0),
                    _ => return Err(invalid(name, "must contain only Polygon or MultiPolygon geometries")),
                }
            }
            Ok(MultiPolygon(out))
        }
        _ => Err(invalid(name, "must be a GeoJSON Polygon or MultiPolygon")),
    }
}

/// A geometry as a GeoJSON geometry object; a multi-polygon of one polygon becomes a `Polygon`.
pub(super) fn to_geojson(geom: &Geometry<f64>) -> Value {
    let single = match geom {
        Geometry::MultiPolygon(mp) if mp.0.len() == 1 => mp.0.first().cloned().map(Geometry::Polygon),
        _ => None,
    };
    let value = geojson::Value::from(single.as_ref().unwrap_or(geom));
    Value::Object(Map::from(&value))
}
