//! AC@k and Avg@5 over ranked service lists.

/// The 1-based rank of the first service in `ranked` that is in `truth`.
pub fn rank_of(ranked: &[String], truth: &[String]) -> Option<usize> {
    ranked.iter().position(|s| truth.contains(s)).map(|p| p + 1)
}

/// Services in order of first appearance (candidates name a service many times).
pub fn services<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    out
}

/// Ranks of the cases of one fault kind and one method.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ranks: Vec<Option<usize>>,
}

impl Tally {
    pub fn ac(&self, k: usize) -> f64 {
        if self.ranks.is_empty() {
            return 0.0;
        }
        self.ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / self.ranks.len() as f64
    }

    /// Mean of AC@1..=AC@5.
    pub fn avg5(&self) -> f64 {
        (1..=5).map(|k| self.ac(k)).sum::<f64>() / 5.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics() {
        let t = Tally { ranks: vec![Some(1), Some(3), None, Some(6)] };
        assert_eq!((t.ac(1), t.ac(3), t.ac(5)), (0.25, 0.5, 0.5));
        assert!((t.avg5() - (0.25 + 0.25 + 0.5 + 0.5 + 0.5) / 5.0).abs() < 1e-9);
        let ranked = services(["a", "b", "a", "c"].into_iter());
        assert_eq!(ranked, ["a", "b", "c"]);
        assert_eq!(rank_of(&ranked, &["c".into(), "b".into()]), Some(2));
    }
}
