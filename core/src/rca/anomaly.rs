//! Latency anomalies: spans whose self time or duration left the baseline
//! of their (service, operation).
//!
//! A value is anomalous when the baseline has at least [`SAMPLES_MIN`]
//! samples, the value is above the baseline's p99, at least
//! [`RATIO_MIN`] × its p50, and at least [`EXCESS_MS_MIN`] above its p50
//! (so microsecond jitter on tiny spans is not flagged).

use super::baseline::{BaselineView, OpBaseline, Percentiles};
use super::tree::{Node, Tree};

/// Fewest baseline samples that make a verdict.
pub const SAMPLES_MIN: u64 = 10;
pub const RATIO_MIN: f64 = 1.5;
pub const EXCESS_MS_MIN: f64 = 1.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub node: Node,
    pub duration_ms: f64,
    pub self_ms: f64,
    /// The span's own work (or waiting outside any child) is anomalous.
    pub self_anomalous: bool,
    pub duration_anomalous: bool,
    pub baseline: OpBaseline,
}

impl Anomaly {
    /// Duration above its baseline p50, in ms (never negative).
    pub fn duration_excess_ms(&self) -> f64 {
        (self.duration_ms - self.baseline.duration.p50_ms).max(0.0)
    }
}

/// Whether `value_ms` is anomalous against `p` (see the module doc).
pub fn exceeds(value_ms: f64, p: &Percentiles) -> bool {
    p.samples >= SAMPLES_MIN && value_ms > p.p99_ms && value_ms >= RATIO_MIN * p.p50_ms && value_ms - p.p50_ms >= EXCESS_MS_MIN
}

/// Whether the baseline of a span's key can judge it at all.
pub fn has_usable_baseline(tree: &Tree, view: &BaselineView, node: Node) -> bool {
    baseline_of(tree, view, node).is_some_and(|b| b.duration.samples >= SAMPLES_MIN)
}

pub fn baseline_of<'v>(tree: &Tree, view: &'v BaselineView, node: Node) -> Option<&'v OpBaseline> {
    let s = tree.spans.get(node)?;
    view.get(&(s.service.clone(), s.operation.clone()))
}

/// Every anomalous span, by start time.
pub fn anomalies(tree: &Tree, view: &BaselineView) -> Vec<Anomaly> {
    let mut out: Vec<Anomaly> = (0..tree.len())
        .filter_map(|i| {
            let baseline = *baseline_of(tree, view, i)?;
            let duration_ms = ms(tree.spans[i].duration_ns());
            let self_ms = ms(tree.self_ns(i));
            let self_anomalous = exceeds(self_ms, &baseline.self_time);
            let duration_anomalous = exceeds(duration_ms, &baseline.duration);
            (self_anomalous || duration_anomalous).then_some(Anomaly {
                node: i,
                duration_ms,
                self_ms,
                self_anomalous,
                duration_anomalous,
                baseline,
            })
        })
        .collect();
    out.sort_by_key(|a| (tree.spans[a.node].start_ns, a.node));
    out
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn self_time_and_duration_are_judged_separately() {
        // The leaf is slow in its own work; its parent only waits for it.
        let spans =
            vec![sp("web", "root", 1, None, 0, 120), sp("api", "handler", 2, Some(1), 5, 115), sp("db", "query", 3, Some(2), 10, 110)];
        let tree = Tree::new(&spans);
        let base = view(&[("web", "root", 30.0, 10.0), ("api", "handler", 20.0, 10.0), ("db", "query", 10.0, 10.0)]);
        let found = anomalies(&tree, &base);
        let summary: Vec<(&str, bool, bool)> =
            found.iter().map(|a| (spans[a.node].operation.as_str(), a.self_anomalous, a.duration_anomalous)).collect();
        assert_eq!(summary, [("root", false, true), ("handler", false, true), ("query", true, true)]);
        assert_eq!(found[2].duration_excess_ms(), 90.0);
    }

    #[test]
    fn thin_baselines_and_tiny_excesses_are_not_anomalies() {
        let few = Percentiles { samples: SAMPLES_MIN - 1, ..pct(1.0) };
        assert!(!exceeds(100.0, &few));
        assert!(!exceeds(0.9, &pct(0.1)), "0.8 ms above p50 is jitter");
        assert!(!exceeds(14.0, &pct(10.0)), "below p99 (15)");
        assert!(exceeds(16.0, &pct(10.0)));
    }
}
