//! Latency histograms and their summaries.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Largest latency recorded exactly: 60 s; longer ones are clamped to it.
const MAX_NS: u64 = 60_000_000_000;
/// Percentiles drawn in the plot: 0 to 4.5 "nines" (50 %, 90 %, 99 %, 99.9 %, ...).
const PLOT_NINES_STEPS: u32 = 18;

/// A latency histogram in nanoseconds, 3 significant digits.
#[derive(Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, MAX_NS, 3)
                .expect("1 ns .. 60 s with 3 digits is a valid histogram"),
        }
    }

    /// Adds one sample.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos())
            .unwrap_or(MAX_NS)
            .clamp(1, MAX_NS);
        self.hist.saturating_record(ns);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latency) {
        self.hist
            .add(&other.hist)
            .expect("histograms share their bounds");
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The latency at `percentile` (0-100), in microseconds.
    pub fn at_us(&self, percentile: f64) -> f64 {
        self.hist.value_at_percentile(percentile) as f64 / 1000.0
    }

    /// The mean, in microseconds.
    pub fn mean_us(&self) -> f64 {
        self.hist.mean() / 1000.0
    }

    /// p50, p90, p99, p99.9, max and mean in µs, plus the points of the percentile curve.
    pub fn summary(&self) -> Value {
        if self.count() == 0 {
            return json!({ "count": 0 });
        }
        let curve: Vec<[f64; 2]> = (0..=PLOT_NINES_STEPS)
            .map(|step| {
                let nines = f64::from(step) / 4.0;
                let p = 100.0 * (1.0 - 10f64.powf(-nines));
                [round3(p), round1(self.at_us(p))]
            })
            .collect();
        json!({
            "count": self.count(),
            "p50": round1(self.at_us(50.0)),
            "p90": round1(self.at_us(90.0)),
            "p99": round1(self.at_us(99.0)),
            "p99_9": round1(self.at_us(99.9)),
            "max": round1(self.hist.max() as f64 / 1000.0),
            "mean": round1(self.mean_us()),
            "curve": curve,
        })
    }

    /// `p50 ... max` on one line, for people.
    pub fn line(&self) -> String {
        if self.count() == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {} | p90 {} | p99 {} | p99.9 {} | max {} (n={})",
            fmt_us(self.at_us(50.0)),
            fmt_us(self.at_us(90.0)),
            fmt_us(self.at_us(99.0)),
            fmt_us(self.at_us(99.9)),
            fmt_us(self.hist.max() as f64 / 1000.0),
            self.count()
        )
    }
}

/// Microseconds, or milliseconds or seconds once large.
pub fn fmt_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.1} s", us / 1e6)
    } else if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// Rounds to one decimal, for JSON that stays readable.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Rounds to two decimals.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_has_the_percentiles() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for us in 1..=1000 {
            a.record(Duration::from_micros(us));
        }
        b.record(Duration::from_secs(3600));
        a.merge(&b);
        assert_eq!(a.count(), 1001);
        let s = a.summary();
        assert!((s["p50"].as_f64().unwrap() - 500.0).abs() < 2.0, "{s}");
        // Clamped to 60 s, within the histogram's 3 significant digits.
        let max = s["max"].as_f64().unwrap();
        assert!((max - 60_000_000.0).abs() / 60_000_000.0 < 1e-3, "{max}");
        assert_eq!(s["curve"].as_array().unwrap().len(), 19);
        assert_eq!(Latency::new().summary()["count"], 0);
    }
}
