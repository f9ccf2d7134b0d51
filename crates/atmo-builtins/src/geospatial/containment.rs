//! `POLYGON_CONTAINS_POINT`: ray casting (even–odd crossings) or winding number (Sunday's
//! algorithm), both on (lng, lat) taken as planar coordinates.
//!
//! Points exactly on an edge or a vertex are reported with `onBoundary: true` and
//! `contains: false` by both algorithms, so that they agree with each other and with the
//! OGC/`geo` `Contains` predicate (the boundary is not part of the interior). Edges are straight
//! in degrees, not great circles.

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};

use super::input::{LatLng, point, vertices};
use crate::params::Params;

/// The point-in-polygon algorithms.
pub(super) const ALGORITHMS: [&str; 2] = ["ray-casting", "winding-number"];

/// Vertices between two cancellation checks.
const CHUNK: usize = 1 << 14;

/// Twice the signed area of triangle (a, b, p): > 0 if p is left of a→b.
fn cross(a: LatLng, b: LatLng, p: LatLng) -> f64 {
    (b.lng - a.lng) * (p.lat - a.lat) - (p.lng - a.lng) * (b.lat - a.lat)
}

fn edges(poly: &[LatLng]) -> impl Iterator<Item = (LatLng, LatLng)> + '_ {
    poly.iter().zip(poly.iter().cycle().skip(1)).map(|(a, b)| (*a, *b))
}

/// Whether `p` lies on the segment a–b.
fn on_segment(a: LatLng, b: LatLng, p: LatLng) -> bool {
    cross(a, b, p) == 0.0
        && p.lng >= a.lng.min(b.lng)
        && p.lng <= a.lng.max(b.lng)
        && p.lat >= a.lat.min(b.lat)
        && p.lat <= a.lat.max(b.lat)
}

/// Even–odd rule: a horizontal ray from `p` crosses the boundary an odd number of times.
pub(super) fn ray_casting(poly: &[LatLng], p: LatLng) -> bool {
    let mut inside = false;
    for (a, b) in edges(poly) {
        // Half-open in latitude so that a vertex on the ray is counted once.
        if (a.lat > p.lat) != (b.lat > p.lat) {
            let lng = a.lng + (p.lat - a.lat) / (b.lat - a.lat) * (b.lng - a.lng);
            if p.lng < lng {
                inside = !inside;
            }
        }
    }
    inside
}

/// Sunday's winding number: upward edges with `p` on their left count +1, downward edges with
/// `p` on their right −1.
pub(super) fn winding_number(poly: &[LatLng], p: LatLng) -> i64 {
    let mut wn = 0;
    for (a, b) in edges(poly) {
        if a.lat <= p.lat {
            if b.lat > p.lat && cross(a, b, p) > 0.0 {
                wn += 1;
            }
        } else if b.lat <= p.lat && cross(a, b, p) < 0.0 {
            wn -= 1;
        }
    }
    wn
}

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let pt = point(p, "point")?;
    let poly = vertices(p, "polygon")?;
    let algorithm = p.choice("algorithm", "ray-casting", &ALGORITHMS)?;
    if poly.len() > CHUNK {
        ctx.cancel.check()?;
    }
    let on_boundary = edges(&poly).any(|(a, b)| on_segment(a, b, pt));
    let mut out = json!({
        "type": "CONTAINMENT_RESULT",
        "algorithm": algorithm,
        "onBoundary": on_boundary,
        "vertices": poly.len(),
        "point": {"lat": pt.lat, "lng": pt.lng},
    });
    let contains = if algorithm == "winding-number" {
        let wn = if on_boundary { 0 } else { winding_number(&poly, pt) };
        out["windingNumber"] = json!(wn);
        wn != 0
    } else {
        !on_boundary && ray_casting(&poly, pt)
    };
    out["contains"] = json!(contains);
    Ok(out)
}
