//! The wall-clock critical path of a span tree, aware of concurrency.
//!
//! Definition. Walk a span backwards from its end with a cursor `t`. Its
//! candidate children are those that started before `t` (each clipped to
//! the span's interval and to `t`). If there is none, the span itself
//! accounts for `[start, t)`. Otherwise the path follows the candidate that
//! ends last (ties: the earlier start): the span accounts for the gap
//! between that child's (clipped) end and `t`, the child is walked the same
//! way from its clipped end, and the span's cursor moves to the child's
//! start. So a stretch covered by several concurrent children is counted
//! once, on the child that held the parent longest, and a child that
//! overlaps the one after it still accounts for its earlier part.
//!
//! Invariant: the segments tile the top node's interval exactly: they are
//! disjoint, in time order, and their lengths sum to its duration.

use std::collections::HashMap;

use super::tree::{Node, Tree};

/// One stretch of wall-clock time attributed to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathSegment {
    pub node: Node,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// A node's share of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathStep {
    pub node: Node,
    /// Start of the node's first segment.
    pub first_ns: u64,
    /// Sum of the node's segments.
    pub on_path_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriticalPath {
    pub top: Node,
    pub start_ns: u64,
    pub total_ns: u64,
    /// In time order, tiling `start_ns .. start_ns + total_ns`.
    pub segments: Vec<PathSegment>,
}

impl CriticalPath {
    /// Time on the path attributed to `node` itself.
    pub fn on_path_ns(&self, node: Node) -> u64 {
        self.segments.iter().filter(|s| s.node == node).map(|s| s.end_ns - s.start_ns).sum()
    }

    /// One step per node on the path, by first appearance.
    pub fn steps(&self) -> Vec<PathStep> {
        let mut steps: Vec<PathStep> = Vec::new();
        let mut index: HashMap<Node, usize> = HashMap::new();
        for seg in &self.segments {
            let len = seg.end_ns - seg.start_ns;
            match index.get(&seg.node) {
                Some(&i) => steps[i].on_path_ns += len,
                None => {
                    index.insert(seg.node, steps.len());
                    steps.push(PathStep { node: seg.node, first_ns: seg.start_ns, on_path_ns: len });
                }
            }
        }
        steps
    }
}

/// The critical path of the tree's top node over the spans' own times.
pub fn critical_path(tree: &Tree) -> Option<CriticalPath> {
    let top = tree.top()?;
    Some(critical_path_over(tree, top, &|n| Some(tree.interval(n))))
}

/// The critical path of `top` with node intervals given by `interval`
/// (`None`: the node is left out, e.g. a subtree a counterfactual removed).
pub fn critical_path_over(tree: &Tree, top: Node, interval: &dyn Fn(Node) -> Option<(u64, u64)>) -> CriticalPath {
    let (start_ns, end_ns) = interval(top).unwrap_or((0, 0));
    let mut prepared: HashMap<Node, Prepared> = HashMap::new();
    let mut reversed: Vec<PathSegment> = Vec::new();
    // (node, its start, cursor): walk `node` backwards from `cursor`.
    let mut stack: Vec<(Node, u64, u64)> = vec![(top, start_ns, end_ns)];
    while let Some((node, node_start, t)) = stack.pop() {
        let kids = prepared.entry(node).or_insert_with(|| Prepared::new(tree, node, (node_start, t), interval));
        let Some((child, child_start, child_end)) = kids.last_before(t) else {
            if node_start < t {
                reversed.push(PathSegment { node, start_ns: node_start, end_ns: t });
            }
            continue;
        };
        if child_end < t {
            reversed.push(PathSegment { node, start_ns: child_end, end_ns: t });
        }
        // Popped in reverse: the child's walk first, then the rest of the parent.
        stack.push((node, node_start, child_start));
        stack.push((child, child_start, child_end));
    }
    reversed.reverse();
    let path = CriticalPath { top, start_ns, total_ns: end_ns - start_ns, segments: coalesce(reversed) };
    debug_assert!(tiles(&path), "critical path segments must tile the top interval");
    path
}

/// A node's children clipped to its interval, by start, with the running
/// index of the latest end (so "the child ending last among those that
/// started before t" is a binary search).
struct Prepared {
    /// (start, end, node), non-empty, by (start, end).
    kids: Vec<(u64, u64, Node)>,
    /// `latest[i]`: index in `kids[..=i]` of the latest end (first on ties).
    latest: Vec<usize>,
}

impl Prepared {
    fn new(tree: &Tree, node: Node, (start, end): (u64, u64), interval: &dyn Fn(Node) -> Option<(u64, u64)>) -> Self {
        let mut kids: Vec<(u64, u64, Node)> = tree
            .children(node)
            .iter()
            .filter_map(|&c| interval(c).map(|(cs, ce)| (cs.clamp(start, end), ce.clamp(start, end), c)))
            .filter(|(cs, ce, _)| cs < ce)
            .collect();
        kids.sort_unstable();
        let mut latest: Vec<usize> = Vec::with_capacity(kids.len());
        for i in 0..kids.len() {
            let best = match latest.last() {
                Some(&j) if kids[j].1 >= kids[i].1 => j,
                _ => i,
            };
            latest.push(best);
        }
        Self { kids, latest }
    }

    /// Among children that started before `t`: the one ending last, clipped
    /// to end at `t` at the latest.
    fn last_before(&self, t: u64) -> Option<(Node, u64, u64)> {
        let started = self.kids.partition_point(|k| k.0 < t);
        let (start, end, node) = self.kids[*self.latest.get(started.checked_sub(1)?)?];
        Some((node, start, end.min(t)))
    }
}

fn coalesce(segments: Vec<PathSegment>) -> Vec<PathSegment> {
    let mut out: Vec<PathSegment> = Vec::with_capacity(segments.len());
    for seg in segments {
        match out.last_mut() {
            Some(last) if last.node == seg.node && last.end_ns == seg.start_ns => last.end_ns = seg.end_ns,
            _ => out.push(seg),
        }
    }
    out
}

/// The invariant of the module doc.
pub fn tiles(path: &CriticalPath) -> bool {
    let mut at = path.start_ns;
    for seg in &path.segments {
        if seg.start_ns != at || seg.end_ns <= seg.start_ns {
            return false;
        }
        at = seg.end_ns;
    }
    at == path.start_ns + path.total_ns
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn path_of(spans: &[crate::rca::model::RcaSpan]) -> (CriticalPath, Vec<(String, u64)>) {
        let tree = Tree::new(spans);
        let path = critical_path(&tree).expect("has spans");
        assert!(tiles(&path), "{path:?}");
        let named = path
            .segments
            .iter()
            .map(|s| {
                let name = if tree.is_virtual(s.node) { "(idle)".to_owned() } else { spans[s.node].operation.clone() };
                (name, (s.end_ns - s.start_ns) / MS_NS)
            })
            .collect();
        (path, named)
    }

    fn named(v: &[(&str, u64)]) -> Vec<(String, u64)> {
        v.iter().map(|(n, d)| ((*n).to_owned(), *d)).collect()
    }

    #[test]
    fn sequential_children_are_all_on_the_path() {
        let spans = vec![sp("web", "root", 1, None, 0, 100), sp("a", "a", 2, Some(1), 10, 40), sp("b", "b", 3, Some(1), 50, 90)];
        let (path, segs) = path_of(&spans);
        assert_eq!(path.total_ns, ms(100));
        assert_eq!(segs, named(&[("root", 10), ("a", 30), ("root", 10), ("b", 40), ("root", 10)]));
    }

    #[test]
    fn slow_leaf_under_concurrent_siblings_is_not_double_counted() {
        // Fan-out: three concurrent calls; `slow` ends last and holds the root.
        let spans = vec![
            sp("web", "root", 1, None, 0, 100),
            sp("a", "fast1", 2, Some(1), 5, 30),
            sp("b", "slow", 3, Some(1), 5, 95),
            sp("c", "fast2", 4, Some(1), 5, 40),
            sp("b", "db", 5, Some(3), 10, 90),
        ];
        let (path, segs) = path_of(&spans);
        assert_eq!(segs, named(&[("root", 5), ("slow", 5), ("db", 80), ("slow", 5), ("root", 5)]));
        let total: u64 = path.steps().iter().map(|s| s.on_path_ns).sum();
        assert_eq!(total, ms(100), "summing child durations would give 25+90+35 = 150");
        assert_eq!(path.on_path_ns(1), 0, "fast1 is hidden behind slow");
    }

    #[test]
    fn overlapping_child_keeps_its_earlier_part() {
        // a 10..60 overlaps b 50..100: b ends last; before b started, a held the root.
        let spans = vec![sp("web", "root", 1, None, 0, 100), sp("x", "a", 2, Some(1), 10, 60), sp("y", "b", 3, Some(1), 50, 100)];
        let (_, segs) = path_of(&spans);
        assert_eq!(segs, named(&[("root", 10), ("a", 40), ("b", 50)]));
    }

    #[test]
    fn gaps_go_to_the_parent_and_async_children_are_clipped() {
        // `late` outlives the root (fire and forget): only its part inside counts.
        let spans = vec![sp("web", "root", 1, None, 0, 50), sp("x", "a", 2, Some(1), 10, 20), sp("q", "late", 3, Some(1), 40, 500)];
        let (path, segs) = path_of(&spans);
        assert_eq!(path.total_ns, ms(50));
        assert_eq!(segs, named(&[("root", 10), ("a", 10), ("root", 20), ("late", 10)]));
    }

    #[test]
    fn several_traces_meet_under_a_virtual_root() {
        let spans = vec![sp("web", "t1", 1, None, 0, 30), sp_in(2, "web", "t2", 1, None, 50, 60)];
        let (path, segs) = path_of(&spans);
        assert_eq!(path.total_ns, ms(60));
        assert_eq!(segs, named(&[("t1", 30), ("(idle)", 20), ("t2", 10)]));
        let steps = path.steps();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[1].first_ns, ms(30));
    }

    #[test]
    fn a_deep_chain_does_not_recurse() {
        let spans: Vec<_> = (0..20_000u32).map(|i| sp("a", "op", i + 1, (i > 0).then_some(i), 0, 20_000 - u64::from(i))).collect();
        let (path, _) = path_of(&spans);
        assert_eq!(path.total_ns, ms(20_000));
        assert_eq!(path.segments.len(), 20_000);
    }
}
