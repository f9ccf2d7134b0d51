//! `CONVERT_FORMAT`: the same pixels in another format.

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};

use super::format::Output;
use super::input;
use super::output::finish;
use crate::params::Params;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    // `format` is required here; `Output` treats it as optional elsewhere.
    p.str("format")?;
    let requested = Output::requested(p)?;
    let input = input::read(p)?;
    let out = requested.for_input(input.source.format);
    finish(ctx, "convert", &input.source, &input.image, out, json!({}))
}
