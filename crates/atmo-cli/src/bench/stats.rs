//! Medians and percentiles.

use std::time::Duration;

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `p`-th percentile (0–100) of sorted samples, by nearest rank, in microseconds.
pub(crate) fn percentile_micros(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e6
}

/// The median p50 and median p99 (µs) of several runs of latency samples.
pub(crate) fn latency_medians(runs: Vec<Vec<Duration>>) -> (f64, f64) {
    let (mut p50, mut p99) = (Vec::new(), Vec::new());
    for mut times in runs {
        times.sort_unstable();
        p50.push(percentile_micros(&times, 50.0));
        p99.push(percentile_micros(&times, 99.0));
    }
    (median(&p50), median(&p99))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile_micros(&samples, 50.0), 50.0);
        assert_eq!(percentile_micros(&samples, 99.0), 99.0);
        assert_eq!(percentile_micros(&samples, 100.0), 100.0);
        assert_eq!(percentile_micros(&[], 50.0), 0.0);
    }
}
