//! `APPLY_FILTER`: blur, sharpen, grayscale, sepia, vintage, brightness, contrast.
//!
//! `intensity` (0–2, default 1) scales every filter the same way: 0 leaves the image as it
//! is, 1 is the filter's usual strength, 2 doubles it.
//!
//! | filter | what intensity `t` does |
//! | --- | --- |
//! | `blur` | Gaussian blur of σ = 2·t pixels |
//! | `sharpen` | unsharp mask (σ = 1 px) of amount t: `c + t·(c − blurred)` |
//! | `grayscale` | mixes each pixel with its Rec. 709 luma by min(t, 1) (from 1 up: fully gray) |
//! | `sepia` | mixes with the sepia tone matrix (CSS `sepia()`) by min(t, 1) |
//! | `vintage` | sepia by min(t/2, 1), faded blacks and whites (15·t % of the range), a vignette darkening the corners by 20·t % |
//! | `brightness` | multiplies each channel by 1 + 0.3·t (clipped at white) |
//! | `contrast` | scales each channel's distance from mid-gray by 1 + 0.5·t |
//!
//! Filters work on 8-bit RGBA in the sRGB values as stored; alpha is kept as it is.

use atmo_core::{CancellationToken, HandlerResult, TaskContext, TaskError};
use image::{DynamicImage, RgbaImage, imageops};
use serde_json::{Value, json};

use super::format::Output;
use super::input;
use super::output::finish;
use crate::params::{Params, invalid};

/// The `filter` values.
pub(super) const FILTERS: [&str; 7] = ["blur", "sharpen", "grayscale", "sepia", "vintage", "brightness", "contrast"];
/// Largest `intensity`.
pub(super) const MAX_INTENSITY: f64 = 2.0;

/// Rows between two cancellation checks in the per-pixel loops.
const ROWS_PER_CHECK: usize = 64;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let filter = p.str("filter")?;
    if !FILTERS.contains(&filter) {
        return Err(invalid("filter", format_args!("must be one of {}, got `{filter}`", FILTERS.join(", "))));
    }
    let intensity = match params.get("intensity").filter(|v| !v.is_null()) {
        None => 1.0,
        Some(_) => p.f64("intensity")?,
    };
    if !(0.0..=MAX_INTENSITY).contains(&intensity) {
        return Err(invalid("intensity", format_args!("must be between 0 and {MAX_INTENSITY}, got {intensity}")));
    }
    let requested = Output::requested(p)?;
    let input = input::read(p)?;
    let out = requested.for_input(input.source.format);
    let source = input.source;
    ctx.cancel.check()?;
    let mut rgba = input.image.into_rgba8();
    apply(&mut rgba, filter, intensity as f32, &ctx.cancel)?;
    let image = DynamicImage::ImageRgba8(rgba);
    finish(ctx, "filter", &source, &image, out, json!({ "filter": filter, "intensity": intensity }))
}

/// Applies `filter` at intensity `t` in place.
fn apply(img: &mut RgbaImage, filter: &str, t: f32, cancel: &CancellationToken) -> Result<(), TaskError> {
    if t == 0.0 {
        return Ok(());
    }
    match filter {
        "blur" => {
            *img = imageops::blur(img, 2.0 * t);
            Ok(())
        }
        "sharpen" => {
            let blurred = imageops::blur(img, 1.0);
            cancel.check()?;
            let width = img.width() as usize;
            for_rows(img, cancel, |y, row| {
                let base = y * width * 4;
                for (x, px) in row.chunks_exact_mut(4).enumerate() {
                    let b = &blurred.as_raw()[base + x * 4..base + x * 4 + 3];
                    for (c, &bc) in px[..3].iter_mut().zip(b) {
                        let v = f32::from(*c);
                        *c = to_u8(v + t * (v - f32::from(bc)));
                    }
                }
            })
        }
        "grayscale" => map_rgb(img, cancel, |[r, g, b], _| {
            let l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
            mix([r, g, b], [l, l, l], t.min(1.0))
        }),
        "sepia" => map_rgb(img, cancel, |rgb, _| mix(rgb, sepia(rgb), t.min(1.0))),
        "vintage" => {
            let (w, h) = (img.width() as f32, img.height() as f32);
            let (cx, cy) = ((w - 1.0) / 2.0, (h - 1.0) / 2.0);
            // Squared distance from the centre, 1 in the corners.
            let reach = (cx * cx + cy * cy).max(1.0);
            let fade = 0.15 * t;
            let vignette = 0.2 * t;
            map_rgb(img, cancel, |rgb, (x, y)| {
                let toned = mix(rgb, sepia(rgb), (t / 2.0).min(1.0));
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                let dark = 1.0 - vignette * (dx * dx + dy * dy) / reach;
                toned.map(|c| (c * (1.0 - fade) + 127.5 * fade) * dark)
            })
        }
        "brightness" => {
            let gain = 1.0 + 0.3 * t;
            map_rgb(img, cancel, |rgb, _| rgb.map(|c| c * gain))
        }
        "contrast" => {
            let k = 1.0 + 0.5 * t;
            map_rgb(img, cancel, |rgb, _| rgb.map(|c| (c - 127.5) * k + 127.5))
        }
        other => Err(invalid("filter", format_args!("must be one of {}, got `{other}`", FILTERS.join(", ")))),
    }
}

/// The sepia tone of a pixel (the matrix of CSS `sepia(1)`).
fn sepia([r, g, b]: [f32; 3]) -> [f32; 3] {
    [0.393 * r + 0.769 * g + 0.189 * b, 0.349 * r + 0.686 * g + 0.168 * b, 0.272 * r + 0.534 * g + 0.131 * b]
}

/// `from` moved towards `to` by `amount` (0–1); exactly `to` at 1.
fn mix(from: [f32; 3], to: [f32; 3], amount: f32) -> [f32; 3] {
    if amount >= 1.0 {
        return to;
    }
    [0, 1, 2].map(|i| from[i] + amount * (to[i] - from[i]))
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Replaces the RGB of every pixel by `f(rgb, (x, y))`, alpha untouched.
fn map_rgb(
    img: &mut RgbaImage,
    cancel: &CancellationToken,
    f: impl Fn([f32; 3], (usize, usize)) -> [f32; 3],
) -> Result<(), TaskError> {
    for_rows(img, cancel, |y, row| {
        for (x, px) in row.chunks_exact_mut(4).enumerate() {
            let out = f([f32::from(px[0]), f32::from(px[1]), f32::from(px[2])], (x, y));
            px[0] = to_u8(out[0]);
            px[1] = to_u8(out[1]);
            px[2] = to_u8(out[2]);
        }
    })
}

/// Runs `f(y, row)` on every row of RGBA bytes, checking for cancellation every few rows.
fn for_rows(
    img: &mut RgbaImage,
    cancel: &CancellationToken,
    mut f: impl FnMut(usize, &mut [u8]),
) -> Result<(), TaskError> {
    let stride = img.width() as usize * 4;
    for (y, row) in img.chunks_exact_mut(stride).enumerate() {
        if y % ROWS_PER_CHECK == 0 {
            cancel.check()?;
        }
        f(y, row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixing_reaches_the_target_exactly() {
        assert_eq!(mix([10.0, 20.0, 30.0], [1.0, 2.0, 3.0], 1.0), [1.0, 2.0, 3.0]);
        assert_eq!(mix([10.0, 20.0, 30.0], [0.0, 0.0, 0.0], 0.5), [5.0, 10.0, 15.0]);
        assert_eq!(to_u8(300.0), 255);
        assert_eq!(to_u8(-4.0), 0);
    }
}
