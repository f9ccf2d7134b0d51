//! `SOLVE_LINEAR_SYSTEM`: Gaussian elimination with partial pivoting, LU and QR (nalgebra), and
//! Gauss–Seidel iteration.

use atmo_core::{CancellationToken, HandlerResult, TaskContext, TaskError};
use nalgebra::{DMatrix, DVector};
use serde_json::{Value, json};

use super::MAX_MATRIX_DIM;
use crate::params::{Matrix, Params, invalid};

/// The `method` values.
pub(super) const METHODS: [&str; 4] = ["gaussian", "lu", "qr", "iterative"];

/// Gauss–Seidel stops once the relative residual is below this.
const TOLERANCE: f64 = 1e-13;
/// Gauss–Seidel gives up after this many sweeps.
const MAX_SWEEPS: usize = 10_000;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let a = p.matrix("coefficientMatrix", MAX_MATRIX_DIM)?;
    let b = p.vector("constantVector", MAX_MATRIX_DIM)?;
    let method = p.choice("method", "gaussian", &METHODS)?;
    if a.rows != a.cols {
        return Err(invalid("coefficientMatrix", format_args!("must be square, got {}×{}", a.rows, a.cols)));
    }
    if b.len() != a.rows {
        return Err(invalid(
            "constantVector",
            format_args!("has {} items but coefficientMatrix has {} rows", b.len(), a.rows),
        ));
    }
    let mut iterations = None;
    let x = match method {
        "lu" => {
            ctx.cancel.check()?;
            to_nalgebra(&a).lu().solve(&DVector::from_column_slice(&b)).map(|x| x.as_slice().to_vec())
        }
        "qr" => {
            ctx.cancel.check()?;
            to_nalgebra(&a).qr().solve(&DVector::from_column_slice(&b)).map(|x| x.as_slice().to_vec())
        }
        "iterative" => {
            let (x, sweeps) = gauss_seidel(&a, &b, &ctx.cancel)?;
            iterations = Some(sweeps);
            Some(x)
        }
        _ => gaussian(a.clone(), b.clone(), &ctx.cancel)?,
    };
    let x = x.ok_or_else(|| invalid("coefficientMatrix", "is singular: the system has no unique solution"))?;
    if x.iter().any(|v| !v.is_finite()) {
        return Err(invalid("coefficientMatrix", "is singular or too ill-conditioned to solve"));
    }
    Ok(json!({
        "type": "LINEAR_SYSTEM_RESULT",
        "solution": x,
        "method": method,
        "residualNorm": residual(&a, &x, &b),
        "iterations": iterations,
    }))
}

fn to_nalgebra(a: &Matrix) -> DMatrix<f64> {
    DMatrix::from_row_slice(a.rows, a.cols, &a.data)
}

/// `‖Ax − b‖₂`.
pub(super) fn residual(a: &Matrix, x: &[f64], b: &[f64]) -> f64 {
    (0..a.rows)
        .map(|i| {
            let ax: f64 = (0..a.cols).map(|j| a.at(i, j) * x[j]).sum();
            (ax - b[i]).powi(2)
        })
        .sum::<f64>()
        .sqrt()
}

/// Gaussian elimination with partial pivoting; `None` when the matrix is singular.
fn gaussian(mut a: Matrix, mut b: Vec<f64>, cancel: &CancellationToken) -> Result<Option<Vec<f64>>, TaskError> {
    let n = a.rows;
    let scale = a.data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        return Ok(None);
    }
    for col in 0..n {
        cancel.check()?;
        let pivot = (col..n).max_by(|&i, &j| a.at(i, col).abs().total_cmp(&a.at(j, col).abs())).unwrap_or(col);
        if a.at(pivot, col).abs() <= f64::EPSILON * scale * n as f64 {
            return Ok(None);
        }
        if pivot != col {
            for j in 0..n {
                a.data.swap(col * n + j, pivot * n + j);
            }
            b.swap(col, pivot);
        }
        let p = a.at(col, col);
        for row in col + 1..n {
            let factor = a.at(row, col) / p;
            if factor == 0.0 {
                continue;
            }
            for j in col..n {
                a.data[row * n + j] -= factor * a.data[col * n + j];
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|j| a.at(i, j) * x[j]).sum();
        x[i] = (b[i] - s) / a.at(i, i);
    }
    Ok(Some(x))
}

/// Gauss–Seidel; converges for diagonally dominant or symmetric positive definite matrices.
fn gauss_seidel(a: &Matrix, b: &[f64], cancel: &CancellationToken) -> Result<(Vec<f64>, usize), TaskError> {
    let n = a.rows;
    if let Some(i) = (0..n).find(|&i| a.at(i, i) == 0.0) {
        return Err(invalid(
            "coefficientMatrix",
            format_args!("has a zero on the diagonal (row {i}); the iterative method needs a non-zero diagonal"),
        ));
    }
    let b_norm = b.iter().map(|v| v * v).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    let mut x = vec![0.0; n];
    for sweep in 1..=MAX_SWEEPS {
        cancel.check()?;
        for i in 0..n {
            let s: f64 = (0..n).filter(|&j| j != i).map(|j| a.at(i, j) * x[j]).sum();
            x[i] = (b[i] - s) / a.at(i, i);
        }
        let r = residual(a, &x, b);
        if !r.is_finite() {
            break;
        }
        if r / b_norm < TOLERANCE {
            return Ok((x, sweep));
        }
    }
    Err(TaskError::fatal(
        "NOT_CONVERGED",
        format!(
            "the iterative method did not converge within {MAX_SWEEPS} sweeps; it needs a diagonally dominant or \
             symmetric positive definite matrix (use gaussian, lu or qr otherwise)"
        ),
    )
    .with_details(json!({ "parameter": "coefficientMatrix" })))
}
