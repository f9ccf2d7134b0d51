//! `GAME_OF_LIFE`: Conway's rules (birth on 3 neighbours, survival on 2 or 3) on a bounded grid,
//! toroidal when `wrap` is set and surrounded by dead cells otherwise.

use atmo_core::{HandlerResult, TaskContext, TaskError};
use serde_json::{Value, json};

use super::input::present;
use super::rng::{Rng, seed};
use super::{MAX_GENERATIONS, MAX_GRID_DIM, MAX_LIFE_WORK, MAX_OUTPUT_CELLS};
use crate::params::{Params, invalid};

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let width = p.u64("width", 1, MAX_GRID_DIM)? as usize;
    let height = p.u64("height", 1, MAX_GRID_DIM)? as usize;
    let generations = p.opt_u64("generations", 0, MAX_GENERATIONS)?.unwrap_or(100);
    if ((width * height) as u64).saturating_mul(generations) > MAX_LIFE_WORK {
        return Err(invalid("generations", format_args!("× width × height must be at most {MAX_LIFE_WORK}")));
    }
    let wrap = p.bool_or("wrap", true)?;
    let seed = seed(ctx, p)?;
    let mut grid = if present(p, "cells") {
        cells(p, width, height)?
    } else if present(p, "density") {
        let density = p.f64("density")?;
        if !(0.0..=1.0).contains(&density) {
            return Err(invalid("density", format_args!("must be between 0 and 1, got {density}")));
        }
        let mut rng = Rng::new(seed);
        (0..width * height).map(|_| rng.unit() < density).collect()
    } else {
        return Err(invalid("cells", "is required unless `density` is given"));
    };

    let mut next = vec![false; width * height];
    let mut population = Vec::with_capacity(generations as usize + 1);
    population.push(grid.iter().filter(|&&c| c).count());
    for _ in 0..generations {
        ctx.cancel.check()?;
        step(&grid, &mut next, width, height, wrap);
        std::mem::swap(&mut grid, &mut next);
        population.push(grid.iter().filter(|&&c| c).count());
    }
    let alive: Vec<Value> = grid
        .iter()
        .enumerate()
        .filter(|(_, c)| **c)
        .take(MAX_OUTPUT_CELLS)
        .map(|(i, _)| json!([i % width, i / width]))
        .collect();
    let final_population = population.last().copied().unwrap_or(0);
    Ok(json!({
        "type": "GAME_OF_LIFE_RESULT",
        "width": width,
        "height": height,
        "generations": generations,
        "wrap": wrap,
        "aliveCells": alive,
        "aliveCellsTruncated": final_population > MAX_OUTPUT_CELLS,
        "finalPopulation": final_population,
        "population": population,
        "seed": seed,
    }))
}

fn cells(p: Params<'_>, width: usize, height: usize) -> Result<Vec<bool>, TaskError> {
    const NAME: &str = "cells";
    let items = p.value(NAME)?.as_array().ok_or_else(|| invalid(NAME, "must be an array of [x, y] pairs"))?;
    if items.len() > width * height {
        return Err(invalid(NAME, format_args!("has {} items but the grid has {} cells", items.len(), width * height)));
    }
    let mut grid = vec![false; width * height];
    for (i, item) in items.iter().enumerate() {
        let xy = item
            .as_array()
            .filter(|a| a.len() == 2)
            .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
            .ok_or_else(|| invalid(NAME, format_args!("item {i} must be [x, y] with non-negative integers")))?;
        let (x, y) = (xy.0 as usize, xy.1 as usize);
        if x >= width || y >= height {
            return Err(invalid(NAME, format_args!("item {i} [{x}, {y}] is outside the {width}×{height} grid")));
        }
        grid[y * width + x] = true;
    }
    Ok(grid)
}

fn step(grid: &[bool], next: &mut [bool], width: usize, height: usize, wrap: bool) {
    let (w, h) = (width as isize, height as isize);
    for y in 0..h {
        for x in 0..w {
            let mut n = 0;
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    if dx == 0 && dy == 0 {
                        continue;
                    }
                    let (mut nx, mut ny) = (x + dx, y + dy);
                    if wrap {
                        (nx, ny) = (nx.rem_euclid(w), ny.rem_euclid(h));
                    } else if !(0..w).contains(&nx) || !(0..h).contains(&ny) {
                        // Beyond the edge everything is dead.
                        continue;
                    }
                    n += usize::from(grid[(ny * w + nx) as usize]);
                }
            }
            let i = (y * w + x) as usize;
            next[i] = n == 3 || (grid[i] && n == 2);
        }
    }
}
