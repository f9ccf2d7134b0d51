//! Number parameters with ranges, on top of [`Params`].

use atmo_core::TaskError;

use crate::params::{Params, invalid};

/// A required finite number in `[min, max]`.
pub(super) fn number(p: Params<'_>, name: &str, min: f64, max: f64) -> Result<f64, TaskError> {
    in_range(name, p.f64(name)?, min, max)
}

/// A required finite number in `(0, max]`.
pub(super) fn positive(p: Params<'_>, name: &str, max: f64) -> Result<f64, TaskError> {
    let x = p.f64(name)?;
    if x > 0.0 && x <= max {
        Ok(x)
    } else {
        Err(invalid(name, format_args!("must be greater than 0 and at most {max}, got {x}")))
    }
}

/// An optional finite number in `[min, max]` with a default.
pub(super) fn number_or(p: Params<'_>, name: &str, default: f64, min: f64, max: f64) -> Result<f64, TaskError> {
    match p.0.get(name).filter(|v| !v.is_null()) {
        None => Ok(default),
        Some(_) => number(p, name, min, max),
    }
}

fn in_range(name: &str, x: f64, min: f64, max: f64) -> Result<f64, TaskError> {
    if (min..=max).contains(&x) {
        Ok(x)
    } else {
        Err(invalid(name, format_args!("must be between {min} and {max}, got {x}")))
    }
}

/// Whether a parameter is present (and not null).
pub(super) fn present(p: Params<'_>, name: &str) -> bool {
    p.0.get(name).is_some_and(|v| !v.is_null())
}
