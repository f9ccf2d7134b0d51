//! `GENERATE_H3_CELLS`: the H3 cells of a polygon at a resolution, by `h3o`'s tiler.
//!
//! Modes, from fewest cells to most:
//! - `contained`: cells lying entirely inside the polygon;
//! - `intersecting`: cells whose area meets the polygon's, even partially (h3o documents that a
//!   polygon lying inside one cell without touching its edges may give no cell);
//! - `covering`: as `intersecting`, but always including the cell holding such a polygon, so
//!   that the cells always cover it.
//!
//! h3o's upper bound of the cell count is checked against [`MAX_H3_CELLS`] before any cell is
//! computed. Cells are returned as sorted, distinct hexadecimal indexes.

use atmo_core::{HandlerResult, TaskContext};
use h3o::Resolution;
use h3o::geom::{ContainmentMode, TilerBuilder};
use serde_json::{Value, json};

use super::MAX_H3_CELLS;
use super::input::polygons;
use crate::params::{Params, invalid};

/// The coverage modes.
pub(super) const MODES: [&str; 3] = ["intersecting", "contained", "covering"];

/// Cells between two cancellation checks.
const CHUNK: usize = 1 << 12;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let shapes = polygons(p, "geometry")?;
    let level = p.u64("resolution", 0, 15)?;
    let resolution = u8::try_from(level)
        .ok()
        .and_then(|r| Resolution::try_from(r).ok())
        .ok_or_else(|| invalid("resolution", "must be between 0 and 15"))?;
    let mode = p.choice("mode", "intersecting", &MODES)?;
    let containment = match mode {
        "contained" => ContainmentMode::ContainsBoundary,
        "covering" => ContainmentMode::Covers,
        _ => ContainmentMode::IntersectsBoundary,
    };

    let mut tiler = TilerBuilder::new(resolution).containment_mode(containment).build();
    tiler.add_batch(shapes.0).map_err(|e| invalid("geometry", format_args!("is not a valid polygon: {e}")))?;
    let bound = tiler.coverage_size_hint();
    if bound > MAX_H3_CELLS {
        return Err(invalid(
            "resolution",
            format_args!(
                "{level} could give up to {bound} cells for this geometry; at most {MAX_H3_CELLS} are allowed, use a coarser resolution"
            ),
        ));
    }
    ctx.cancel.check()?;
    let mut cells = Vec::new();
    for (i, cell) in tiler.into_coverage().enumerate() {
        if i % CHUNK == 0 {
            ctx.cancel.check()?;
        }
        cells.push(u64::from(cell));
    }
    cells.sort_unstable();
    cells.dedup();
    let cells: Vec<String> = cells.into_iter().map(|c| format!("{c:x}")).collect();
    Ok(json!({
        "type": "H3_RESULT",
        "resolution": level,
        "mode": mode,
        "count": cells.len(),
        "cells": cells,
    }))
}
