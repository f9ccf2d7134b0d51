//! `CSV_PARSE`: RFC 4180 CSV (quoted fields, doubled quotes, delimiters inside quotes) by the
//! `csv` crate. With a header, rows are objects keyed by the header; without, arrays of strings.
//! Fields stay strings: typing them is left to the caller.

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Map, Value, json};

use super::{MAX_CSV_BYTES, MAX_CSV_ROWS};
use crate::params::{Params, invalid};

/// Rows between two cancellation checks.
const CHUNK: usize = 1 << 12;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let data = p.str("csvData")?;
    if data.len() > MAX_CSV_BYTES {
        return Err(invalid("csvData", format_args!("has {} bytes; at most {MAX_CSV_BYTES} are allowed", data.len())));
    }
    let delimiter = match p.opt_str("delimiter")?.unwrap_or(",").as_bytes() {
        [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => *b,
        _ => return Err(invalid("delimiter", "must be one ASCII character other than a quote or a line break")),
    };
    let has_header = p.bool_or("hasHeader", true)?;
    let skip_empty = p.bool_or("skipEmptyLines", true)?;

    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(data.as_bytes());
    // The csv crate always skips blank lines; they are counted back in when kept (blank lines
    // after the last record are not).
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        if rows.len().is_multiple_of(CHUNK) {
            ctx.cancel.check()?;
        }
        let more =
            reader.read_record(&mut record).map_err(|e| invalid("csvData", format_args!("is not valid CSV: {e}")))?;
        if !more {
            break;
        }
        if !skip_empty {
            // A record's position is just after the previous record's terminator, so the blank
            // lines the crate skipped lead its raw text.
            let start = record.position().and_then(|pos| usize::try_from(pos.byte()).ok()).unwrap_or(data.len());
            let raw = data.as_bytes().get(start..).unwrap_or_default();
            let blanks = raw.iter().take_while(|&&c| c == b'\r' || c == b'\n').filter(|&&c| c == b'\n').count();
            rows.extend(std::iter::repeat_n(Vec::new(), blanks));
        }
        rows.push(record.iter().map(str::to_owned).collect());
        if rows.len() > MAX_CSV_ROWS + usize::from(has_header) {
            return Err(invalid("csvData", format_args!("has more than {MAX_CSV_ROWS} rows")));
        }
    }

    let (headers, body) = match (has_header, rows.split_first()) {
        (true, Some((first, rest))) => (Some(first.clone()), rest),
        _ => (None, rows.as_slice()),
    };
    let column_count = headers.as_ref().map_or_else(|| body.iter().map(Vec::len).max().unwrap_or(0), Vec::len);
    let out: Vec<Value> = match &headers {
        Some(h) => body
            .iter()
            .map(|row| {
                let mut obj = Map::new();
                for (i, name) in h.iter().enumerate() {
                    let v =
                        row.get(i).map_or_else(|| if row.is_empty() { json!("") } else { Value::Null }, |s| json!(s));
                    obj.insert(name.clone(), v);
                }
                // Extra fields beyond the header keep their position as key.
                for (i, s) in row.iter().enumerate().skip(h.len()) {
                    obj.insert(format!("_{i}"), json!(s));
                }
                Value::Object(obj)
            })
            .collect(),
        None => body.iter().map(|row| json!(row)).collect(),
    };
    Ok(json!({
        "type": "CSV_RESULT",
        "headers": headers,
        "rows": out,
        "rowCount": body.len(),
        "columnCount": column_count,
        "delimiter": (delimiter as char).to_string(),
    }))
}
