//! One request's analysis: runs every algorithm over the input model and a
//! baseline view, and shapes the answer. Pure.

use super::anomaly::{anomalies, Anomaly};
use super::baseline::BaselineView;
use super::candidate::{Candidate, Facts, Outcome};
use super::chains::chains;
use super::critical_path::{critical_path, CriticalPath};
use super::explain::explain;
use super::graph::ServiceGraph;
use super::model::{RcaInput, RcaLog};
use super::origin::{error_origins, Origin};
use super::rank::rank;
use super::result::{AnomalyView, CounterfactualView, CriticalPathView, ErrorOriginView, LogRef, PathStepView, RcaResult, SpanRef};
use super::tree::{Node, Tree};
use crate::query::format_rfc3339_nanos;

/// At most this many counterfactuals are answered (in candidate order).
pub const COUNTERFACTUALS_MAX: usize = 5;

/// Analyses one request.
pub fn analyze(input: &RcaInput, view: &BaselineView) -> RcaResult {
    let tree = Tree::new(&input.spans);
    let path = critical_path(&tree);
    let origins = error_origins(&tree, &input.logs);
    let found = anomalies(&tree, view);
    let graph = ServiceGraph::build(&tree);
    let facts = Facts { tree: &tree, logs: &input.logs, view, path: path.as_ref(), origins: &origins, anomalies: &found, graph: &graph };
    let candidates = rank(&facts);
    let mut result = RcaResult {
        request_failed: facts.request_failed(),
        root_cause: candidates.first().cloned(),
        critical_path: path_view(&tree, path.as_ref()),
        error_origin: origins.first().map(|o| origin_view(&tree, o, &input.logs)),
        anomalies: found.iter().map(|a| anomaly_view(&tree, a)).collect(),
        dependency_graph: graph.view(),
        counterfactuals: candidates.iter().filter_map(|c| counterfactual_view(&tree, c)).take(COUNTERFACTUALS_MAX).collect(),
        chains: chains(&facts, &candidates, &input.exemplars),
        candidates,
        explanation: String::new(),
    };
    result.explanation = explain(&result);
    result
}

fn path_view(tree: &Tree, path: Option<&CriticalPath>) -> CriticalPathView {
    let Some(path) = path else { return CriticalPathView { total_ms: 0.0, steps: Vec::new() } };
    let steps = path
        .steps()
        .into_iter()
        .map(|step| {
            let (service, operation, span_id) = match tree.spans.get(step.node) {
                Some(s) => (s.service.clone(), s.operation.clone(), s.span_id.to_hex()),
                None => (String::new(), "(between traces)".to_owned(), String::new()),
            };
            PathStepView { service, operation, span_id, self_ms: ms(step.on_path_ns), start_offset_ms: ms(step.first_ns - path.start_ns) }
        })
        .collect();
    CriticalPathView { total_ms: ms(path.total_ns), steps }
}

fn origin_view(tree: &Tree, origin: &Origin, logs: &[RcaLog]) -> ErrorOriginView {
    let span = &tree.spans[origin.node];
    let logs: Vec<LogRef> = origin
        .logs
        .iter()
        .map(|&(i, matched)| {
            let l = &logs[i];
            LogRef {
                service: l.service.clone(),
                timestamp: format_rfc3339_nanos(l.time_ns),
                severity: l.severity,
                body: l.body.clone(),
                span_id: l.span_id.map(|s| s.to_hex()).unwrap_or_default(),
                matched,
            }
        })
        .collect();
    let message = if span.message.is_empty() { logs.first().map(|l| l.body.clone()).unwrap_or_default() } else { span.message.clone() };
    ErrorOriginView {
        service: span.service.clone(),
        operation: span.operation.clone(),
        span_id: span.span_id.to_hex(),
        trace_id: span.trace_id.to_hex(),
        message,
        reaches_root: origin.reaches_root,
        logs,
    }
}

fn anomaly_view(tree: &Tree, a: &Anomaly) -> AnomalyView {
    let span = &tree.spans[a.node];
    let exceeds = [(a.duration_anomalous, "duration"), (a.self_anomalous, "self_time")].into_iter().filter(|(on, _)| *on).map(|(_, n)| n);
    AnomalyView {
        service: span.service.clone(),
        operation: span.operation.clone(),
        span_id: span.span_id.to_hex(),
        duration_ms: a.duration_ms,
        self_ms: a.self_ms,
        exceeds: exceeds.collect(),
        baseline: a.baseline.duration,
        self_baseline: a.baseline.self_time,
    }
}

fn counterfactual_view(tree: &Tree, c: &Candidate) -> Option<CounterfactualView> {
    let name = format!("{} {}", c.service, c.operation);
    match &c.outcome {
        Outcome::None => None,
        Outcome::Latency { p50_ns, actual_ns, retimed } => {
            let calls = if c.nodes.len() > 1 { format!(" (each of its {} calls)", c.nodes.len()) } else { String::new() };
            let (total, counterfactual) = (ms(retimed.total_ns), ms(retimed.counterfactual_ns));
            Some(CounterfactualView::Latency {
                statement: format!(
                    "if {name} had taken its baseline p50 of {:.1} ms{calls} instead of {:.1} ms, the request would have taken {counterfactual:.1} ms instead of {total:.1} ms",
                    ms(*p50_ns),
                    ms(*actual_ns),
                ),
                service: c.service.clone(),
                operation: c.operation.clone(),
                span_ids: c.nodes.iter().map(|&n| tree.spans[n].span_id.to_hex()).collect(),
                actual_ms: ms(*actual_ns),
                baseline_p50_ms: ms(*p50_ns),
                total_ms: total,
                counterfactual_total_ms: counterfactual,
                saved_ms: ms(retimed.total_ns - retimed.counterfactual_ns.min(retimed.total_ns)),
            })
        }
        Outcome::Failure { origin, spared } => {
            let request_would_succeed = spared.iter().any(|&n| tree.parent(n).is_none());
            let statement = failure_statement(tree, &name, spared, request_would_succeed);
            Some(CounterfactualView::Failure {
                service: c.service.clone(),
                operation: c.operation.clone(),
                statement,
                span_id: tree.spans[*origin].span_id.to_hex(),
                spared: spared.len(),
                spared_spans: spared.iter().map(|&n| span_ref(tree, n)).collect(),
                request_would_succeed,
            })
        }
    }
}

fn failure_statement(tree: &Tree, name: &str, spared: &[Node], request_would_succeed: bool) -> String {
    if spared.is_empty() {
        return format!("if {name} had not failed, no other span would have been spared: no failing caller depends on it alone");
    }
    let names: Vec<String> = spared.iter().map(|&n| format!("{} {}", tree.spans[n].service, tree.spans[n].operation)).collect();
    let outcome = if request_would_succeed { "; the request would not have failed" } else { "" };
    format!("if {name} had not failed, these {} spans would not have failed: {}{outcome}", spared.len(), names.join(", "))
}

fn span_ref(tree: &Tree, n: Node) -> SpanRef {
    let s = &tree.spans[n];
    SpanRef { service: s.service.clone(), operation: s.operation.clone(), span_id: s.span_id.to_hex() }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1_000_000.0
}

#[cfg(test)]
#[path = "analyze_test.rs"]
mod tests;
