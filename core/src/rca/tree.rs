//! The span trees of a session: parent and children links, depth, and each
//! span's self time. Spans whose parent is missing become roots; parent
//! cycles (malformed input) are broken at their first span, so every walk
//! over the tree terminates.
//!
//! Nodes are span indexes `0..n`. When the session holds several roots (a
//! user flow over several traces, or a trace whose root is missing), node
//! `n` is a virtual root spanning them all, so every analysis has a single
//! top: [`Tree::top`].

use std::collections::HashMap;

use super::model::RcaSpan;
use crate::model::{SpanId, TraceId};

/// A node of the tree: a span index, or [`Tree::virtual_root`].
pub type Node = usize;

#[derive(Debug)]
pub struct Tree<'a> {
    pub spans: &'a [RcaSpan],
    parent: Vec<Option<Node>>,
    /// Per node (and the virtual root last): children by (start, end, index).
    children: Vec<Vec<Node>>,
    depth: Vec<u32>,
    self_ns: Vec<u64>,
}

impl<'a> Tree<'a> {
    pub fn new(spans: &'a [RcaSpan]) -> Self {
        let n = spans.len();
        let by_id: HashMap<(TraceId, SpanId), usize> = spans.iter().enumerate().rev().map(|(i, s)| ((s.trace_id, s.span_id), i)).collect();
        let mut parent: Vec<Option<Node>> = spans.iter().map(|s| s.parent_id.and_then(|p| by_id.get(&(s.trace_id, p)).copied())).collect();
        let depth = break_cycles_and_measure(&mut parent);
        let mut children = vec![Vec::new(); n + 1];
        for (i, p) in parent.iter().enumerate() {
            children[p.unwrap_or(n)].push(i);
        }
        for list in &mut children {
            list.sort_by_key(|&i| (spans[i].start_ns, spans[i].end_ns, i));
        }
        let mut tree = Self { spans, parent, children, depth, self_ns: Vec::new() };
        tree.self_ns = (0..n).map(|i| tree.compute_self_ns(i)).collect();
        tree
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// The node standing for "all roots together".
    pub fn virtual_root(&self) -> Node {
        self.spans.len()
    }

    pub fn is_virtual(&self, node: Node) -> bool {
        node == self.virtual_root()
    }

    /// The single root, else the virtual root; `None` without spans.
    pub fn top(&self) -> Option<Node> {
        match self.roots() {
            [] => None,
            [only] => Some(*only),
            _ => Some(self.virtual_root()),
        }
    }

    /// Spans without a parent in the session, by start time.
    pub fn roots(&self) -> &[Node] {
        &self.children[self.virtual_root()]
    }

    /// Children by start time (the roots for the virtual root).
    pub fn children(&self, node: Node) -> &[Node] {
        &self.children[node]
    }

    pub fn parent(&self, node: Node) -> Option<Node> {
        self.parent.get(node).copied().flatten()
    }

    /// 0 for a root.
    pub fn depth(&self, node: Node) -> u32 {
        self.depth.get(node).copied().unwrap_or(0)
    }

    /// Start and end (Unix ns); the virtual root spans all roots.
    pub fn interval(&self, node: Node) -> (u64, u64) {
        if self.is_virtual(node) {
            let roots = self.roots();
            let start = roots.iter().map(|&r| self.spans[r].start_ns).min().unwrap_or(0);
            let end = roots.iter().map(|&r| self.spans[r].end_ns).max().unwrap_or(0);
            return (start, end.max(start));
        }
        (self.spans[node].start_ns, self.spans[node].end_ns)
    }

    /// Duration minus the union of its children's intervals (clipped to
    /// its own): the time no child accounts for. Concurrent children are
    /// counted once.
    pub fn self_ns(&self, node: Node) -> u64 {
        self.self_ns[node]
    }

    /// Ancestors from the parent up to the root.
    pub fn ancestors(&self, node: Node) -> impl Iterator<Item = Node> + '_ {
        std::iter::successors(self.parent(node), move |&n| self.parent(n))
    }

    fn compute_self_ns(&self, node: Node) -> u64 {
        let (start, end) = self.interval(node);
        let clipped = self.children(node).iter().map(|&c| {
            let (cs, ce) = self.interval(c);
            (cs.clamp(start, end), ce.clamp(start, end))
        });
        (end - start).saturating_sub(union_ns(clipped))
    }
}

/// Length of the union of intervals given in ascending start order.
pub fn union_ns(intervals: impl Iterator<Item = (u64, u64)>) -> u64 {
    let mut total = 0;
    let mut current: Option<(u64, u64)> = None;
    for (s, e) in intervals {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    total + current.map_or(0, |(s, e)| e - s)
}

/// Depths from the roots; a span not reachable from any root sits on a
/// parent cycle: it is made a root, which breaks that cycle.
fn break_cycles_and_measure(parent: &mut [Option<Node>]) -> Vec<u32> {
    let n = parent.len();
    let mut children = vec![Vec::new(); n];
    for (i, p) in parent.iter().enumerate() {
        if let Some(p) = *p {
            children[p].push(i);
        }
    }
    let mut depth = vec![u32::MAX; n];
    let visit = |from: Node, depth: &mut [u32]| {
        let mut stack = vec![(from, 0u32)];
        while let Some((node, d)) = stack.pop() {
            depth[node] = d;
            stack.extend(children[node].iter().filter(|&&c| depth[c] == u32::MAX).map(|&c| (c, d + 1)));
        }
    };
    let roots: Vec<Node> = (0..n).filter(|&i| parent[i].is_none()).collect();
    for root in roots {
        visit(root, &mut depth);
    }
    for i in 0..n {
        if depth[i] == u32::MAX {
            parent[i] = None;
            visit(i, &mut depth);
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn self_time_counts_concurrent_children_once() {
        // root 0..100; a 10..60 and b 20..50 overlap; c 70..80; d pokes out 95..120.
        let spans = vec![
            sp("web", "root", 1, None, 0, 100),
            sp("a", "x", 2, Some(1), 10, 60),
            sp("b", "y", 3, Some(1), 20, 50),
            sp("c", "z", 4, Some(1), 70, 80),
            sp("d", "w", 5, Some(1), 95, 120),
        ];
        let tree = Tree::new(&spans);
        assert_eq!(tree.self_ns(0), ms(100 - 50 - 10 - 5));
        assert_eq!(tree.self_ns(1), ms(50));
        assert_eq!(tree.top(), Some(0));
        assert_eq!(tree.children(0), &[1, 2, 3, 4]);
        assert_eq!((tree.depth(0), tree.depth(2)), (0, 1));
    }

    #[test]
    fn missing_parents_make_roots_and_a_virtual_top() {
        let spans = vec![sp("a", "r1", 1, None, 0, 10), sp("b", "orphan", 2, Some(9), 20, 30)];
        let tree = Tree::new(&spans);
        assert_eq!(tree.roots(), &[0, 1]);
        assert_eq!(tree.top(), Some(2));
        assert_eq!(tree.interval(2), (ms(0), ms(30)));
    }

    #[test]
    fn parent_cycles_are_broken() {
        let spans = vec![sp("a", "x", 1, Some(2), 0, 10), sp("a", "y", 2, Some(1), 1, 9), sp("a", "z", 3, Some(3), 0, 1)];
        let tree = Tree::new(&spans);
        assert_eq!(tree.roots().len(), 2, "one root per cycle");
        assert_eq!(tree.children(0).len() + tree.children(1).len(), 1, "the cycle's other span hangs below its new root");
        assert!(tree.ancestors(1).count() <= 1);
    }

    #[test]
    fn union_merges_touching_and_nested_intervals() {
        assert_eq!(union_ns([(0, 10), (5, 8), (10, 20), (30, 31)].into_iter()), 21);
        assert_eq!(union_ns(std::iter::empty()), 0);
    }
}
