//! The service dependency graph of both windows (petgraph), for causal
//! walks: who calls whom, up and down, bounded in depth.

use std::collections::{BTreeSet, VecDeque};

use petgraph::graphmap::DiGraphMap;
use petgraph::Direction;

use super::aggregate::WindowAggregate;

/// Longest walk up or down the graph.
pub const DEPTH_MAX: usize = 8;

#[derive(Debug)]
pub struct Deps<'a> {
    graph: DiGraphMap<&'a str, ()>,
}

impl<'a> Deps<'a> {
    /// Caller → callee edges of either window (self-calls left out).
    pub fn new(windows: &[&'a WindowAggregate]) -> Self {
        let mut graph = DiGraphMap::new();
        for w in windows {
            for e in &w.edges {
                if e.caller != e.callee {
                    graph.add_edge(e.caller.as_str(), e.callee.as_str(), ());
                }
            }
        }
        Self { graph }
    }

    /// Services `service` calls, directly or not, nearest first.
    pub fn downstream(&self, service: &str) -> Vec<&'a str> {
        self.walk(service, Direction::Outgoing)
    }

    /// Services that call `service`, directly or not, nearest first.
    pub fn upstream(&self, service: &str) -> Vec<&'a str> {
        self.walk(service, Direction::Incoming)
    }

    pub fn calls(&self, caller: &str, callee: &str) -> bool {
        self.graph.contains_edge(caller, callee)
    }

    fn walk(&self, service: &str, direction: Direction) -> Vec<&'a str> {
        let Some(start) = self.graph.nodes().find(|n| *n == service) else { return Vec::new() };
        let mut seen = BTreeSet::from([start]);
        let mut out = Vec::new();
        let mut queue = VecDeque::from([(start, 0)]);
        while let Some((n, depth)) = queue.pop_front() {
            if depth == DEPTH_MAX {
                continue;
            }
            for next in self.graph.neighbors_directed(n, direction) {
                if seen.insert(next) {
                    out.push(next);
                    queue.push_back((next, depth + 1));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rca::incident::aggregate::EdgeStats;

    #[test]
    fn walks_are_nearest_first_and_cycle_safe() {
        let edge =
            |a: &str, b: &str| EdgeStats { caller: a.into(), caller_operation: "call".into(), callee: b.into(), ..Default::default() };
        let w = WindowAggregate {
            edges: vec![edge("web", "api"), edge("api", "db"), edge("db", "web"), edge("api", "cache")],
            ..Default::default()
        };
        let deps = Deps::new(&[&w]);
        assert_eq!(deps.downstream("web"), ["api", "db", "cache"]);
        assert_eq!(deps.upstream("db"), ["api", "web"]);
        assert!(deps.calls("api", "db") && !deps.calls("db", "api"));
        assert!(deps.downstream("nobody").is_empty());
    }
}
