//! `COORDINATE_TRANSFORMATION` between WGS84 (EPSG:4326, `[lng, lat]`), Web Mercator
//! (EPSG:3857) and the UTM zones on WGS84 (EPSG:32601–32660 north, EPSG:32701–32760 south),
//! always through WGS84.
//!
//! Web Mercator is the spherical formula on the WGS84 semi-major axis, defined up to latitude
//! ±85.05112878°. UTM uses Krüger's series to fourth order in the third flattening n (Karney
//! 2011), accurate to well under a millimetre within a zone; positions are accepted from 80° S
//! to 84° N and up to 20° of longitude from the zone's central meridian.

use std::f64::consts::FRAC_PI_4;

use atmo_core::{HandlerResult, TaskContext, TaskError};
use serde_json::{Value, json};

use super::MAX_COORDINATES;
use crate::params::{Params, invalid};

/// WGS84 semi-major axis, meters.
const A: f64 = 6_378_137.0;
/// WGS84 flattening.
const F: f64 = 1.0 / 298.257_223_563;
/// Latitude limit of Web Mercator, degrees.
const MERCATOR_MAX_LAT: f64 = 85.051_128_779_806_6;
/// UTM scale on the central meridian.
const K0: f64 = 0.9996;
/// UTM false easting, meters.
const FALSE_EASTING: f64 = 500_000.0;
/// UTM false northing of the southern zones, meters.
const FALSE_NORTHING_SOUTH: f64 = 10_000_000.0;
/// Coordinates between two cancellation checks.
const CHUNK: usize = 1 << 14;

/// A supported coordinate reference system.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Crs {
    Wgs84,
    WebMercator,
    Utm { zone: u8, north: bool },
}

impl Crs {
    fn parse(name: &str, s: &str) -> Result<Self, TaskError> {
        let upper = s.trim().to_ascii_uppercase();
        let code = upper.strip_prefix("EPSG:").unwrap_or(&upper);
        let utm = |prefix: &str| {
            code.strip_prefix(prefix)
                .filter(|z| z.len() == 2)
                .and_then(|z| z.parse::<u8>().ok())
                .filter(|z| (1..=60).contains(z))
        };
        if let Some(zone) = utm("326") {
            return Ok(Crs::Utm { zone, north: true });
        }
        if let Some(zone) = utm("327") {
            return Ok(Crs::Utm { zone, north: false });
        }
        match code {
            "4326" | "WGS84" => Ok(Crs::Wgs84),
            "3857" | "900913" | "WEBMERCATOR" => Ok(Crs::WebMercator),
            _ => Err(invalid(
                name,
                format_args!("`{s}` is not supported; use EPSG:4326, EPSG:3857, EPSG:32601–32660 or EPSG:32701–32760"),
            )),
        }
    }

    fn code(self) -> String {
        match self {
            Crs::Wgs84 => "EPSG:4326".to_owned(),
            Crs::WebMercator => "EPSG:3857".to_owned(),
            Crs::Utm { zone, north } => format!("EPSG:32{}{zone:02}", if north { 6 } else { 7 }),
        }
    }

    /// From this system to (lng, lat) degrees.
    fn unproject(self, [x, y]: [f64; 2]) -> Result<[f64; 2], String> {
        match self {
            Crs::Wgs84 => check_lng_lat(x, y).map(|()| [x, y]),
            Crs::WebMercator => {
                let max = A * std::f64::consts::PI;
                if x.abs() > max * (1.0 + 1e-12) || y.abs() > max * (1.0 + 1e-12) {
                    return Err(format!("[{x}, {y}] is outside the Web Mercator square of ±{max} m"));
                }
                Ok([(x / A).to_degrees(), (2.0 * (y / A).exp().atan() - 2.0 * FRAC_PI_4).to_degrees()])
            }
            Crs::Utm { zone, north } => utm_inverse(zone, north, x, y),
        }
    }

    /// From (lng, lat) degrees to this system.
    fn project(self, [lng, lat]: [f64; 2]) -> Result<[f64; 2], String> {
        match self {
            Crs::Wgs84 => Ok([lng, lat]),
            Crs::WebMercator => {
                if lat.abs() > MERCATOR_MAX_LAT {
                    return Err(format!("latitude {lat} is beyond Web Mercator's ±{MERCATOR_MAX_LAT}"));
                }
                Ok([A * lng.to_radians(), A * (FRAC_PI_4 + lat.to_radians() / 2.0).tan().ln()])
            }
            Crs::Utm { zone, north } => utm_forward(zone, north, lng, lat),
        }
    }
}

fn check_lng_lat(lng: f64, lat: f64) -> Result<(), String> {
    if !(-180.0..=180.0).contains(&lng) || !(-90.0..=90.0).contains(&lat) {
        return Err(format!("[{lng}, {lat}] is not a [lng, lat] position in degrees"));
    }
    Ok(())
}

/// Coefficients of Krüger's series for WGS84: A (rectifying radius), α (forward), β (inverse),
/// δ (conformal to geodetic latitude).
struct Kruger {
    big_a: f64,
    alpha: [f64; 4],
    beta: [f64; 4],
    delta: [f64; 4],
}

fn kruger() -> Kruger {
    let n = F / (2.0 - F);
    let (n2, n3, n4) = (n * n, n * n * n, n * n * n * n);
    Kruger {
        big_a: A / (1.0 + n) * (1.0 + n2 / 4.0 + n4 / 64.0),
        alpha: [
            n / 2.0 - 2.0 * n2 / 3.0 + 5.0 * n3 / 16.0 + 41.0 * n4 / 180.0,
            13.0 * n2 / 48.0 - 3.0 * n3 / 5.0 + 557.0 * n4 / 1440.0,
            61.0 * n3 / 240.0 - 103.0 * n4 / 140.0,
            49561.0 * n4 / 161_280.0,
        ],
        beta: [
            n / 2.0 - 2.0 * n2 / 3.0 + 37.0 * n3 / 96.0 - n4 / 360.0,
            n2 / 48.0 + n3 / 15.0 - 437.0 * n4 / 1440.0,
            17.0 * n3 / 480.0 - 37.0 * n4 / 840.0,
            4397.0 * n4 / 161_280.0,
        ],
        delta: [
            2.0 * n - 2.0 * n2 / 3.0 - 2.0 * n3 + 116.0 * n4 / 45.0,
            7.0 * n2 / 3.0 - 8.0 * n3 / 5.0 - 227.0 * n4 / 45.0,
            56.0 * n3 / 15.0 - 136.0 * n4 / 35.0,
            4279.0 * n4 / 630.0,
        ],
    }
}

fn central_meridian(zone: u8) -> f64 {
    f64::from(zone) * 6.0 - 183.0
}

fn utm_forward(zone: u8, north: bool, lng: f64, lat: f64) -> Result<[f64; 2], String> {
    if !(-80.0..=84.0).contains(&lat) {
        return Err(format!("latitude {lat} is outside UTM's 80° S to 84° N"));
    }
    let dl = lng - central_meridian(zone);
    if dl.abs() > 20.0 {
        return Err(format!("longitude {lng} is more than 20° from zone {zone}'s central meridian"));
    }
    let k = kruger();
    let n = F / (2.0 - F);
    let c = 2.0 * n.sqrt() / (1.0 + n);
    let (phi, lam) = (lat.to_radians(), dl.to_radians());
    let t = (phi.sin().atanh() - c * (c * phi.sin()).atanh()).sinh();
    let xi = t.atan2(lam.cos());
    let eta = (lam.sin() / (1.0 + t * t).sqrt()).atanh();
    let (mut e, mut nn) = (eta, xi);
    for (j, a) in k.alpha.iter().enumerate() {
        let m = 2.0 * (j + 1) as f64;
        e += a * (m * xi).cos() * (m * eta).sinh();
        nn += a * (m * xi).sin() * (m * eta).cosh();
    }
    let northing = K0 * k.big_a * nn + if north { 0.0 } else { FALSE_NORTHING_SOUTH };
    Ok([FALSE_EASTING + K0 * k.big_a * e, northing])
}

fn utm_inverse(zone: u8, north: bool, easting: f64, northing: f64) -> Result<[f64; 2], String> {
    if !(-1_500_000.0..=2_500_000.0).contains(&easting) || !(-10_000_000.0..=20_000_000.0).contains(&northing) {
        return Err(format!("[{easting}, {northing}] is not a UTM position"));
    }
    let k = kruger();
    let xi = (northing - if north { 0.0 } else { FALSE_NORTHING_SOUTH }) / (K0 * k.big_a);
    let eta = (easting - FALSE_EASTING) / (K0 * k.big_a);
    let (mut xi1, mut eta1) = (xi, eta);
    for (j, b) in k.beta.iter().enumerate() {
        let m = 2.0 * (j + 1) as f64;
        xi1 -= b * (m * xi).sin() * (m * eta).cosh();
        eta1 -= b * (m * xi).cos() * (m * eta).sinh();
    }
    let chi = (xi1.sin() / eta1.cosh()).clamp(-1.0, 1.0).asin();
    let mut phi = chi;
    for (j, d) in k.delta.iter().enumerate() {
        phi += d * (2.0 * (j + 1) as f64 * chi).sin();
    }
    let lng = central_meridian(zone) + eta1.sinh().atan2(xi1.cos()).to_degrees();
    let lat = phi.to_degrees();
    check_lng_lat(lng, lat)?;
    Ok([lng, lat])
}

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let items =
        p.value("coordinates")?.as_array().ok_or_else(|| invalid("coordinates", "must be an array of [x, y] pairs"))?;
    if items.is_empty() {
        return Err(invalid("coordinates", "must not be empty"));
    }
    if items.len() > MAX_COORDINATES {
        return Err(invalid(
            "coordinates",
            format_args!("has {} items; at most {MAX_COORDINATES} are allowed", items.len()),
        ));
    }
    let from = Crs::parse("fromProjection", p.str("fromProjection")?)?;
    let to = Crs::parse("toProjection", p.str("toProjection")?)?;

    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if i % CHUNK == 0 {
            ctx.cancel.check()?;
        }
        let pair = item.as_array().filter(|a| a.len() == 2 || a.len() == 3);
        let xy = pair
            .and_then(|a| Some([a.first()?.as_f64()?, a.get(1)?.as_f64()?]))
            .filter(|[x, y]| x.is_finite() && y.is_finite());
        let Some(xy) = xy else {
            return Err(invalid("coordinates", format_args!("item {i} must be a pair [x, y] of finite numbers")));
        };
        let converted = from.unproject(xy).and_then(|ll| to.project(ll));
        let [x, y] = converted.map_err(|e| invalid("coordinates", format_args!("item {i}: {e}")))?;
        out.push(json!([x, y]));
    }
    Ok(json!({
        "type": "TRANSFORMATION_RESULT",
        "coordinates": out,
        "fromProjection": from.code(),
        "toProjection": to.code(),
        "count": items.len(),
    }))
}
