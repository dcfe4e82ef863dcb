//! A latency sketch that merges exactly: log-linear buckets over
//! microseconds (values below 64 µs exact, then 64 buckets per power of
//! two: a percentile is off by at most 1/64 ≈ 1.6%), kept sparse.
//!
//! Unlike a quantile summary (t-digest, GK), two sketches merge by adding
//! bucket counts, so fanning a window out to many nodes and merging gives
//! the same answer as one node holding everything. Bounded: values are
//! clamped to one hour, which caps a sketch at about 1,600 buckets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rca::Percentiles;

/// Buckets per power of two (and the exact range below it), as a power of two.
const SUB_LOG2: u32 = 6;
const SUB: u64 = 1 << SUB_LOG2;
/// Largest value recorded (1 hour in µs); longer values are clamped.
pub const VALUE_US_MAX: u64 = 3_600_000_000;

/// Counts of latencies (µs) by bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySketch {
    /// Bucket index → count. Sparse: most operations fill a few dozen.
    counts: BTreeMap<u32, u64>,
    total: u64,
}

impl LatencySketch {
    pub fn record(&mut self, value_us: u64) {
        *self.counts.entry(bucket(value_us.min(VALUE_US_MAX))).or_default() += 1;
        self.total += 1;
    }

    /// Adds `other`'s counts: the sketch of both inputs together.
    pub fn merge(&mut self, other: &LatencySketch) {
        for (&b, &n) in &other.counts {
            *self.counts.entry(b).or_default() += n;
        }
        self.total += other.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1), in µs: the middle of the bucket
    /// holding the value of that rank. 0 when empty.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (&b, &n) in &self.counts {
            seen += n;
            if seen >= rank {
                return middle(b);
            }
        }
        self.counts.keys().next_back().map_or(0.0, |&b| middle(b))
    }

    /// p50, p90 and p99 in milliseconds, with the sample count.
    pub fn percentiles(&self) -> Percentiles {
        let ms = |q| self.quantile_us(q) / 1_000.0;
        Percentiles { p50_ms: ms(0.5), p90_ms: ms(0.9), p99_ms: ms(0.99), samples: self.total }
    }

    /// Number of buckets held (its memory is about 24 bytes each).
    pub fn buckets(&self) -> usize {
        self.counts.len()
    }
}

fn bucket(v: u64) -> u32 {
    if v < SUB {
        return v as u32;
    }
    let exponent = 63 - v.leading_zeros(); // ≥ SUB_LOG2
    let shift = exponent - SUB_LOG2;
    let sub = (v >> shift) - SUB;
    (SUB + u64::from(shift) * SUB + sub) as u32
}

/// The bucket's lowest and highest value.
fn bounds(b: u32) -> (u64, u64) {
    let b = u64::from(b);
    if b < SUB {
        return (b, b);
    }
    let shift = (b - SUB) / SUB;
    let sub = (b - SUB) % SUB;
    let low = (SUB + sub) << shift;
    (low, low + (1 << shift) - 1)
}

fn middle(b: u32) -> f64 {
    let (low, high) = bounds(b);
    (low as f64 + high as f64) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_with_bounded_error() {
        for v in [0, 1, 63, 64, 65, 127, 128, 1_000, 12_345, 999_999, VALUE_US_MAX] {
            let (low, high) = bounds(bucket(v));
            assert!(low <= v && v <= high, "{v} not in [{low}, {high}]");
            assert!((high - low) as f64 <= v as f64 / 64.0 + 1.0, "{v}: bucket too wide");
        }
        assert_eq!(bucket(VALUE_US_MAX) as u64, bucket(VALUE_US_MAX) as u64);
        assert!(bucket(VALUE_US_MAX) < 2_000);
    }

    #[test]
    fn percentiles_are_within_two_percent() {
        let mut s = LatencySketch::default();
        for i in 1..=1_000u64 {
            s.record(i * 100);
        }
        let p = s.percentiles();
        assert_eq!(p.samples, 1_000);
        assert!((p.p50_ms - 50.0).abs() / 50.0 < 0.02, "{p:?}");
        assert!((p.p90_ms - 90.0).abs() / 90.0 < 0.02, "{p:?}");
        assert!((p.p99_ms - 99.0).abs() / 99.0 < 0.02, "{p:?}");
        assert_eq!(LatencySketch::default().quantile_us(0.5), 0.0);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut both) = (LatencySketch::default(), LatencySketch::default(), LatencySketch::default());
        for i in 0..500u64 {
            let v = (i * 7_919) % 100_000;
            if i % 3 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
            both.record(v);
        }
        a.merge(&b);
        assert_eq!(a, both);
        let json = serde_json::to_string(&a).expect("serializes");
        assert_eq!(serde_json::from_str::<LatencySketch>(&json).expect("parses"), both);
    }

    #[test]
    fn huge_values_are_clamped() {
        let mut s = LatencySketch::default();
        s.record(u64::MAX);
        assert!(s.quantile_us(1.0) <= VALUE_US_MAX as f64 * 1.02);
        assert_eq!(s.buckets(), 1);
    }
}
