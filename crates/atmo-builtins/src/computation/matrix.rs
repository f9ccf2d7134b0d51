//! `MATRIX_MULTIPLY`: standard, Strassen and parallel products.

use atmo_core::{CancellationToken, HandlerResult, TaskContext, TaskError};
use serde_json::{Value, json};

use super::MAX_MATRIX_DIM;
use crate::params::{Matrix, Params, invalid};

/// The `algorithm` values.
pub(super) const ALGORITHMS: [&str; 3] = ["standard", "strassen", "parallel"];

/// Below this size Strassen's recursion hands over to the standard product, which is faster
/// for small blocks.
const STRASSEN_CUTOFF: usize = 64;

/// Tile edge of the blocked product.
const BLOCK: usize = 64;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let a = p.matrix("matrixA", MAX_MATRIX_DIM)?;
    let b = p.matrix("matrixB", MAX_MATRIX_DIM)?;
    let algorithm = p.choice("algorithm", "standard", &ALGORITHMS)?;
    if a.cols != b.rows {
        return Err(invalid(
            "matrixB",
            format_args!("has {} rows but matrixA has {} columns; they must be equal", b.rows, a.cols),
        ));
    }
    let c = multiply(&a, &b, algorithm, &ctx.cancel)?;
    Ok(json!({
        "type": "MATRIX_RESULT",
        "result": c.to_json(),
        "rows": c.rows,
        "cols": c.cols,
        "algorithm": algorithm,
    }))
}

/// `a × b` with the named algorithm (`a.cols == b.rows`).
pub(super) fn multiply(
    a: &Matrix,
    b: &Matrix,
    algorithm: &str,
    cancel: &CancellationToken,
) -> Result<Matrix, TaskError> {
    match algorithm {
        "strassen" => strassen(a, b, cancel),
        "parallel" => parallel(a, b, cancel),
        _ => standard(a, b, cancel),
    }
}

/// The i-k-j triple loop (walks both operands row-wise, which caches well).
fn standard(a: &Matrix, b: &Matrix, cancel: &CancellationToken) -> Result<Matrix, TaskError> {
    let mut c = Matrix::zeros(a.rows, b.cols);
    for (i, row) in c.data.chunks_mut(b.cols).enumerate() {
        cancel.check()?;
        row_product(a, b, i, row);
    }
    Ok(c)
}

/// Row `i` of `a × b` into `out`.
fn row_product(a: &Matrix, b: &Matrix, i: usize, out: &mut [f64]) {
    for k in 0..a.cols {
        let aik = a.at(i, k);
        if aik == 0.0 {
            continue;
        }
        let brow = &b.data[k * b.cols..(k + 1) * b.cols];
        for (o, bkj) in out.iter_mut().zip(brow) {
            *o += aik * bkj;
        }
    }
}

/// Tiled product: the same arithmetic as [`standard`] in cache-sized blocks.
#[cfg_attr(not(all(target_arch = "wasm32", target_os = "unknown")), allow(dead_code))]
fn blocked(a: &Matrix, b: &Matrix, cancel: &CancellationToken) -> Result<Matrix, TaskError> {
    let (n, m, p) = (a.rows, a.cols, b.cols);
    let mut c = Matrix::zeros(n, p);
    for ii in (0..n).step_by(BLOCK) {
        cancel.check()?;
        for kk in (0..m).step_by(BLOCK) {
            for jj in (0..p).step_by(BLOCK) {
                for i in ii..(ii + BLOCK).min(n) {
                    for k in kk..(kk + BLOCK).min(m) {
                        let aik = a.data[i * m + k];
                        for j in jj..(jj + BLOCK).min(p) {
                            c.data[i * p + j] += aik * b.data[k * p + j];
                        }
                    }
                }
            }
        }
    }
    Ok(c)
}

/// Rows split across scoped threads, one band per available core.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn parallel(a: &Matrix, b: &Matrix, cancel: &CancellationToken) -> Result<Matrix, TaskError> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(a.rows).max(1);
    if threads == 1 {
        return standard(a, b, cancel);
    }
    let mut c = Matrix::zeros(a.rows, b.cols);
    let band_rows = a.rows.div_ceil(threads);
    let cols = b.cols;
    let outcome: Result<(), TaskError> = std::thread::scope(|s| {
        let workers: Vec<_> = c
            .data
            .chunks_mut(band_rows * cols)
            .enumerate()
            .map(|(band, out)| {
                s.spawn(move || {
                    for (r, row) in out.chunks_mut(cols).enumerate() {
                        cancel.check()?;
                        row_product(a, b, band * band_rows + r, row);
                    }
                    Ok::<(), TaskError>(())
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| TaskError::system("WORKER_PANIC", "a matrix multiplication thread panicked"))??;
        }
        Ok(())
    });
    outcome?;
    Ok(c)
}

/// On `wasm32-unknown-unknown` threads cannot be spawned, so `parallel` runs the blocked
/// algorithm on the calling thread.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn parallel(a: &Matrix, b: &Matrix, cancel: &CancellationToken) -> Result<Matrix, TaskError> {
    blocked(a, b, cancel)
}

/// Strassen's algorithm on the operands zero-padded to a power-of-two square; small products
/// (every dimension at most the cutoff) use the standard algorithm.
fn strassen(a: &Matrix, b: &Matrix, cancel: &CancellationToken) -> Result<Matrix, TaskError> {
    let largest = a.rows.max(a.cols).max(b.cols);
    if largest <= STRASSEN_CUTOFF {
        return standard(a, b, cancel);
    }
    let n = largest.next_power_of_two();
    let pa = pad(a, n);
    let pb = pad(b, n);
    let pc = strassen_square(&pa, &pb, n, cancel)?;
    let mut c = Matrix::zeros(a.rows, b.cols);
    for i in 0..a.rows {
        c.data[i * b.cols..(i + 1) * b.cols].copy_from_slice(&pc[i * n..i * n + b.cols]);
    }
    Ok(c)
}

fn pad(m: &Matrix, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..m.rows {
        out[i * n..i * n + m.cols].copy_from_slice(&m.data[i * m.cols..(i + 1) * m.cols]);
    }
    out
}

fn strassen_square(a: &[f64], b: &[f64], n: usize, cancel: &CancellationToken) -> Result<Vec<f64>, TaskError> {
    cancel.check()?;
    if n <= STRASSEN_CUTOFF {
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                let aik = a[i * n + k];
                for j in 0..n {
                    c[i * n + j] += aik * b[k * n + j];
                }
            }
        }
        return Ok(c);
    }
    let h = n / 2;
    let [a11, a12, a21, a22] = quadrants(a, n);
    let [b11, b12, b21, b22] = quadrants(b, n);
    let m1 = strassen_square(&add(&a11, &a22), &add(&b11, &b22), h, cancel)?;
    let m2 = strassen_square(&add(&a21, &a22), &b11, h, cancel)?;
    let m3 = strassen_square(&a11, &sub(&b12, &b22), h, cancel)?;
    let m4 = strassen_square(&a22, &sub(&b21, &b11), h, cancel)?;
    let m5 = strassen_square(&add(&a11, &a12), &b22, h, cancel)?;
    let m6 = strassen_square(&sub(&a21, &a11), &add(&b11, &b12), h, cancel)?;
    let m7 = strassen_square(&sub(&a12, &a22), &add(&b21, &b22), h, cancel)?;
    let mut c = vec![0.0; n * n];
    for i in 0..h {
        for j in 0..h {
            let q = i * h + j;
            c[i * n + j] = m1[q] + m4[q] - m5[q] + m7[q];
            c[i * n + j + h] = m3[q] + m5[q];
            c[(i + h) * n + j] = m2[q] + m4[q];
            c[(i + h) * n + j + h] = m1[q] - m2[q] + m3[q] + m6[q];
        }
    }
    Ok(c)
}

fn quadrants(m: &[f64], n: usize) -> [Vec<f64>; 4] {
    let h = n / 2;
    let quad = |r0: usize, c0: usize| {
        let mut q = Vec::with_capacity(h * h);
        for i in 0..h {
            q.extend_from_slice(&m[(r0 + i) * n + c0..(r0 + i) * n + c0 + h]);
        }
        q
    };
    [quad(0, 0), quad(0, h), quad(h, 0), quad(h, h)]
}

fn add(x: &[f64], y: &[f64]) -> Vec<f64> {
    x.iter().zip(y).map(|(a, b)| a + b).collect()
}

fn sub(x: &[f64], y: &[f64]) -> Vec<f64> {
    x.iter().zip(y).map(|(a, b)| a - b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(rows: usize, cols: usize, seed: f64) -> Matrix {
        let data = (0..rows * cols).map(|i| ((i as f64 + seed) * 0.37).sin()).collect();
        Matrix { rows, cols, data }
    }

    #[test]
    fn all_algorithms_agree_on_non_square_sizes_above_the_cutoff() -> Result<(), TaskError> {
        let a = filled(70, 90, 1.0);
        let b = filled(90, 65, 2.0);
        let t = CancellationToken::new();
        let s = standard(&a, &b, &t)?;
        for other in [strassen(&a, &b, &t)?, parallel(&a, &b, &t)?, blocked(&a, &b, &t)?] {
            assert_eq!((other.rows, other.cols), (70, 65));
            for (x, y) in s.data.iter().zip(&other.data) {
                assert!((x - y).abs() < 1e-9);
            }
        }
        Ok(())
    }

    #[test]
    fn cancelled_token_stops_the_product() {
        let t = CancellationToken::new();
        t.cancel();
        let a = filled(100, 100, 0.0);
        assert!(strassen(&a, &a, &t).is_err());
        assert!(parallel(&a, &a, &t).is_err());
    }
}
