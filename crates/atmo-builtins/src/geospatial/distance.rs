//! `DISTANCE_CALCULATION`: great-circle (haversine), ellipsoidal (Vincenty) or planar distance.
//!
//! - `haversine`: on a sphere of the mean Earth radius, 6,371,008.8 m (IUGG);
//! - `vincenty`: on the WGS84 ellipsoid by Vincenty's inverse formula (`geo`); for nearly
//!   antipodal points, where it does not converge, Karney's geodesic algorithm is used instead
//!   and the result says so in `algorithm`;
//! - `euclidean`: the planar distance between the points taken as (lng, lat) degrees, scaled by
//!   the mean length of one degree (111,195 m). It ignores that meridians converge, so it is only
//!   meaningful for short distances near the equator; the raw value is returned as
//!   `distanceDegrees`.

use atmo_core::{HandlerResult, TaskContext};
use geo::{Distance as _, Geodesic, Point, VincentyDistance as _};
use serde_json::{Value, json};

use super::input::{LatLng, point};
use super::{UNITS, meters_per};
use crate::params::Params;

/// The distance methods.
pub(super) const METHODS: [&str; 3] = ["haversine", "vincenty", "euclidean"];

/// Mean Earth radius (IUGG), meters.
pub(super) const MEAN_RADIUS: f64 = 6_371_008.8;

/// Great-circle distance in meters on the mean sphere.
pub(super) fn haversine(a: LatLng, b: LatLng) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dp = p2 - p1;
    let dl = (b.lng - a.lng).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * MEAN_RADIUS * h.sqrt().min(1.0).asin()
}

pub(super) fn handle(_ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let a = point(p, "point1")?;
    let b = point(p, "point2")?;
    let method = p.choice("method", "haversine", &METHODS)?;
    let unit = p.choice("unit", "km", &UNITS.map(|(name, _)| name))?;

    let mut extra = json!({});
    let (meters, algorithm) = match method {
        "vincenty" => {
            let (pa, pb) = (Point::new(a.lng, a.lat), Point::new(b.lng, b.lat));
            match pa.vincenty_distance(&pb) {
                Ok(m) => (m, "vincenty"),
                Err(_) => (Geodesic.distance(pa, pb), "karney"),
            }
        }
        "euclidean" => {
            let degrees = (b.lat - a.lat).hypot(b.lng - a.lng);
            extra = json!({ "distanceDegrees": degrees });
            (degrees * MEAN_RADIUS.to_radians(), "euclidean")
        }
        _ => (haversine(a, b), "haversine"),
    };
    let mut out = json!({
        "type": "DISTANCE_RESULT",
        "distance": meters / meters_per(unit),
        "unit": unit,
        "method": method,
        "algorithm": algorithm,
        "meters": meters,
        "point1": {"lat": a.lat, "lng": a.lng},
        "point2": {"lat": b.lat, "lng": b.lng},
    });
    if let (Some(o), Some(e)) = (out.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    Ok(out)
}
