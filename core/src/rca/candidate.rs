//! A root-cause candidate of one request, its evidence, and the facts
//! ranking reads: the types `rank.rs` builds and `causal.rs`, `chains.rs`
//! and `analyze.rs` read.

use serde::Serialize;

use super::anomaly::Anomaly;
use super::baseline::{BaselineView, Percentiles};
use super::counterfactual::Retimed;
use super::critical_path::CriticalPath;
use super::graph::ServiceGraph;
use super::model::RcaLog;
use super::origin::Origin;
use super::tree::{Node, Tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateKind {
    Error,
    Latency,
    Network,
    ErrorLog,
    CriticalPath,
    /// Per incident: every operation of a service slowed (CPU contention,
    /// GC, a saturated pool): the service, not one code path.
    ServiceLatency,
    /// Per incident: a log line a (service, operation) used to write is
    /// gone (a code path no longer taken), with no failure of its own.
    LogChange,
}

impl CandidateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Latency => "latency",
            Self::Network => "network",
            Self::ErrorLog => "error_log",
            Self::CriticalPath => "critical_path",
            Self::ServiceLatency => "service_latency",
            Self::LogChange => "log_change",
        }
    }
}

/// One fact behind a candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// `span_failure`, `propagation`, `error_log`, `self_time_anomaly`,
    /// `duration_anomaly`, `critical_path`, `counterfactual`, `caveat`,
    /// `affected_callers`, `no_baseline`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// One line for people.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Percentiles>,
}

impl Evidence {
    pub(crate) fn line(kind: &'static str, detail: String) -> Self {
        Self { kind, detail, span_id: None, value_ms: None, baseline: None }
    }
}

/// What a candidate's counterfactual found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    None,
    /// The candidate's spans at their baseline p50 duration.
    Latency {
        p50_ns: u64,
        actual_ns: u64,
        retimed: Retimed,
    },
    /// The origin had not failed.
    Failure {
        origin: Node,
        spared: Vec<Node>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub service: String,
    pub operation: String,
    pub kind: CandidateKind,
    pub score: f64,
    pub evidence: Vec<Evidence>,
    /// The spans behind the candidate, by start.
    #[serde(skip)]
    pub nodes: Vec<Node>,
    #[serde(skip)]
    pub outcome: Outcome,
    /// Tie-break (lower first).
    #[serde(skip)]
    pub(crate) order: u64,
}

/// What ranking reads (all computed before).
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub tree: &'a Tree<'a>,
    pub logs: &'a [RcaLog],
    pub view: &'a BaselineView,
    pub path: Option<&'a CriticalPath>,
    pub origins: &'a [Origin],
    pub anomalies: &'a [Anomaly],
    pub graph: &'a ServiceGraph,
}

impl Facts<'_> {
    /// A root span failed: the caller of the flow saw an error.
    pub fn request_failed(&self) -> bool {
        self.tree.roots().iter().any(|&r| self.tree.spans[r].is_error)
    }

    pub(crate) fn span_id(&self, node: Node) -> String {
        self.tree.spans[node].span_id.to_hex()
    }

    pub(crate) fn name(&self, node: Node) -> String {
        let s = &self.tree.spans[node];
        format!("{} {}", s.service, s.operation)
    }
}
