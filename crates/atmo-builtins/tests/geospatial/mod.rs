//! Known answers of the geospatial handlers.

use anyhow::{Context as _, Result};
use geo::{BooleanOps as _, Contains as _, Intersects as _, LineString, MultiPolygon, Point, Polygon};
use serde_json::{Value, json};

use crate::support::{self, Kit, close, floats};

fn run(action: &str, params: Value) -> Result<Value> {
    support::run(Kit::Geospatial, action, params)
}

fn assert_invalid(action: &str, params: Value, parameter: &str) {
    support::assert_invalid(Kit::Geospatial, action, params, parameter)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

const LONDON: (f64, f64) = (51.5074, -0.1278);
const PARIS: (f64, f64) = (48.8566, 2.3522);
const NEW_YORK: (f64, f64) = (40.7128, -74.0060);
const LOS_ANGELES: (f64, f64) = (34.0522, -118.2437);

fn distance(a: (f64, f64), b: (f64, f64), method: &str, unit: &str) -> Result<f64> {
    let r = run(
        "DISTANCE_CALCULATION",
        json!({"point1": {"lat": a.0, "lng": a.1}, "point2": {"lat": b.0, "lng": b.1}, "method": method, "unit": unit}),
    )?;
    Ok(f(&r["distance"]))
}

#[test]
fn city_distances_are_known() -> Result<()> {
    let d = distance(LONDON, PARIS, "haversine", "km")?;
    assert!(close(d, 343.5, 343.5 * 0.005), "London–Paris haversine {d}");
    let d = distance(NEW_YORK, LOS_ANGELES, "vincenty", "km")?;
    assert!(close(d, 3944.0, 3944.0 * 0.005), "New York–Los Angeles vincenty {d}");
    let h = distance(NEW_YORK, LOS_ANGELES, "haversine", "km")?;
    assert!(close(h, 3936.0, 3936.0 * 0.005), "New York–Los Angeles haversine {h}");
    // One degree of longitude on the equator: 111.32 km on the ellipsoid, 111.195 on the sphere.
    let v = distance((0.0, 0.0), (0.0, 1.0), "vincenty", "km")?;
    assert!(close(v, 111.319_49, 1e-4), "{v}");
    let e = distance((0.0, 0.0), (3.0, 4.0), "euclidean", "km")?;
    assert!(close(e, 5.0 * 111.194_93, 1e-3), "{e}");
    // Nearly antipodal points, where Vincenty does not converge, fall back to Karney's geodesic.
    let r = run(
        "DISTANCE_CALCULATION",
        json!({"point1": {"lat": 0, "lng": 0}, "point2": {"lat": 0.5, "lng": 179.7}, "method": "vincenty"}),
    )?;
    assert_eq!(r["algorithm"], "karney");
    assert!(f(&r["distance"]) > 19_900.0, "{r}");
    Ok(())
}

#[test]
fn units_convert() -> Result<()> {
    let km = distance(LONDON, PARIS, "haversine", "km")?;
    let cases = [("meters", 1000.0), ("miles", 1.0 / 1.609_344), ("feet", 1000.0 / 0.3048)];
    for (unit, per_km) in cases {
        let d = distance(LONDON, PARIS, "haversine", unit)?;
        assert!(close(d, km * per_km, 1e-6 * d), "{unit}: {d}");
    }
    let r = run("DISTANCE_CALCULATION", json!({"point1": {"lat": 1, "lng": 2}, "point2": {"lat": 1, "lng": 2}}))?;
    assert_eq!((f(&r["distance"]), r["unit"].clone(), r["method"].clone()), (0.0, json!("km"), json!("haversine")));
    Ok(())
}

fn contains(point: (f64, f64), polygon: &[(f64, f64)], algorithm: &str) -> Result<Value> {
    let vertices: Vec<Value> = polygon.iter().map(|(lat, lng)| json!({"lat": lat, "lng": lng})).collect();
    run(
        "POLYGON_CONTAINS_POINT",
        json!({"point": {"lat": point.0, "lng": point.1}, "polygon": vertices, "algorithm": algorithm}),
    )
}

/// A polygon as (lat, lng) vertices, a point, and whether it is inside.
type Case<'a> = (&'a [(f64, f64)], (f64, f64), bool);

#[test]
fn point_in_polygon_known_cases_agree_with_geo() -> Result<()> {
    let square = [(0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 0.0)];
    // A "U": the notch between lng 4 and 6 goes down to lat 3.
    let concave =
        [(0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 6.0), (3.0, 6.0), (3.0, 4.0), (10.0, 4.0), (10.0, 0.0)];
    let cases: [Case<'_>; 8] = [
        (&square, (5.0, 5.0), true),
        (&square, (15.0, 5.0), false),
        (&square, (-0.1, 5.0), false),
        (&concave, (2.0, 5.0), true),
        (&concave, (8.0, 5.0), false),
        (&concave, (8.0, 2.0), true),
        (&concave, (8.0, 8.0), true),
        (&concave, (5.0, 6.0), false),
    ];
    for (poly, pt, expected) in cases {
        let ring = LineString::from(poly.iter().map(|(lat, lng)| (*lng, *lat)).collect::<Vec<_>>());
        let by_geo = Polygon::new(ring, vec![]).contains(&Point::new(pt.1, pt.0));
        assert_eq!(by_geo, expected, "geo disagrees on {pt:?}");
        for algorithm in ["ray-casting", "winding-number"] {
            let r = contains(pt, poly, algorithm)?;
            assert_eq!(r["contains"], expected, "{algorithm} {pt:?}: {r}");
        }
    }
    // On the boundary: an edge, a vertex; neither algorithm counts it, like geo's Contains.
    for pt in [(0.0, 5.0), (10.0, 10.0)] {
        for algorithm in ["ray-casting", "winding-number"] {
            let r = contains(pt, &square, algorithm)?;
            assert_eq!((r["contains"].clone(), r["onBoundary"].clone()), (json!(false), json!(true)), "{r}");
        }
    }
    let r = contains((5.0, 5.0), &square, "winding-number")?;
    assert_eq!(r["windingNumber"].as_i64().map(i64::abs), Some(1));
    Ok(())
}

#[test]
fn buffered_point_has_the_area_of_a_circle() -> Result<()> {
    let radius = 1000.0;
    let r = run(
        "BUFFER_GEOMETRY",
        json!({"geometry": {"type": "Point", "coordinates": [2.35, 48.85]}, "distance": 1, "unit": "km", "segments": 64}),
    )?;
    let area = f(&r["areaSquareMeters"]);
    let circle = std::f64::consts::PI * radius * radius;
    assert!(close(area, circle, 0.005 * circle), "{area} vs {circle}");
    assert_eq!(r["geometry"]["type"], "Polygon");
    // Default 8 segments per quarter: a 32-gon, 0.64 % short of the circle.
    let r = run("BUFFER_GEOMETRY", json!({"geometry": {"type": "Point", "coordinates": [0, 0]}, "distance": 500}))?;
    let area = f(&r["areaSquareMeters"]);
    let circle = std::f64::consts::PI * 500.0 * 500.0;
    assert!(area < circle && close(area, circle, 0.01 * circle), "{area} vs {circle}");
    // A line buffered becomes a polygon around it.
    let line = json!({"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [0.01, 0]]}});
    let r = run("BUFFER_GEOMETRY", json!({"geometry": line, "distance": 100}))?;
    assert!(f(&r["areaSquareMeters"]) > 2.0 * 100.0 * 1100.0, "{r}");
    Ok(())
}

fn square(x0: f64, y0: f64, side: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side], [x0, y0]]]})
}

#[test]
fn overlapping_squares_intersect_in_a_square() -> Result<()> {
    let r =
        run("SPATIAL_INTERSECTION", json!({"geometry1": square(0.0, 0.0, 2.0), "geometry2": square(1.0, 1.0, 2.0)}))?;
    assert_eq!(r["intersects"], true);
    assert!(close(f(&r["area"]), 1.0, 1e-9), "{r}");
    assert_eq!(r["geometry"]["type"], "Polygon");
    let r = run(
        "SPATIAL_INTERSECTION",
        json!({"geometry1": square(0.0, 0.0, 1.0), "geometry2": square(1.0 / 3.0, 0.0, 1.0), "precision": 2}),
    )?;
    let coords: Vec<f64> = r["geometry"]["coordinates"][0].as_array().into_iter().flatten().flat_map(floats).collect();
    assert!(coords.iter().all(|c| close(*c * 100.0, (c * 100.0).round(), 1e-9)), "{coords:?}");
    let r =
        run("SPATIAL_INTERSECTION", json!({"geometry1": square(0.0, 0.0, 1.0), "geometry2": square(5.0, 5.0, 1.0)}))?;
    assert_eq!((r["intersects"].clone(), r["geometry"].clone()), (json!(false), Value::Null));
    Ok(())
}

fn transform(coordinates: Value, from: &str, to: &str) -> Result<Vec<Vec<f64>>> {
    let r = run(
        "COORDINATE_TRANSFORMATION",
        json!({"coordinates": coordinates, "fromProjection": from, "toProjection": to}),
    )?;
    Ok(r["coordinates"].as_array().context("coordinates")?.iter().map(floats).collect())
}

#[test]
fn web_mercator_and_utm_known_values_and_round_trips() -> Result<()> {
    let out = transform(json!([[180, 0], [0, 85.051_128_779_806_6], [-74.006, 40.7128]]), "EPSG:4326", "EPSG:3857")?;
    assert!(close(out[0][0], 20_037_508.342_789_244, 1e-6) && out[0][1].abs() < 1e-6, "{out:?}");
    assert!(close(out[1][1], 20_037_508.342_789_244, 1e-3), "{out:?}");
    let back = transform(json!(out), "EPSG:3857", "EPSG:4326")?;
    assert!(close(back[2][0], -74.006, 1e-9) && close(back[2][1], 40.7128, 1e-9), "{back:?}");

    // The CN Tower, 43°38′33.24″N 79°23′13.7″W, is at 630084 m E, 4833438 m N in zone 17.
    let tower = [-(79.0 + 23.0 / 60.0 + 13.7 / 3600.0), 43.0 + 38.0 / 60.0 + 33.24 / 3600.0];
    let utm = transform(json!([tower]), "EPSG:4326", "EPSG:32617")?;
    assert!(close(utm[0][0], 630_084.0, 1.0) && close(utm[0][1], 4_833_438.0, 1.0), "{utm:?}");
    let utm31 = transform(json!([[3, 0]]), "EPSG:4326", "EPSG:32631")?;
    assert!(close(utm31[0][0], 500_000.0, 1e-6) && close(utm31[0][1], 0.0, 1e-6), "{utm31:?}");
    let south = transform(json!([[-70.6693, -33.4489]]), "EPSG:4326", "EPSG:32719")?;
    assert!(south[0][1] > 6_000_000.0 && south[0][1] < 10_000_000.0, "{south:?}");
    let back = transform(json!(south), "EPSG:32719", "WGS84")?;
    assert!(close(back[0][0], -70.6693, 1e-9) && close(back[0][1], -33.4489, 1e-9), "{back:?}");
    let back = transform(json!([utm[0].clone()]), "EPSG:32617", "EPSG:4326")?;
    assert!(close(back[0][0], tower[0], 1e-9) && close(back[0][1], tower[1], 1e-9), "{back:?}");
    // UTM → Web Mercator goes through WGS84.
    let merc = transform(json!([utm[0].clone()]), "EPSG:32617", "EPSG:3857")?;
    let direct = transform(json!([tower]), "EPSG:4326", "EPSG:3857")?;
    assert!(close(merc[0][0], direct[0][0], 1e-3) && close(merc[0][1], direct[0][1], 1e-3));
    Ok(())
}

fn h3(geometry: &Value, resolution: u64, mode: &str) -> Result<Vec<String>> {
    let r = run("GENERATE_H3_CELLS", json!({"geometry": geometry, "resolution": resolution, "mode": mode}))?;
    let cells: Vec<String> =
        r["cells"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_owned)).collect();
    assert_eq!(r["count"], cells.len());
    Ok(cells)
}

fn cell_polygon(hex: &str) -> Result<MultiPolygon> {
    let index = u64::from_str_radix(hex, 16)?;
    let cell = h3o::CellIndex::try_from(index)?;
    Ok(MultiPolygon::from(cell))
}

#[test]
fn h3_cells_of_a_small_polygon() -> Result<()> {
    // A 0.1° square in Paris at resolution 7 (cells of about 5 km²).
    let geometry = square(2.3, 48.8, 0.1);
    let poly = MultiPolygon::new(vec![Polygon::new(
        LineString::from(vec![(2.3, 48.8), (2.4, 48.8), (2.4, 48.9), (2.3, 48.9), (2.3, 48.8)]),
        vec![],
    )]);
    let contained = h3(&geometry, 7, "contained")?;
    let intersecting = h3(&geometry, 7, "intersecting")?;
    let covering = h3(&geometry, 7, "covering")?;
    assert!(contained.len() <= intersecting.len() && intersecting.len() <= covering.len());
    assert!(!contained.is_empty());
    // Cross-check against geo on each cell's boundary: exactly the contained cells lie within the
    // square, every intersecting one meets it, and together they cover it.
    let mut union = MultiPolygon::new(vec![]);
    for hex in &intersecting {
        let cell = cell_polygon(hex)?;
        assert!(cell.intersects(&poly), "{hex}");
        assert_eq!(poly.contains(&cell), contained.contains(hex), "{hex}");
        union = union.union(&cell);
    }
    let uncovered = geo::Area::unsigned_area(&poly.difference(&union));
    assert!(uncovered < 1e-9, "{uncovered}");
    assert_eq!((contained.len(), intersecting.len(), covering.len()), (9, 27, 27), "fixed counts");
    // A polygon inside a single cell: nothing contained, exactly one covering cell.
    let tiny = square(2.35, 48.85, 0.0001);
    assert!(h3(&tiny, 5, "contained")?.is_empty() && h3(&tiny, 5, "intersecting")?.len() <= 1);
    assert_eq!(h3(&tiny, 5, "covering")?.len(), 1);
    Ok(())
}

#[test]
fn invalid_input_names_the_parameter() {
    let pt = json!({"lat": 1, "lng": 2});
    assert_invalid("DISTANCE_CALCULATION", json!({"point1": pt}), "point2");
    assert_invalid("DISTANCE_CALCULATION", json!({"point1": {"lat": 91, "lng": 0}, "point2": pt}), "point1");
    assert_invalid("DISTANCE_CALCULATION", json!({"point1": pt, "point2": pt, "unit": "parsecs"}), "unit");
    assert_invalid("DISTANCE_CALCULATION", json!({"point1": pt, "point2": pt, "method": "flat"}), "method");
    assert_invalid("POLYGON_CONTAINS_POINT", json!({"point": pt, "polygon": [pt, pt]}), "polygon");
    assert_invalid("POLYGON_CONTAINS_POINT", json!({"point": "here", "polygon": [[0, 0], [1, 0], [0, 1]]}), "point");
    let p = json!({"type": "Point", "coordinates": [0, 0]});
    assert_invalid("BUFFER_GEOMETRY", json!({"geometry": p, "distance": 0}), "distance");
    assert_invalid("BUFFER_GEOMETRY", json!({"geometry": p, "distance": 10, "segments": 3}), "segments");
    assert_invalid("BUFFER_GEOMETRY", json!({"geometry": {"type": "Blob"}, "distance": 10}), "geometry");
    assert_invalid(
        "BUFFER_GEOMETRY",
        json!({"geometry": {"type": "Point", "coordinates": [0, 95]}, "distance": 1}),
        "geometry",
    );
    assert_invalid("SPATIAL_INTERSECTION", json!({"geometry1": square(0.0, 0.0, 1.0), "geometry2": p}), "geometry2");
    let both = json!({"geometry1": square(0.0, 0.0, 1.0), "geometry2": square(0.0, 0.0, 1.0), "precision": 16});
    assert_invalid("SPATIAL_INTERSECTION", both, "precision");
    let t = |c: Value, from: &str, to: &str| json!({"coordinates": c, "fromProjection": from, "toProjection": to});
    assert_invalid("COORDINATE_TRANSFORMATION", t(json!([]), "EPSG:4326", "EPSG:3857"), "coordinates");
    assert_invalid("COORDINATE_TRANSFORMATION", t(json!([[0, 0]]), "EPSG:2154", "EPSG:3857"), "fromProjection");
    assert_invalid("COORDINATE_TRANSFORMATION", t(json!([[0, 0]]), "EPSG:4326", "EPSG:32661"), "toProjection");
    assert_invalid("COORDINATE_TRANSFORMATION", t(json!([[0, 89]]), "EPSG:4326", "EPSG:3857"), "coordinates");
    assert_invalid("COORDINATE_TRANSFORMATION", t(json!([["a", 1]]), "EPSG:4326", "EPSG:3857"), "coordinates");
    assert_invalid("GENERATE_H3_CELLS", json!({"geometry": square(0.0, 0.0, 1.0), "resolution": 16}), "resolution");
    assert_invalid("GENERATE_H3_CELLS", json!({"geometry": square(0.0, 0.0, 10.0), "resolution": 15}), "resolution");
    assert_invalid("GENERATE_H3_CELLS", json!({"geometry": p, "resolution": 5}), "geometry");
    assert_invalid(
        "GENERATE_H3_CELLS",
        json!({"geometry": square(0.0, 0.0, 1.0), "resolution": 5, "mode": "all"}),
        "mode",
    );
}

#[test]
fn manifest_matches_the_original() {
    let m = atmo_builtins::geospatial_manifest();
    assert_eq!(m.max_concurrent_tasks, Some(6));
    assert_eq!(m.default_timeout, Some(std::time::Duration::from_secs(30)));
    let handlers = atmo_builtins::geospatial_handlers();
    assert_eq!(handlers.len(), m.actions.len());
    for a in &m.actions {
        assert!(a.retryable && handlers.get(&a.action_id).is_some(), "{}", a.action_id);
    }
    let params = |id: &str| -> Vec<String> {
        m.action(id).map(|a| a.parameters.iter().map(|p| p.name.clone()).collect()).unwrap_or_default()
    };
    assert_eq!(params("DISTANCE_CALCULATION"), ["point1", "point2", "method", "unit"]);
    assert_eq!(params("POLYGON_CONTAINS_POINT"), ["point", "polygon", "algorithm"]);
    assert_eq!(params("BUFFER_GEOMETRY"), ["geometry", "distance", "unit", "segments"]);
    assert_eq!(params("SPATIAL_INTERSECTION"), ["geometry1", "geometry2", "precision"]);
    assert_eq!(params("COORDINATE_TRANSFORMATION"), ["coordinates", "fromProjection", "toProjection"]);
    assert_eq!(params("GENERATE_H3_CELLS"), ["geometry", "resolution", "mode"]);
}
