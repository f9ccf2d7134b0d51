//! `RESIZE_IMAGE`: scale to a size, fitting inside it (aspect ratio kept) or stretching to it.

use atmo_core::{HandlerResult, TaskContext};
use image::imageops::FilterType;
use serde_json::{Value, json};

use super::MAX_DIMENSION;
use super::format::Output;
use super::input;
use super::output::finish;
use crate::params::Params;

/// The `resampling` values, from fastest to sharpest.
pub(super) const RESAMPLING: [&str; 5] = ["nearest", "triangle", "catmullrom", "gaussian", "lanczos3"];

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let width = p.u64("width", 1, u64::from(MAX_DIMENSION))? as u32;
    let height = p.u64("height", 1, u64::from(MAX_DIMENSION))? as u32;
    let preserve = p.bool_or("preserveAspectRatio", true)?;
    let resampling = p.choice("resampling", "lanczos3", &RESAMPLING)?;
    let requested = Output::requested(p)?;
    let input = input::read(p)?;
    let out = requested.for_input(input.source.format);
    ctx.cancel.check()?;
    let (w, h) = if preserve { fit(input.image.width(), input.image.height(), width, height) } else { (width, height) };
    let resized = input.image.resize_exact(w, h, filter(resampling));
    finish(
        ctx,
        "resize",
        &input.source,
        &resized,
        out,
        json!({ "preserveAspectRatio": preserve, "resampling": resampling, "requestedWidth": width, "requestedHeight": height }),
    )
}

/// The largest size with the aspect ratio of `w`×`h` that fits in `max_w`×`max_h` (at least
/// 1×1).
pub(super) fn fit(w: u32, h: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    let scale = (f64::from(max_w) / f64::from(w)).min(f64::from(max_h) / f64::from(h));
    let side = |x: u32, max: u32| ((f64::from(x) * scale).round() as u32).clamp(1, max);
    (side(w, max_w), side(h, max_h))
}

/// `image`'s resampling filter for a `resampling` value.
pub(super) fn filter(name: &str) -> FilterType {
    match name {
        "nearest" => FilterType::Nearest,
        "triangle" => FilterType::Triangle,
        "catmullrom" => FilterType::CatmullRom,
        "gaussian" => FilterType::Gaussian,
        _ => FilterType::Lanczos3,
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fitting_keeps_the_aspect_ratio() {
        assert_eq!(fit(400, 200, 100, 100), (100, 50));
        assert_eq!(fit(200, 400, 100, 100), (50, 100));
        assert_eq!(fit(10, 10, 30, 20), (20, 20));
        assert_eq!(fit(8192, 1, 100, 100), (100, 1));
    }
}
