//! Chain-of-Event style event chains: for each of the best candidates, the
//! ordered events from its first cause to the user-facing symptom, each
//! with a one-line interpretation.
//!
//! Events are span failures, error logs, latency anomalies and exemplar
//! outliers (an exemplar recorded by a span of the chain: the metric's
//! tail points at this request). A chain's weight is its candidate's score
//! times the weight of each link upward: a failing parent with k failing
//! children is explained 1/k by this chain; a slow parent is explained by
//! the share of its excess over p50 that the cause's excess covers (1 when
//! the parent has no baseline).

use serde::Serialize;

use super::candidate::{Candidate, CandidateKind, Facts, Outcome};
use super::model::RcaExemplar;
use super::origin::LogMatch;
use super::tree::Node;
use crate::query::format_rfc3339_nanos;

/// Chains built for at most this many candidates.
pub const CHAINS_MAX: usize = 3;
/// Supporting logs put at the head of a failure chain.
const HEAD_LOGS_MAX: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    SpanFailure,
    ErrorLog,
    LatencyAnomaly,
    ExemplarOutlier,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainStep {
    pub kind: StepKind,
    pub service: String,
    pub operation: String,
    /// Event time, RFC 3339 (a span's end: when its outcome was known).
    pub at: String,
    pub interpretation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    pub weight: f64,
    pub steps: Vec<ChainStep>,
}

/// Chains of the first [`CHAINS_MAX`] candidates that have events, by weight.
pub fn chains(facts: &Facts, candidates: &[Candidate], exemplars: &[RcaExemplar]) -> Vec<Chain> {
    let mut out: Vec<Chain> = candidates
        .iter()
        .filter_map(|c| match (&c.outcome, c.kind) {
            (Outcome::Failure { origin, .. }, _) => Some(failure_chain(facts, c, *origin, exemplars)),
            (_, CandidateKind::Latency | CandidateKind::Network) => Some(latency_chain(facts, c, exemplars)),
            (_, CandidateKind::ErrorLog) => Some(error_log_chain(facts, c)),
            _ => None,
        })
        .filter(|chain| !chain.steps.is_empty())
        .take(CHAINS_MAX)
        .collect();
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    out
}

fn failure_chain(facts: &Facts, c: &Candidate, origin: Node, exemplars: &[RcaExemplar]) -> Chain {
    let tree = facts.tree;
    let mut steps = Vec::new();
    let found = facts.origins.iter().find(|o| o.node == origin);
    let span = &tree.spans[origin];
    let mut logs: Vec<(usize, LogMatch)> =
        found.map(|o| o.logs.iter().copied().filter(|&(i, _)| facts.logs[i].time_ns <= span.end_ns).collect()).unwrap_or_default();
    logs.sort_by_key(|&(i, _)| facts.logs[i].time_ns);
    for (i, _) in logs.into_iter().take(HEAD_LOGS_MAX) {
        let log = &facts.logs[i];
        steps.push(ChainStep {
            kind: StepKind::ErrorLog,
            service: log.service.clone(),
            operation: span.operation.clone(),
            at: format_rfc3339_nanos(log.time_ns),
            interpretation: format!("{} reported the error: {}", log.service, one_line(&log.body)),
        });
    }
    let why = if span.message.is_empty() { String::new() } else { format!(" ({})", one_line(&span.message)) };
    steps.push(span_step(facts, origin, StepKind::SpanFailure, format!("first failure{why}: nothing below it failed")));
    steps.extend(exemplar_steps(facts, origin, exemplars));
    let mut weight = c.score;
    let mut below = origin;
    for &a in found.map(|o| o.propagated.as_slice()).unwrap_or_default() {
        let failing_children = tree.children(a).iter().filter(|&&k| tree.spans[k].is_error).count().max(1);
        weight /= failing_children as f64;
        let user_facing = if tree.parent(a).is_none() { "user-facing: the request failed; " } else { "" };
        let how = if tree.spans[a].service != tree.spans[below].service {
            format!("{user_facing}its call to {} failed", tree.spans[below].service)
        } else {
            format!("{user_facing}failed after {} failed", tree.spans[below].operation)
        };
        steps.push(span_step(facts, a, StepKind::SpanFailure, how));
        below = a;
    }
    Chain { weight: round(weight), steps }
}

fn latency_chain(facts: &Facts, c: &Candidate, exemplars: &[RcaExemplar]) -> Chain {
    let tree = facts.tree;
    let Some(&cause) = c.nodes.iter().max_by_key(|&&n| tree.spans[n].duration_ns()) else {
        return Chain { weight: 0.0, steps: Vec::new() };
    };
    let anomaly = |n: Node| facts.anomalies.iter().find(|a| a.node == n);
    let cause_excess = anomaly(cause).map_or(0.0, |a| a.duration_excess_ms());
    let first = match (c.kind, anomaly(cause)) {
        (CandidateKind::Network, Some(a)) => format!(
            "{:.1} ms between this client span and its callee's spans (baseline p99 {:.1} ms): delay on the way, not in the callee",
            a.self_ms, a.baseline.self_time.p99_ms
        ),
        (_, Some(a)) if a.self_anomalous => {
            format!("{:.1} ms of its own time (baseline p99 {:.1} ms): slow in itself", a.self_ms, a.baseline.self_time.p99_ms)
        }
        (_, Some(a)) => format!("took {:.1} ms (baseline p99 {:.1} ms)", a.duration_ms, a.baseline.duration.p99_ms),
        (_, None) => "slow".to_owned(),
    };
    let mut steps = vec![span_step(facts, cause, StepKind::LatencyAnomaly, first)];
    steps.extend(exemplar_steps(facts, cause, exemplars));
    let mut weight = c.score;
    let ancestors: Vec<Node> = tree.ancestors(cause).collect();
    for (i, &a) in ancestors.iter().enumerate() {
        let is_root = i + 1 == ancestors.len();
        let Some(slow) = anomaly(a).filter(|x| x.duration_anomalous) else {
            if is_root {
                let d = tree.spans[a].duration_ns() as f64 / 1_000_000.0;
                steps.push(span_step(facts, a, StepKind::LatencyAnomaly, format!("user-facing: the request took {d:.1} ms")));
            }
            continue;
        };
        let parent_excess = slow.duration_excess_ms();
        if parent_excess > 0.0 {
            weight *= (cause_excess / parent_excess).min(1.0);
        }
        let user_facing = if is_root { "user-facing: " } else { "" };
        steps.push(span_step(
            facts,
            a,
            StepKind::LatencyAnomaly,
            format!(
                "{user_facing}took {:.1} ms (baseline p99 {:.1} ms), {:.0}% of the excess from {}",
                slow.duration_ms,
                slow.baseline.duration.p99_ms,
                100.0 * (cause_excess / parent_excess).min(1.0),
                tree.spans[cause].service
            ),
        ));
        steps.extend(exemplar_steps(facts, a, exemplars));
    }
    Chain { weight: round(weight), steps }
}

fn error_log_chain(facts: &Facts, c: &Candidate) -> Chain {
    let tree = facts.tree;
    let mut steps: Vec<ChainStep> = facts
        .logs
        .iter()
        .filter(|l| l.is_error() && l.service == c.service)
        .take(HEAD_LOGS_MAX)
        .map(|l| ChainStep {
            kind: StepKind::ErrorLog,
            service: l.service.clone(),
            operation: c.operation.clone(),
            at: format_rfc3339_nanos(l.time_ns),
            interpretation: format!("error logged without a failing span: {}", one_line(&l.body)),
        })
        .collect();
    let mut weight = c.score;
    if let Some(&root) = tree.roots().iter().find(|&&r| tree.spans[r].is_error) {
        weight *= 0.5;
        steps.push(span_step(facts, root, StepKind::SpanFailure, "user-facing: the request failed; link to the log by time only".into()));
    }
    Chain { weight: round(weight), steps }
}

fn span_step(facts: &Facts, node: Node, kind: StepKind, interpretation: String) -> ChainStep {
    let s = &facts.tree.spans[node];
    ChainStep {
        kind,
        service: s.service.clone(),
        operation: s.operation.clone(),
        at: format_rfc3339_nanos(s.end_ns),
        interpretation: format!("{} {}: {interpretation}", s.service, s.operation),
    }
}

fn exemplar_steps<'a>(facts: &'a Facts, node: Node, exemplars: &'a [RcaExemplar]) -> impl Iterator<Item = ChainStep> + 'a {
    let s = &facts.tree.spans[node];
    exemplars.iter().filter(move |e| e.trace_id == Some(s.trace_id) && e.span_id == Some(s.span_id)).map(move |e| ChainStep {
        kind: StepKind::ExemplarOutlier,
        service: e.service.clone(),
        operation: s.operation.clone(),
        at: format_rfc3339_nanos(e.time_ns),
        interpretation: format!("exemplar {} = {} recorded by this span: the metric's outlier is this request", e.metric, e.value),
    })
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut out: String = line.chars().take(160).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn round(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}
