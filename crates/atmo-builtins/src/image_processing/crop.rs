//! `CROP_IMAGE`: the rectangle at (`x`, `y`) of `width`×`height` pixels, which must lie
//! inside the image.

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};

use super::MAX_DIMENSION;
use super::format::Output;
use super::input;
use super::output::finish;
use crate::params::{Params, invalid};

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let max = u64::from(MAX_DIMENSION);
    let x = p.u64("x", 0, max - 1)? as u32;
    let y = p.u64("y", 0, max - 1)? as u32;
    let width = p.u64("width", 1, max)? as u32;
    let height = p.u64("height", 1, max)? as u32;
    let requested = Output::requested(p)?;
    let input = input::read(p)?;
    let out = requested.for_input(input.source.format);
    let (w, h) = (input.image.width(), input.image.height());
    if x >= w {
        return Err(invalid("x", format_args!("is {x} but the image is only {w} pixels wide")));
    }
    if y >= h {
        return Err(invalid("y", format_args!("is {y} but the image is only {h} pixels high")));
    }
    if u64::from(x) + u64::from(width) > u64::from(w) {
        return Err(invalid(
            "width",
            format_args!("is {width}, but from x = {x} at most {} columns remain in the {w}-pixel-wide image", w - x),
        ));
    }
    if u64::from(y) + u64::from(height) > u64::from(h) {
        return Err(invalid(
            "height",
            format_args!("is {height}, but from y = {y} at most {} rows remain in the {h}-pixel-high image", h - y),
        ));
    }
    ctx.cancel.check()?;
    let cropped = input.image.crop_imm(x, y, width, height);
    finish(
        ctx,
        "crop",
        &input.source,
        &cropped,
        out,
        json!({ "crop": { "x": x, "y": y, "width": width, "height": height } }),
    )
}
