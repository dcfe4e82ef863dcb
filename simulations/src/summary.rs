//! A sweep's summary: which invariants failed on which seeds. Pure: it
//! reads the reports the runs print.

use std::collections::BTreeMap;
use std::fmt;

/// What kind of failure a report line describes, with the node and item
/// details taken out: "invariant 4 (query during faults)", "liveness", ...
pub fn classify(violation: &str) -> String {
    let head = violation.split(": ").next().unwrap_or(violation).trim();
    // "invariant 4 (query during faults, via n2)" -> "invariant 4 (query during faults)"
    match head.find(", via ") {
        Some(at) => format!("{})", &head[..at]),
        None => head.to_owned(),
    }
}

/// The violations of one run's report (the lines under "violated:"), and
/// the run's own verdicts (hung, crashed, not deterministic).
pub fn failures(report: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_violations = false;
    for line in report.lines() {
        if line.trim_start() == "violated:" {
            in_violations = true;
            continue;
        }
        if in_violations && line.starts_with("    ") {
            out.push(classify(line));
            continue;
        }
        in_violations = false;
        let t = line.trim_start();
        for verdict in ["HUNG", "the run crashed", "NOT DETERMINISTIC", "could not run", "could not start"] {
            if t.starts_with(verdict) || t.contains(&format!(": {verdict}")) {
                out.push(verdict.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Failed seeds by kind of failure.
#[derive(Debug, Default)]
pub struct Summary {
    by_kind: BTreeMap<String, Vec<u64>>,
}

impl Summary {
    /// Adds a failed seed's report.
    pub fn add(&mut self, seed: u64, report: &str) {
        let kinds = failures(report);
        if kinds.is_empty() {
            self.by_kind.entry("failed (no violation named)".into()).or_default().push(seed);
        }
        for kind in kinds {
            self.by_kind.entry(kind).or_default().push(seed);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (kind, seeds) in &self.by_kind {
            let mut seeds = seeds.clone();
            seeds.sort_unstable();
            writeln!(f, "  {kind}: {} seed(s) {seeds:?}", seeds.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_grouped_without_their_details() {
        assert_eq!(
            classify("    invariant 4 (query during faults, via n2): sim-1-2: 4 acknowledged span(s) missing"),
            "invariant 4 (query during faults)"
        );
        assert_eq!(classify("    invariant 1 (storage): olly-x: log a (sent once) is in 2 stored segments"), "invariant 1 (storage)");
        assert_eq!(classify("    liveness: no complete answer for sim-1-3"), "liveness");
    }

    #[test]
    fn a_report_names_each_kind_once() {
        let report = "seed 7 | ...\n  FAILED in 3.0 simulated s\n  violated:\n    invariant 2: session a live on n1\n    invariant 2: session b live on n2\n    liveness: x\nsimulated-ms 3000\n";
        assert_eq!(failures(report), ["invariant 2", "liveness"]);
        assert_eq!(failures("seed 8\n  HUNG: no result after 180 s\n"), ["HUNG"]);
    }

    #[test]
    fn the_summary_lists_seeds_per_kind() {
        let mut s = Summary::default();
        s.add(9, "  violated:\n    liveness: x\n");
        s.add(3, "  violated:\n    liveness: y\n    invariant 2: z\n");
        assert_eq!(s.to_string(), "  invariant 2: 1 seed(s) [3]\n  liveness: 2 seed(s) [3, 9]\n");
    }
}
