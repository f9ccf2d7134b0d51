//! Known answers of the computation handlers.

use anyhow::Result;
use serde_json::{Value, json};

use crate::support::{Kit, assert_invalid, assert_schema_rejects, call, close, ctx, floats, run};

const C: Kit = Kit::Computation;

fn matrix(rows: usize, cols: usize, seed: f64) -> Value {
    json!(
        (0..rows)
            .map(|r| (0..cols).map(|c| ((r * cols + c) as f64 * 0.61 + seed).sin()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    )
}

#[test]
fn matrix_product_is_known_for_every_algorithm() -> Result<()> {
    for algorithm in ["standard", "strassen", "parallel"] {
        let r = run(
            C,
            "MATRIX_MULTIPLY",
            json!({"matrixA": [[1, 2], [3, 4]], "matrixB": [[5, 6], [7, 8]], "algorithm": algorithm}),
        )?;
        assert_eq!(r["result"], json!([[19.0, 22.0], [43.0, 50.0]]), "{algorithm}");
        assert_eq!(r["algorithm"], algorithm);
    }
    let r = run(C, "MATRIX_MULTIPLY", json!({"matrixA": [[1, 2, 3]], "matrixB": [[1], [2], [3]]}))?;
    assert_eq!((r["rows"].clone(), r["cols"].clone(), r["result"].clone()), (json!(1), json!(1), json!([[14.0]])));
    Ok(())
}

#[test]
fn algorithms_agree_above_the_strassen_cutoff() -> Result<()> {
    let (a, b) = (matrix(100, 70, 0.3), matrix(70, 90, 1.7));
    let results: Vec<Value> = ["standard", "strassen", "parallel"]
        .iter()
        .map(|alg| run(C, "MATRIX_MULTIPLY", json!({"matrixA": a, "matrixB": b, "algorithm": alg})))
        .collect::<Result<_>>()?;
    let flat = |v: &Value| {
        v["result"].as_array().map(|rows| rows.iter().flat_map(floats).collect::<Vec<_>>()).unwrap_or_default()
    };
    let reference = flat(&results[0]);
    assert_eq!(reference.len(), 100 * 90);
    for r in &results[1..] {
        assert!(flat(r).iter().zip(&reference).all(|(x, y)| close(*x, *y, 1e-9)), "{}", r["algorithm"]);
    }
    Ok(())
}

#[test]
fn factorizations_are_known() -> Result<()> {
    let r = run(C, "PRIME_FACTORIZATION", json!({"number": 360}))?;
    assert_eq!(r["factors"], json!([2, 2, 2, 3, 3, 5]));
    assert_eq!(r["primeFactors"][0], json!({"prime": 2, "exponent": 3}));
    assert_eq!(r["isPrime"], false);
    assert_eq!(r["complete"], true);

    let r = run(C, "PRIME_FACTORIZATION", json!({"number": 97}))?;
    assert_eq!((r["factors"].clone(), r["isPrime"].clone()), (json!([97]), json!(true)));

    // (2^32 − 17)(2^32 − 5): needs Pollard rho, trial division alone would never finish.
    let r = run(C, "PRIME_FACTORIZATION", json!({"number": 18_446_743_979_220_271_189u64}))?;
    assert_eq!(r["factors"], json!([4_294_967_279u64, 4_294_967_291u64]));

    // Prime powers beyond trial division.
    let r = run(C, "PRIME_FACTORIZATION", json!({"number": 1_000_003u64 * 1_000_003}))?;
    assert_eq!(r["factors"], json!([1_000_003, 1_000_003]));
    let r = run(C, "PRIME_FACTORIZATION", json!({"number": 999_983u64 * 999_983 * 999_983}))?;
    assert_eq!(r["factors"], json!([999_983, 999_983, 999_983]));

    let r = run(C, "PRIME_FACTORIZATION", json!({"number": u64::MAX}))?;
    assert_eq!(r["factors"], json!([3, 5, 17, 257, 641, 65537, 6_700_417]));

    let r = run(C, "PRIME_FACTORIZATION", json!({"number": 18_446_744_073_709_551_557u64, "maxTime": 1000}))?;
    assert_eq!(r["isPrime"], true);
    Ok(())
}

#[test]
fn fft_of_impulse_and_cosine() -> Result<()> {
    let r = run(C, "FOURIER_TRANSFORM", json!({"signal": [1, 0, 0, 0]}))?;
    assert_eq!(floats(&r["real"]), vec![1.0; 4]);
    assert!(floats(&r["imaginary"]).iter().all(|x| x.abs() < 1e-12));

    let n = 8;
    let cosine: Vec<f64> = (0..n).map(|i| (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()).collect();
    let r = run(C, "FOURIER_TRANSFORM", json!({"signal": cosine}))?;
    let mag = floats(&r["magnitude"]);
    for (k, m) in mag.iter().enumerate() {
        let expected = if k == 1 || k == n - 1 { 4.0 } else { 0.0 };
        assert!(close(*m, expected, 1e-9), "bin {k}: {m}");
    }

    // inverse(forward(x)) == x, with [re, im] pairs as input.
    let pairs: Vec<Value> =
        floats(&r["real"]).iter().zip(floats(&r["imaginary"])).map(|(re, im)| json!([re, im])).collect();
    let back = run(C, "FOURIER_TRANSFORM", json!({"signal": pairs, "inverse": true}))?;
    assert!(floats(&back["real"]).iter().zip(&cosine).all(|(a, b)| close(*a, *b, 1e-12)));

    for window in ["hamming", "hanning", "blackman"] {
        let r = run(C, "FOURIER_TRANSFORM", json!({"signal": [1, 1, 1, 1, 1], "windowFunction": window}))?;
        let dc = floats(&r["real"])[0];
        let expected = match window {
            "hamming" => 0.08 + 0.54 + 1.0 + 0.54 + 0.08,
            "hanning" => 0.0 + 0.5 + 1.0 + 0.5 + 0.0,
            _ => 0.0 + 0.34 + 1.0 + 0.34 + 0.0,
        };
        assert!(close(dc, expected, 1e-9), "{window}: {dc}");
    }
    Ok(())
}

#[test]
fn seeded_monte_carlo_pi_is_close_and_reproducible() -> Result<()> {
    let params = json!({"iterations": 200_000, "seed": 42});
    let a = run(C, "MONTE_CARLO_PI", params.clone())?;
    let b = run(C, "MONTE_CARLO_PI", params)?;
    assert_eq!(a, b);
    let estimate = a["estimate"].as_f64().unwrap_or(0.0);
    assert!(close(estimate, std::f64::consts::PI, 0.02), "{estimate}");
    assert_eq!(a["seed"], 42);
    let c = run(C, "MONTE_CARLO_PI", json!({"iterations": 200_000, "seed": 43}))?;
    assert_ne!(a["insideCircle"], c["insideCircle"]);
    Ok(())
}

#[test]
fn cancelled_attempts_stop() {
    let handlers = atmo_builtins::computation_handlers();
    let context = ctx("MONTE_CARLO_PI");
    context.cancel.cancel();
    let Some(h) = handlers.get("MONTE_CARLO_PI") else { panic!("no handler") };
    let err = h.call_blocking(&context, &json!({"iterations": 1_000_000_000u64, "seed": 1})).err();
    assert_eq!(err.map(|e| e.code), Some("CANCELLED".to_owned()));
}

#[test]
fn linear_systems_solve_with_tiny_residual() -> Result<()> {
    let a = json!([[4, -1, 0, 1], [-1, 4, -1, 0], [0, -1, 4, -1], [1, 0, -1, 5]]);
    let b = json!([15, 10, 10, 7]);
    let mut solutions = Vec::new();
    for method in ["gaussian", "lu", "qr", "iterative"] {
        let r = run(C, "SOLVE_LINEAR_SYSTEM", json!({"coefficientMatrix": a, "constantVector": b, "method": method}))?;
        let residual = r["residualNorm"].as_f64().unwrap_or(f64::INFINITY);
        assert!(residual < 1e-9, "{method}: {residual}");
        solutions.push(floats(&r["solution"]));
    }
    for s in &solutions[1..] {
        assert!(s.iter().zip(&solutions[0]).all(|(x, y)| close(*x, *y, 1e-9)));
    }
    // Gaussian elimination needs pivoting here: the first pivot is zero.
    let r = run(C, "SOLVE_LINEAR_SYSTEM", json!({"coefficientMatrix": [[0, 1], [1, 0]], "constantVector": [2, 3]}))?;
    assert_eq!(floats(&r["solution"]), vec![3.0, 2.0]);
    Ok(())
}

#[test]
fn integral_of_x_squared_on_0_3_is_9() -> Result<()> {
    for (method, tol) in [("simpson", 1e-9), ("gauss", 1e-9), ("trapezoidal", 1e-4)] {
        let r = run(
            C,
            "NUMERICAL_INTEGRATION",
            json!({"function": "x^2", "lowerBound": 0, "upperBound": 3, "method": method}),
        )?;
        let v = r["result"].as_f64().unwrap_or(f64::NAN);
        assert!(close(v, 9.0, tol), "{method}: {v}");
    }
    let r = run(
        C,
        "NUMERICAL_INTEGRATION",
        json!({"function": "sin(x)", "lowerBound": 0, "upperBound": std::f64::consts::PI}),
    )?;
    assert!(close(r["result"].as_f64().unwrap_or(0.0), 2.0, 1e-9));
    let r = run(
        C,
        "NUMERICAL_INTEGRATION",
        json!({"function": "2", "lowerBound": 1, "upperBound": 4, "method": "gauss", "subdivisions": 3}),
    )?;
    assert!(close(r["result"].as_f64().unwrap_or(0.0), 6.0, 1e-12));
    Ok(())
}

#[test]
fn invalid_inputs_name_their_parameter() {
    let cases = [
        ("MATRIX_MULTIPLY", json!({"matrixA": [[1, 2]], "matrixB": [[1, 2]]}), "matrixB"),
        ("MATRIX_MULTIPLY", json!({"matrixA": [[1, 2], [3]], "matrixB": [[1]]}), "matrixA"),
        ("MATRIX_MULTIPLY", json!({"matrixA": vec![vec![1]; 513], "matrixB": [[1]]}), "matrixA"),
        ("MATRIX_MULTIPLY", json!({"matrixA": [[1]], "matrixB": [[1]], "algorithm": "winograd"}), "algorithm"),
        ("PRIME_FACTORIZATION", json!({"number": 1}), "number"),
        ("PRIME_FACTORIZATION", json!({"number": 2.5}), "number"),
        ("PRIME_FACTORIZATION", json!({"number": 1e20}), "number"),
        ("FOURIER_TRANSFORM", json!({"signal": []}), "signal"),
        ("FOURIER_TRANSFORM", json!({"signal": [1, "two"]}), "signal"),
        ("FOURIER_TRANSFORM", json!({"signal": [1], "windowFunction": "kaiser"}), "windowFunction"),
        ("MONTE_CARLO_PI", json!({"iterations": 0}), "iterations"),
        ("MONTE_CARLO_PI", json!({"iterations": 2_000_000_000u64}), "iterations"),
        (
            "SOLVE_LINEAR_SYSTEM",
            json!({"coefficientMatrix": [[1, 2], [2, 4]], "constantVector": [1, 2]}),
            "coefficientMatrix",
        ),
        (
            "SOLVE_LINEAR_SYSTEM",
            json!({"coefficientMatrix": [[1, 0], [0, 1]], "constantVector": [1]}),
            "constantVector",
        ),
        (
            "SOLVE_LINEAR_SYSTEM",
            json!({"coefficientMatrix": [[1]], "constantVector": [1], "method": "cholesky"}),
            "method",
        ),
        ("NUMERICAL_INTEGRATION", json!({"function": "y^2", "lowerBound": 0, "upperBound": 1}), "function"),
        ("NUMERICAL_INTEGRATION", json!({"function": "x^^2)", "lowerBound": 0, "upperBound": 1}), "function"),
        ("NUMERICAL_INTEGRATION", json!({"function": "1/x", "lowerBound": 0, "upperBound": 1}), "function"),
        ("NUMERICAL_INTEGRATION", json!({"function": "x", "lowerBound": "a", "upperBound": 1}), "lowerBound"),
        (
            "NUMERICAL_INTEGRATION",
            json!({"function": "x", "lowerBound": 0, "upperBound": 1, "subdivisions": 0}),
            "subdivisions",
        ),
    ];
    for (action, params, parameter) in cases {
        assert_invalid(C, action, params, parameter);
    }
    for lu_or_qr in ["lu", "qr"] {
        let params = json!({"coefficientMatrix": [[1, 2], [2, 4]], "constantVector": [1, 2], "method": lu_or_qr});
        assert_invalid(C, "SOLVE_LINEAR_SYSTEM", params, "coefficientMatrix");
    }
    // The schemas catch what they can before a request is queued.
    let schema_cases = [
        ("MATRIX_MULTIPLY", json!({"matrixA": [[1]], "matrixB": [[1]], "algorithm": "winograd"}), "algorithm"),
        ("MATRIX_MULTIPLY", json!({"matrixA": [1, 2], "matrixB": [[1]]}), "matrixA"),
        ("PRIME_FACTORIZATION", json!({"number": 1}), "number"),
        ("FOURIER_TRANSFORM", json!({"signal": []}), "signal"),
        ("MONTE_CARLO_PI", json!({"iterations": 0}), "iterations"),
        ("MONTE_CARLO_PI", json!({"iterations": 10, "seed": -1}), "seed"),
        ("SOLVE_LINEAR_SYSTEM", json!({"coefficientMatrix": [[1]], "constantVector": ["x"]}), "constantVector"),
        (
            "NUMERICAL_INTEGRATION",
            json!({"function": "x", "lowerBound": 0, "upperBound": 1, "method": "romberg"}),
            "method",
        ),
        ("NUMERICAL_INTEGRATION", json!({"lowerBound": 0, "upperBound": 1}), "function"),
    ];
    for (action, params, parameter) in schema_cases {
        assert_schema_rejects(C, action, params, parameter);
    }
}

#[test]
fn direct_calls_apply_defaults_too() -> Result<()> {
    let r = call(C, "MATRIX_MULTIPLY", json!({"matrixA": [[2]], "matrixB": [[3]]}))?;
    assert_eq!(r["algorithm"], "standard");
    let r = call(C, "NUMERICAL_INTEGRATION", json!({"function": "x", "lowerBound": 0, "upperBound": 2}))?;
    assert_eq!((r["method"].clone(), r["subdivisions"].clone()), (json!("simpson"), json!(1000)));
    Ok(())
}
