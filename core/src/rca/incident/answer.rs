//! The answers of per-incident RCA and of window anomaly analysis, built
//! from two window aggregates, with their deterministic explanations. Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::aggregate::WindowAggregate;
use super::blame::{rank_changes, IncidentCandidate};
use super::changes::{edge_changes, op_changes, EdgeChange, OpChange, Pair};
use super::deps::Deps;
use super::sketch::LatencySketch;
use crate::rca::{EdgeView, GraphView};

/// Changes listed in an answer at most (the most departed first).
pub const CHANGES_MAX: usize = 50;

/// Per-incident RCA (the API adds the windows and `partial`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentResult {
    pub sessions: Pair<u64>,
    /// Sessions whose root span failed, per session.
    pub failed_session_rate: Pair<f64>,
    /// The first candidate, if any.
    pub root_cause: Option<IncidentCandidate>,
    /// Best first.
    pub candidates: Vec<IncidentCandidate>,
    /// Operations that left their baseline.
    pub changes: Vec<OpChange>,
    /// Calls whose client side, server side or caller-only failures changed.
    pub edge_changes: Vec<EdgeChange>,
    /// The incident window's services and calls.
    pub dependency_graph: GraphView,
    pub explanation: String,
}

/// Window anomalies (the API adds the windows and `partial`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyReport {
    pub sessions: Pair<u64>,
    pub failed_session_rate: Pair<f64>,
    /// Operations whose error rate, latency or logs left their baseline,
    /// most departed first.
    pub anomalies: Vec<OpChange>,
    pub edge_anomalies: Vec<EdgeChange>,
    pub explanation: String,
}

/// Per-incident RCA of `inc` against `base`.
pub fn incident(base: &WindowAggregate, inc: &WindowAggregate) -> IncidentResult {
    let ops = op_changes(base, inc);
    let edges = edge_changes(base, inc);
    let deps = Deps::new(&[base, inc]);
    let candidates = rank_changes(inc, &ops, &edges, &deps);
    let mut result = IncidentResult {
        sessions: Pair { baseline: base.sessions, incident: inc.sessions },
        failed_session_rate: failed_rate(base, inc),
        root_cause: candidates.first().cloned(),
        candidates,
        changes: departed(ops),
        edge_changes: departed_edges(edges),
        dependency_graph: graph(inc),
        explanation: String::new(),
    };
    result.explanation = explain_incident(&result);
    result
}

/// The anomalies of `inc` against `base`.
pub fn anomalies(base: &WindowAggregate, inc: &WindowAggregate) -> AnomalyReport {
    let mut report = AnomalyReport {
        sessions: Pair { baseline: base.sessions, incident: inc.sessions },
        failed_session_rate: failed_rate(base, inc),
        anomalies: departed(op_changes(base, inc)),
        edge_anomalies: departed_edges(edge_changes(base, inc)),
        explanation: String::new(),
    };
    report.explanation = explain_anomalies(&report);
    report
}

fn failed_rate(base: &WindowAggregate, inc: &WindowAggregate) -> Pair<f64> {
    let rate = |w: &WindowAggregate| w.failed_sessions as f64 / w.sessions.max(1) as f64;
    Pair { baseline: rate(base), incident: rate(inc) }
}

fn departed(mut ops: Vec<OpChange>) -> Vec<OpChange> {
    ops.retain(|c| !c.departures.is_empty());
    ops.sort_by(|a, b| {
        b.departures.len().cmp(&a.departures.len()).then_with(|| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)))
    });
    ops.truncate(CHANGES_MAX);
    ops
}

fn departed_edges(mut edges: Vec<EdgeChange>) -> Vec<EdgeChange> {
    edges.retain(|e| !e.departures.is_empty());
    edges.truncate(CHANGES_MAX);
    edges
}

/// Service-level calls of a window; latency is the callee's side.
fn graph(w: &WindowAggregate) -> GraphView {
    let mut nodes: Vec<String> = w.ops.iter().map(|o| o.service.clone()).collect();
    let mut by_pair: BTreeMap<(&str, &str), (u64, u64, LatencySketch)> = BTreeMap::new();
    for e in &w.edges {
        nodes.push(e.callee.clone());
        let entry = by_pair.entry((e.caller.as_str(), e.callee.as_str())).or_default();
        entry.0 += e.calls;
        entry.1 += e.errors;
        entry.2.merge(&e.server_us);
    }
    nodes.sort();
    nodes.dedup();
    let edges = by_pair
        .into_iter()
        .map(|((from, to), (calls, errors, sketch))| EdgeView {
            from: from.to_owned(),
            to: to.to_owned(),
            calls,
            errors,
            p50_ms: sketch.quantile_us(0.5) / 1_000.0,
            max_ms: sketch.quantile_us(1.0) / 1_000.0,
        })
        .collect();
    GraphView { nodes, edges }
}

fn explain_incident(r: &IncidentResult) -> String {
    let mut text = vec![sessions_line(&r.sessions, &r.failed_session_rate)];
    if r.sessions.incident == 0 {
        text.push("There are no sessions in the incident window: nothing to analyse.".to_owned());
        return text.join(" ");
    }
    match &r.root_cause {
        Some(c) => {
            text.push(format!("Most likely root cause: {} {} ({}, score {:.3}).", c.service, c.operation, c.kind.as_str(), c.score));
            text.extend(c.evidence.iter().take(2).map(|e| format!("{}.", capitalize(&e.detail))));
        }
        None => text.push("No candidate stands out: no error rate, latency or log line left its baseline.".to_owned()),
    }
    let others: Vec<String> = r
        .candidates
        .iter()
        .skip(1)
        .take(3)
        .map(|c| format!("{} {} ({}, {:.3})", c.service, c.operation, c.kind.as_str(), c.score))
        .collect();
    if !others.is_empty() {
        text.push(format!("Other candidates: {}.", others.join("; ")));
    }
    text.join(" ")
}

fn explain_anomalies(r: &AnomalyReport) -> String {
    let mut text = vec![sessions_line(&r.sessions, &r.failed_session_rate)];
    if r.anomalies.is_empty() && r.edge_anomalies.is_empty() {
        text.push("No operation left its baseline.".to_owned());
        return text.join(" ");
    }
    let named: Vec<String> =
        r.anomalies.iter().take(5).map(|c| format!("{} {} ({})", c.service, c.operation, c.departures.join(", "))).collect();
    text.push(format!("{} operation(s) left their baseline: {}.", r.anomalies.len(), named.join("; ")));
    if !r.edge_anomalies.is_empty() {
        let calls: Vec<String> =
            r.edge_anomalies.iter().take(3).map(|e| format!("{} → {} ({})", e.caller, e.callee, e.departures.join(", "))).collect();
        text.push(format!("Calls that changed: {}.", calls.join("; ")));
    }
    text.join(" ")
}

fn sessions_line(sessions: &Pair<u64>, failed: &Pair<f64>) -> String {
    format!(
        "{} session(s) in the incident window, {} in the baseline; failed requests {:.1}% vs {:.1}%.",
        sessions.incident,
        sessions.baseline,
        100.0 * failed.incident,
        100.0 * failed.baseline
    )
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
