//! Reading a request's parameters with errors that name the parameter.
//!
//! Manifests validate types and ranges before a request reaches a bank, but handlers are also
//! called directly (tests, `atmo exec`), so every accessor re-checks what it relies on.

use atmo_core::TaskError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

/// A validation error naming `name`, with the name in `details.parameter` too.
pub(crate) fn invalid(name: &str, problem: impl std::fmt::Display) -> TaskError {
    TaskError::invalid(format!("parameter `{name}` {problem}")).with_details(json!({ "parameter": name }))
}

/// Borrowed view of a parameters object.
#[derive(Clone, Copy)]
pub(crate) struct Params<'a>(pub(crate) &'a Value);

impl<'a> Params<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// The raw value, required.
    pub(crate) fn value(&self, name: &str) -> Result<&'a Value, TaskError> {
        self.get(name).ok_or_else(|| invalid(name, "is required but was not given"))
    }

    /// A required string.
    pub(crate) fn str(&self, name: &str) -> Result<&'a str, TaskError> {
        self.value(name)?.as_str().ok_or_else(|| invalid(name, "must be a string"))
    }

    /// An optional string.
    pub(crate) fn opt_str(&self, name: &str) -> Result<Option<&'a str>, TaskError> {
        self.get(name).map(|v| v.as_str().ok_or_else(|| invalid(name, "must be a string"))).transpose()
    }

    /// A string with a default, checked against the allowed values.
    pub(crate) fn choice(&self, name: &str, default: &'a str, allowed: &[&str]) -> Result<&'a str, TaskError> {
        let s = self.opt_str(name)?.unwrap_or(default);
        if allowed.contains(&s) {
            Ok(s)
        } else {
            Err(invalid(name, format_args!("must be one of {}, got `{s}`", allowed.join(", "))))
        }
    }

    /// A required finite number.
    pub(crate) fn f64(&self, name: &str) -> Result<f64, TaskError> {
        self.value(name)?.as_f64().filter(|x| x.is_finite()).ok_or_else(|| invalid(name, "must be a finite number"))
    }

    /// An optional boolean with a default.
    pub(crate) fn bool_or(&self, name: &str, default: bool) -> Result<bool, TaskError> {
        self.get(name).map_or(Ok(default), |v| v.as_bool().ok_or_else(|| invalid(name, "must be a boolean")))
    }

    /// An optional non-negative integer within `[min, max]`.
    pub(crate) fn opt_u64(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, TaskError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        let n = match v.as_u64() {
            Some(n) => n,
            // Clients written in JavaScript send `1e6` as a float; accept whole floats in range.
            None => match v.as_f64() {
                Some(f) if f.fract() == 0.0 && f >= 0.0 && f <= max as f64 => f as u64,
                _ => return Err(invalid(name, format_args!("must be an integer between {min} and {max}"))),
            },
        };
        if (min..=max).contains(&n) {
            Ok(Some(n))
        } else {
            Err(invalid(name, format_args!("must be between {min} and {max}, got {n}")))
        }
    }

    /// A required integer within `[min, max]`.
    pub(crate) fn u64(&self, name: &str, min: u64, max: u64) -> Result<u64, TaskError> {
        self.value(name)?;
        self.opt_u64(name, min, max)?.ok_or_else(|| invalid(name, "is required but was not given"))
    }

    /// An array of finite numbers, at most `max_len` long.
    pub(crate) fn vector(&self, name: &str, max_len: usize) -> Result<Vec<f64>, TaskError> {
        let items = self.value(name)?.as_array().ok_or_else(|| invalid(name, "must be an array of numbers"))?;
        if items.is_empty() {
            return Err(invalid(name, "must not be empty"));
        }
        if items.len() > max_len {
            return Err(invalid(name, format_args!("has {} items; at most {max_len} are allowed", items.len())));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| invalid(name, format_args!("item {i} must be a finite number")))
            })
            .collect()
    }

    /// A rectangular 2-D array of finite numbers, at most `max_dim` rows and columns.
    pub(crate) fn matrix(&self, name: &str, max_dim: usize) -> Result<Matrix, TaskError> {
        let rows = self.value(name)?.as_array().ok_or_else(|| invalid(name, "must be a 2-D array of numbers"))?;
        if rows.is_empty() {
            return Err(invalid(name, "must have at least one row"));
        }
        if rows.len() > max_dim {
            return Err(invalid(name, format_args!("has {} rows; at most {max_dim} are allowed", rows.len())));
        }
        let mut cols = 0;
        let mut data = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            let row = row.as_array().ok_or_else(|| invalid(name, format_args!("row {r} must be an array")))?;
            if r == 0 {
                cols = row.len();
                if cols == 0 {
                    return Err(invalid(name, "must have at least one column"));
                }
                if cols > max_dim {
                    return Err(invalid(name, format_args!("has {cols} columns; at most {max_dim} are allowed")));
                }
                data.reserve(rows.len() * cols);
            } else if row.len() != cols {
                return Err(invalid(name, format_args!("row {r} has {} items but row 0 has {cols}", row.len())));
            }
            for (c, v) in row.iter().enumerate() {
                let x = v
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| invalid(name, format_args!("item [{r}][{c}] must be a finite number")))?;
                data.push(x);
            }
        }
        Ok(Matrix { rows: rows.len(), cols, data })
    }

    /// Bytes from a string parameter in `encoding` (`utf8`, `base64` or `hex`).
    pub(crate) fn bytes(&self, name: &str, encoding: &str) -> Result<Vec<u8>, TaskError> {
        decode(name, self.str(name)?, encoding)
    }

    /// Bytes from a base64 parameter that must be exactly `N` long.
    pub(crate) fn fixed_b64<const N: usize>(&self, name: &str) -> Result<[u8; N], TaskError> {
        let bytes = decode(name, self.str(name)?, "base64")?;
        <[u8; N]>::try_from(bytes.as_slice())
            .map_err(|_| invalid(name, format_args!("must decode to exactly {N} bytes, got {}", bytes.len())))
    }
}

/// Decodes `s` given in `encoding`.
pub(crate) fn decode(name: &str, s: &str, encoding: &str) -> Result<Vec<u8>, TaskError> {
    match encoding {
        "utf8" => Ok(s.as_bytes().to_vec()),
        "base64" => B64.decode(s.trim()).map_err(|e| invalid(name, format_args!("is not valid base64: {e}"))),
        "hex" => hex::decode(s.trim()).map_err(|e| invalid(name, format_args!("is not valid hex: {e}"))),
        other => Err(invalid(name, format_args!("has an unknown encoding `{other}`"))),
    }
}

/// Encodes bytes as `hex` or `base64`.
pub(crate) fn encode(bytes: &[u8], format: &str) -> String {
    if format == "hex" { hex::encode(bytes) } else { B64.encode(bytes) }
}

/// A dense row-major matrix.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Matrix {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) data: Vec<f64>,
}

impl Matrix {
    /// All zeros.
    pub(crate) fn zeros(rows: usize, cols: usize) -> Self {
        Matrix { rows, cols, data: vec![0.0; rows * cols] }
    }

    /// Element `(r, c)`.
    pub(crate) fn at(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.cols + c]
    }

    /// As nested JSON arrays.
    pub(crate) fn to_json(&self) -> Value {
        Value::Array(self.data.chunks(self.cols.max(1)).map(|row| json!(row)).collect())
    }
}
