//! One report line per scenario: aligned text for people, one JSON object per line for tools.

use std::io::Write;

use serde::Serialize;

/// The result of one scenario: medians of the engine's and the baseline's runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Line {
    /// The scenario's name (`inproc-throughput`).
    pub(crate) scenario: &'static str,
    /// The engine's median (for a latency scenario: its median p50).
    pub(crate) value: f64,
    /// What `value` and `baseline` count (`requests/s`, `µs`, `bytes/request`).
    pub(crate) unit: &'static str,
    /// The baseline's median, measured in the same run.
    pub(crate) baseline: f64,
    /// `value / baseline` (above 1: the engine's figure is higher).
    pub(crate) ratio: f64,
    /// A latency scenario's median p99.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p99: Option<f64>,
    /// The baseline's median p99.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) baseline_p99: Option<f64>,
    /// A durable scenario's median store commits (each one WAL fsync) per 1,000 requests.
    #[serde(rename = "fsyncsPer1000", skip_serializing_if = "Option::is_none")]
    pub(crate) fsyncs_per_1000: Option<f64>,
    /// How many runs the medians are taken over.
    pub(crate) runs: u32,
}

impl Line {
    /// A line; figures are rounded to what the measurement can tell apart (whole requests/s
    /// and bytes, tenths of a microsecond), the ratio to three significant decimals.
    pub(crate) fn new(scenario: &'static str, unit: &'static str, value: f64, baseline: f64, runs: u32) -> Self {
        let ratio = if baseline > 0.0 { round_to(value / baseline, 1e3) } else { 0.0 };
        let (value, baseline) = (round_for(unit, value), round_for(unit, baseline));
        Line { scenario, value, unit, baseline, ratio, p99: None, baseline_p99: None, fsyncs_per_1000: None, runs }
    }

    /// Adds the p99s of a latency scenario.
    pub(crate) fn with_p99(mut self, p99: f64, baseline_p99: f64) -> Self {
        self.p99 = Some(round_for(self.unit, p99));
        self.baseline_p99 = Some(round_for(self.unit, baseline_p99));
        self
    }

    /// Adds a durable scenario's fsyncs per 1,000 requests (to a tenth).
    pub(crate) fn with_fsyncs_per_1000(mut self, fsyncs: f64) -> Self {
        self.fsyncs_per_1000 = Some(round_to(fsyncs, 10.0));
        self
    }

    /// Writes the line as text or JSON.
    ///
    /// # Errors
    /// When writing fails (a closed pipe included: `main` treats that as success).
    pub(crate) fn write(&self, out: &mut impl Write, json: bool) -> anyhow::Result<()> {
        if json {
            serde_json::to_writer(&mut *out, self)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", self.human())?;
        }
        out.flush()?;
        Ok(())
    }

    /// `scenario  value unit  (baseline X unit, ratio R)`, in fixed columns so that lines align.
    fn human(&self) -> String {
        let unit = self.unit;
        let mut s = format!(
            "{:<NAME_WIDTH$} {:>12} {:<13}  (baseline {} {unit}, ratio {:.3}",
            self.scenario,
            number(self.value),
            unit,
            number(self.baseline),
            self.ratio,
        );
        if let (Some(p99), Some(bp99)) = (self.p99, self.baseline_p99) {
            s.push_str(&format!("; p99 {} {unit}, baseline p99 {} {unit}", number(p99), number(bp99)));
        }
        if let Some(f) = self.fsyncs_per_1000 {
            s.push_str(&format!("; {} fsyncs per 1,000 requests", number(f)));
        }
        s.push(')');
        s
    }
}

/// Width of the scenario column of the text lines: the longest scenario name
/// (`durable-throughput-full`); a longer name pushes the rest of its line right.
pub(crate) const NAME_WIDTH: usize = 23;

fn round_to(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

fn round_for(unit: &str, x: f64) -> f64 {
    if unit == "µs" { round_to(x, 10.0) } else { x.round() }
}

/// Whole numbers with thousands separators (`1,234,567`); others with one decimal.
fn number(x: f64) -> String {
    if x.fract() != 0.0 || !x.is_finite() || x.abs() >= 1e15 {
        return format!("{x:.1}");
    }
    let digits = format!("{}", x.abs() as u64);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if x < 0.0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(1_234_567.0), "1,234,567");
        assert_eq!(number(512.0), "512");
        assert_eq!(number(-1000.0), "-1,000");
        assert_eq!(number(12.5), "12.5");
    }

    #[test]
    fn json_lines_carry_the_fields() -> anyhow::Result<()> {
        let mut out = Vec::new();
        Line::new("inproc-latency", "µs", 12.34, 6.0, 5).with_p99(30.0, 9.06).write(&mut out, true)?;
        let v: serde_json::Value = serde_json::from_slice(&out)?;
        assert_eq!(v["scenario"], "inproc-latency");
        assert_eq!(v["value"], 12.3);
        assert_eq!(v["ratio"], 2.057);
        assert_eq!(v["p99"], 30.0);
        assert_eq!(v["baselineP99"], 9.1);
        assert!(v.get("fsyncsPer1000").is_none());
        let mut out = Vec::new();
        Line::new("durable-throughput", "requests/s", 60_000.0, 900_000.0, 5)
            .with_fsyncs_per_1000(2.46)
            .write(&mut out, true)?;
        let v: serde_json::Value = serde_json::from_slice(&out)?;
        assert_eq!(v["fsyncsPer1000"], 2.5);
        Ok(())
    }

    #[test]
    fn text_lines_align() -> anyhow::Result<()> {
        let mut out = Vec::new();
        Line::new("inproc-throughput", "requests/s", 1_500_000.0, 9_000_000.0, 5).write(&mut out, false)?;
        Line::new("inproc-memory", "bytes/request", 400.0, 40.0, 5).write(&mut out, false)?;
        let text = String::from_utf8(out)?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "inproc-throughput          1,500,000 requests/s     (baseline 9,000,000 requests/s, ratio 0.167)"
        );
        assert_eq!(lines[0].find('('), lines[1].find('('));
        Ok(())
    }
}
