//! The answer of a request's RCA: what `analyze.rs` builds and
//! `explain.rs` turns into text.

use serde::Serialize;

use super::baseline::Percentiles;
use super::candidate::Candidate;
use super::chains::Chain;
use super::graph::GraphView;
use super::origin::LogMatch;

/// The computed answer (the API adds the session's ID and state).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RcaResult {
    /// A root span failed: the caller of the flow saw an error.
    pub request_failed: bool,
    /// The first candidate, if any.
    pub root_cause: Option<Candidate>,
    /// Best first.
    pub candidates: Vec<Candidate>,
    pub critical_path: CriticalPathView,
    /// The best error origin, if a span failed.
    pub error_origin: Option<ErrorOriginView>,
    /// By start time.
    pub anomalies: Vec<AnomalyView>,
    pub dependency_graph: GraphView,
    pub counterfactuals: Vec<CounterfactualView>,
    /// By weight, heaviest first.
    pub chains: Vec<Chain>,
    /// Deterministic text built from the fields above.
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriticalPathView {
    pub total_ms: f64,
    /// One per span on the path, by first appearance on it.
    pub steps: Vec<PathStepView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathStepView {
    /// Empty, with operation `(between traces)`, for time between the
    /// traces of a multi-trace session.
    pub service: String,
    pub operation: String,
    pub span_id: String,
    /// Time of the path attributed to this span itself.
    pub self_ms: f64,
    /// Where the span first appears on the path, from the path's start.
    pub start_offset_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorOriginView {
    pub service: String,
    pub operation: String,
    pub span_id: String,
    pub trace_id: String,
    /// Status message, exception message, or the first supporting log.
    pub message: String,
    /// The failure reached a root span through failing callers.
    pub reaches_root: bool,
    pub logs: Vec<LogRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRef {
    pub service: String,
    pub timestamp: String,
    pub severity: i32,
    pub body: String,
    pub span_id: String,
    pub matched: LogMatch,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyView {
    pub service: String,
    pub operation: String,
    pub span_id: String,
    pub duration_ms: f64,
    pub self_ms: f64,
    /// `duration` and/or `self_time`.
    pub exceeds: Vec<&'static str>,
    /// Of the duration.
    pub baseline: Percentiles,
    pub self_baseline: Percentiles,
}

/// "What if": recomputed on the actual trees.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CounterfactualView {
    Latency {
        service: String,
        operation: String,
        statement: String,
        span_ids: Vec<String>,
        /// Summed duration of those spans.
        actual_ms: f64,
        /// What each was set to.
        baseline_p50_ms: f64,
        total_ms: f64,
        counterfactual_total_ms: f64,
        saved_ms: f64,
    },
    Failure {
        service: String,
        operation: String,
        statement: String,
        span_id: String,
        /// Spans that would not have failed.
        spared: usize,
        spared_spans: Vec<SpanRef>,
        /// The root span would not have failed.
        request_would_succeed: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanRef {
    pub service: String,
    pub operation: String,
    pub span_id: String,
}
