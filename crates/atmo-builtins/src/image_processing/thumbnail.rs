//! `THUMBNAIL`: a small preview that fits in `size`×`size`, aspect ratio kept, never enlarged.
//!
//! Uses `image`'s thumbnail sampling (an area average), much faster than a Lanczos resize
//! for large reductions and free of aliasing.

use std::borrow::Cow;

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};

use super::format::Output;
use super::input;
use super::output::finish;
use super::resize::fit;
use crate::params::Params;

/// Largest `size`.
pub(super) const MAX_SIZE: u64 = 1024;
/// `size` when none is given.
pub(super) const DEFAULT_SIZE: u64 = 128;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let size = p.opt_u64("size", 1, MAX_SIZE)?.unwrap_or(DEFAULT_SIZE) as u32;
    let requested = Output::requested(p)?;
    let input = input::read(p)?;
    let out = requested.for_input(input.source.format);
    ctx.cancel.check()?;
    let (w, h) = (input.image.width(), input.image.height());
    let scaled = w > size || h > size;
    let thumb = if scaled {
        let (tw, th) = fit(w, h, size, size);
        Cow::Owned(input.image.thumbnail_exact(tw, th))
    } else {
        Cow::Borrowed(&input.image)
    };
    finish(ctx, "thumbnail", &input.source, &thumb, out, json!({ "size": size, "scaled": scaled }))
}
