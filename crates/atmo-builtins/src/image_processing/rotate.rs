//! `ROTATE_IMAGE`: quarter turns clockwise, then an optional mirror flip. Lossless on the
//! pixels (no resampling).

use std::borrow::Cow;

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};

use super::format::Output;
use super::input;
use super::output::finish;
use crate::params::{Params, invalid};

/// The `angle` values, in degrees clockwise.
pub(super) const ANGLES: [u64; 4] = [0, 90, 180, 270];
/// The `flip` values, applied after the rotation.
pub(super) const FLIPS: [&str; 3] = ["none", "horizontal", "vertical"];

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let angle = p.opt_u64("angle", 0, 270)?.unwrap_or(90);
    if !ANGLES.contains(&angle) {
        return Err(invalid("angle", format_args!("must be 0, 90, 180 or 270 (degrees clockwise), got {angle}")));
    }
    let flip = p.choice("flip", "none", &FLIPS)?;
    let requested = Output::requested(p)?;
    let input = input::read(p)?;
    let out = requested.for_input(input.source.format);
    ctx.cancel.check()?;
    let rotated = match angle {
        90 => Cow::Owned(input.image.rotate90()),
        180 => Cow::Owned(input.image.rotate180()),
        270 => Cow::Owned(input.image.rotate270()),
        _ => Cow::Borrowed(&input.image),
    };
    ctx.cancel.check()?;
    let result = match flip {
        "horizontal" => Cow::Owned(rotated.fliph()),
        "vertical" => Cow::Owned(rotated.flipv()),
        _ => rotated,
    };
    finish(ctx, "rotate", &input.source, &result, out, json!({ "angle": angle, "flip": flip }))
}
