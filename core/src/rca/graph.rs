//! The service dependency graph of a session (petgraph): an edge A → B for
//! every call from service A into service B, with call and error counts and
//! the latency the caller saw.
//!
//! A call is a span whose parent belongs to another service (latency: the
//! parent's duration when the parent is a client/producer span, else the
//! child's own), or a client/producer span with no child in another
//! service but a named peer (an uninstrumented database or API): an edge
//! to that peer.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};
use serde::Serialize;

use super::tree::{Node, Tree};
use crate::query::SpanKindView;

/// Calls over one edge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeStats {
    pub calls: u64,
    /// Calls whose callee span failed.
    pub errors: u64,
    /// Latency of each call as the caller saw it (ns).
    pub latencies_ns: Vec<u64>,
}

#[derive(Debug)]
pub struct ServiceGraph {
    pub graph: DiGraph<String, EdgeStats>,
    index: BTreeMap<String, NodeIndex>,
}

/// The JSON shape: nodes sorted, edges sorted by (from, to).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphView {
    pub nodes: Vec<String>,
    pub edges: Vec<EdgeView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeView {
    pub from: String,
    pub to: String,
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub max_ms: f64,
}

impl ServiceGraph {
    pub fn build(tree: &Tree) -> Self {
        let mut g = Self { graph: DiGraph::new(), index: BTreeMap::new() };
        for (i, span) in tree.spans.iter().enumerate() {
            g.node(&span.service);
            if let Some(p) = tree.parent(i) {
                let parent = &tree.spans[p];
                if parent.service != span.service {
                    let caller_view = matches!(parent.kind, SpanKindView::Client | SpanKindView::Producer);
                    let latency = if caller_view { parent.duration_ns() } else { span.duration_ns() };
                    g.add_call(&parent.service, &span.service, span.is_error, latency);
                }
            }
            if let Some(peer) = uninstrumented_peer(tree, i) {
                g.add_call(&span.service, peer, span.is_error, span.duration_ns());
            }
        }
        g
    }

    /// Services that (transitively) call `service`: whose requests its
    /// faults can reach. Sorted.
    pub fn affected_callers(&self, service: &str) -> Vec<String> {
        let Some(&start) = self.index.get(service) else { return Vec::new() };
        let reversed = Reversed(&self.graph);
        let mut dfs = Dfs::new(reversed, start);
        let mut out = BTreeSet::new();
        while let Some(n) = dfs.next(reversed) {
            if n != start {
                out.insert(self.graph[n].clone());
            }
        }
        out.into_iter().collect()
    }

    pub fn view(&self) -> GraphView {
        let nodes = self.index.keys().cloned().collect();
        let mut edges: Vec<EdgeView> = self
            .graph
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = self.graph.edge_endpoints(e)?;
                let stats = &self.graph[e];
                let mut sorted = stats.latencies_ns.clone();
                sorted.sort_unstable();
                Some(EdgeView {
                    from: self.graph[a].clone(),
                    to: self.graph[b].clone(),
                    calls: stats.calls,
                    errors: stats.errors,
                    p50_ms: to_ms(median(&sorted)),
                    max_ms: to_ms(sorted.last().copied().unwrap_or(0)),
                })
            })
            .collect();
        edges.sort_by(|x, y| (&x.from, &x.to).cmp(&(&y.from, &y.to)));
        GraphView { nodes, edges }
    }

    fn node(&mut self, name: &str) -> NodeIndex {
        if let Some(&n) = self.index.get(name) {
            return n;
        }
        let n = self.graph.add_node(name.to_owned());
        self.index.insert(name.to_owned(), n);
        n
    }

    fn add_call(&mut self, from: &str, to: &str, failed: bool, latency_ns: u64) {
        let (a, b) = (self.node(from), self.node(to));
        let e = match self.graph.find_edge(a, b) {
            Some(e) => e,
            None => self.graph.add_edge(a, b, EdgeStats::default()),
        };
        let stats = &mut self.graph[e];
        stats.calls += 1;
        stats.errors += u64::from(failed);
        stats.latencies_ns.push(latency_ns);
    }
}

/// The named peer of a client/producer span none of whose children runs in
/// another service (so the callee sent no spans of its own).
pub fn uninstrumented_peer<'t>(tree: &'t Tree, node: Node) -> Option<&'t str> {
    let span = &tree.spans[node];
    let peer = span.peer.as_deref().filter(|p| *p != span.service)?;
    let callee_traced = tree.children(node).iter().any(|&c| tree.spans[c].service != span.service);
    (!callee_traced).then_some(peer)
}

/// Lower median (nearest rank) of sorted values; 0 for none.
fn median(sorted: &[u64]) -> u64 {
    sorted.get(sorted.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

fn to_ms(ns: u64) -> f64 {
    ns as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn edges_count_calls_errors_and_caller_latency() {
        let mut db_client = kind(sp("payments", "SELECT", 5, Some(3), 30, 45), SpanKindView::Client);
        db_client.peer = Some("postgresql".into());
        let spans = vec![
            sp("checkout", "POST /checkout", 1, None, 0, 100),
            kind(sp("checkout", "charge", 2, Some(1), 10, 90), SpanKindView::Client),
            fail(kind(sp("payments", "POST /charge", 3, Some(2), 20, 80), SpanKindView::Server), "db down"),
            kind(sp("checkout", "charge", 4, Some(1), 91, 99), SpanKindView::Client),
            fail(db_client, "timeout"),
            kind(sp("payments", "POST /charge", 6, Some(4), 92, 98), SpanKindView::Server),
        ];
        let tree = Tree::new(&spans);
        let g = ServiceGraph::build(&tree);
        let view = serde_json::to_value(g.view()).expect("serializes");
        assert_eq!(
            view,
            json!({
                "nodes": ["checkout", "payments", "postgresql"],
                "edges": [
                    {"from": "checkout", "to": "payments", "calls": 2, "errors": 1, "p50_ms": 8.0, "max_ms": 80.0},
                    {"from": "payments", "to": "postgresql", "calls": 1, "errors": 1, "p50_ms": 15.0, "max_ms": 15.0}
                ]
            })
        );
        assert_eq!(g.affected_callers("postgresql"), ["checkout", "payments"]);
        assert!(g.affected_callers("nobody").is_empty());
    }
}
