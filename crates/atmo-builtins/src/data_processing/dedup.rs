//! `DATA_DEDUPLICATION`: fuzzy duplicate detection.
//!
//! Two records match when the mean similarity of their `matchFields` (values compared as
//! lower-cased, trimmed text; a missing field is the empty text) reaches `threshold`:
//!
//! - `levenshtein`: `1 − distance / longer length` (`strsim::normalized_levenshtein`);
//! - `jaccard`: size of the intersection over the union of the whitespace-separated tokens;
//! - `soundex`: the Jaccard index of the American Soundex codes of the tokens, so names that
//!   sound alike match (`Robert` and `Rupert` are both `R163`).
//!
//! Records are scanned in order; each joins the first group whose first record it matches, or
//! starts a new group. The first record of every group is kept as unique.

use std::collections::HashSet;

use atmo_core::{HandlerResult, TaskContext};
use serde_json::{Value, json};

use super::MAX_DEDUP_RECORDS;
use super::input::{as_text, field, objects, strings};
use crate::params::{Params, invalid};

/// The similarity algorithms.
pub(super) const ALGORITHMS: [&str; 3] = ["levenshtein", "jaccard", "soundex"];

/// Records between two cancellation checks.
const CHUNK: usize = 1 << 6;

pub(super) fn handle(ctx: &TaskContext, params: &Value) -> HandlerResult {
    let p = Params(params);
    let records = objects(p, "dataset", MAX_DEDUP_RECORDS)?;
    let fields = strings(p, "matchFields", true, super::MAX_FIELDS)?;
    let threshold = match p.0.get("threshold").filter(|v| !v.is_null()) {
        None => 0.8,
        Some(_) => p.f64("threshold")?,
    };
    if !(0.0..=1.0).contains(&threshold) {
        return Err(invalid("threshold", format_args!("must be between 0 and 1, got {threshold}")));
    }
    let algorithm = p.choice("algorithm", "levenshtein", &ALGORITHMS)?;

    let keys: Vec<Vec<String>> =
        records.iter().map(|r| fields.iter().map(|f| normalize(&as_text(field(r, f)), algorithm)).collect()).collect();
    // (first record, members with their similarity to the first).
    let mut groups: Vec<(usize, Vec<(usize, f64)>)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if i.is_multiple_of(CHUNK) {
            ctx.cancel.check()?;
        }
        let found = groups.iter_mut().find_map(|(first, members)| {
            let s = similarity(&keys[*first], key, algorithm);
            (s >= threshold).then_some((members, s))
        });
        match found {
            Some((members, s)) => members.push((i, s)),
            None => groups.push((i, Vec::new())),
        }
    }

    let unique: Vec<&Value> = groups.iter().map(|(first, _)| &params["dataset"][*first]).collect();
    let duplicate_groups: Vec<Value> = groups
        .iter()
        .filter(|(_, members)| !members.is_empty())
        .map(|(first, members)| {
            let dups: Vec<Value> = members.iter().map(|(i, s)| json!({"index": i, "similarity": s})).collect();
            let mut indices = vec![*first];
            indices.extend(members.iter().map(|(i, _)| *i));
            json!({"representative": first, "indices": indices, "duplicates": dups})
        })
        .collect();
    let duplicates: usize = groups.iter().map(|(_, m)| m.len()).sum();
    Ok(json!({
        "type": "DEDUPLICATION_RESULT",
        "uniqueRecords": unique,
        "duplicateGroups": duplicate_groups,
        "originalCount": records.len(),
        "uniqueCount": groups.len(),
        "duplicateCount": duplicates,
        "algorithm": algorithm,
        "threshold": threshold,
    }))
}

/// The text compared for one field: lower-cased and trimmed, as Soundex codes for `soundex`.
fn normalize(text: &str, algorithm: &str) -> String {
    let lower = text.trim().to_lowercase();
    if algorithm == "soundex" { lower.split_whitespace().map(soundex).collect::<Vec<_>>().join(" ") } else { lower }
}

fn similarity(a: &[String], b: &[String], algorithm: &str) -> f64 {
    let total: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| match algorithm {
            "levenshtein" => strsim::normalized_levenshtein(x, y),
            _ => jaccard(x, y),
        })
        .sum();
    total / a.len().max(1) as f64
}

/// Jaccard index of the whitespace-separated token sets (1 for two empty texts).
fn jaccard(a: &str, b: &str) -> f64 {
    let (sa, sb): (HashSet<&str>, HashSet<&str>) = (a.split_whitespace().collect(), b.split_whitespace().collect());
    let union = sa.union(&sb).count();
    if union == 0 { 1.0 } else { sa.intersection(&sb).count() as f64 / union as f64 }
}

/// American Soundex of a word: its first letter and three digits (`Robert` → `R163`).
///
/// Letters other than ASCII ones are ignored; a word without any gives the empty string.
/// Consonants with the same code separated by `h` or `w` are coded once, by a vowel twice.
pub fn soundex(word: &str) -> String {
    fn code(c: char) -> Option<char> {
        match c {
            'b' | 'f' | 'p' | 'v' => Some('1'),
            'c' | 'g' | 'j' | 'k' | 'q' | 's' | 'x' | 'z' => Some('2'),
            'd' | 't' => Some('3'),
            'l' => Some('4'),
            'm' | 'n' => Some('5'),
            'r' => Some('6'),
            _ => None,
        }
    }
    let mut letters = word.chars().filter(char::is_ascii_alphabetic).map(|c| c.to_ascii_lowercase());
    let Some(first) = letters.next() else { return String::new() };
    let mut out = String::with_capacity(4);
    out.push(first.to_ascii_uppercase());
    let mut last = code(first);
    for c in letters {
        if out.len() == 4 {
            break;
        }
        match code(c) {
            Some(d) if Some(d) != last => {
                out.push(d);
                last = Some(d);
            }
            Some(_) => {}
            // `h` and `w` do not separate equal codes; vowels (and `y`) do.
            None if c == 'h' || c == 'w' => {}
            None => last = None,
        }
    }
    while out.len() < 4 {
        out.push('0');
    }
    out
}
