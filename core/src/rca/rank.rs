//! The ranked root-cause candidates of one request, best first.
//!
//! Candidates are grouped by (service, operation, kind). Each score is
//! impact × confidence, both in 0..=1:
//!
//! | kind | from | impact | confidence |
//! |---|---|---|---|
//! | `error` | an error origin | 1 if the failure reached a root (the caller saw it), else 0.3 | 0.9, 1.0 with a supporting error log |
//! | `latency` | a self-time anomaly | time the counterfactual saves / request time | 0.9 |
//! | `latency` | a duration anomaly with normal self time and no anomalous descendant | same | 0.5 |
//! | `network` | a self-time anomaly of a client/producer span whose callee sent spans | same | 0.7 (caveat in the evidence) |
//! | `error_log` | error logs no failing span accounts for | 0.5 if the request failed without an error origin reaching it, else 0.2 | 0.5 |
//! | `critical_path` | the largest shares of the critical path among spans without a usable baseline | share of the path | 0.3 |
//!
//! When the request failed (a root span failed), the failure is the
//! symptom: the impact of latency kinds is halved. Timeouts are then blamed
//! on the slow callee and retry waits discounted (`causal.rs`). Ties: error origins in
//! origin order, then earlier spans, then by name.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::anomaly::{has_usable_baseline, Anomaly};
use super::baseline::Percentiles;
use super::candidate::{Candidate, CandidateKind, Evidence, Facts, Outcome};
use super::counterfactual::{retime, spared_by_fixing};
use super::graph::uninstrumented_peer;
use super::origin::Origin;
use super::tree::{Node, Tree};
use crate::query::{format_rfc3339_nanos, SpanKindView};

/// At most this many candidates are answered.
pub const CANDIDATES_MAX: usize = 10;
/// At most this many evidence entries of one kind per candidate.
const EVIDENCE_PER_KIND_MAX: usize = 3;
/// Latency groups (service, operation, kind) re-timed at most.
const LATENCY_GROUPS_MAX: usize = 20;
/// Spans without baseline considered for `critical_path` candidates.
const CRITICAL_PATH_CANDIDATES_MAX: usize = 3;

/// All candidates, best first, at most [`CANDIDATES_MAX`].
pub fn rank(facts: &Facts) -> Vec<Candidate> {
    let mut all = error_candidates(facts);
    all.extend(latency_candidates(facts));
    all.extend(error_log_candidates(facts));
    all.extend(critical_path_candidates(facts));
    super::causal::adjust(facts, &mut all);
    for c in &mut all {
        c.score = (c.score * 1_000.0).round() / 1_000.0;
    }
    all.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then(a.order.cmp(&b.order)).then_with(|| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)))
    });
    all.truncate(CANDIDATES_MAX);
    all
}

fn error_candidates(facts: &Facts) -> Vec<Candidate> {
    let tree = facts.tree;
    let mut groups: BTreeMap<(String, String), Vec<(usize, &Origin)>> = BTreeMap::new();
    for (rank, origin) in facts.origins.iter().enumerate() {
        let s = &tree.spans[origin.node];
        groups.entry((s.service.clone(), s.operation.clone())).or_default().push((rank, origin));
    }
    groups
        .into_iter()
        .filter_map(|((service, operation), members)| {
            let &(rank, best) = members.first()?;
            let impact = if best.reaches_root { 1.0 } else { 0.3 };
            let confidence = if best.logs.is_empty() { 0.9 } else { 1.0 };
            let spared = spared_by_fixing(tree, best.node);
            let mut evidence = Vec::new();
            for &(_, o) in members.iter().take(EVIDENCE_PER_KIND_MAX) {
                let s = &tree.spans[o.node];
                let why = if s.message.is_empty() { String::new() } else { format!(": {:?}", s.message) };
                evidence.push(Evidence {
                    span_id: Some(facts.span_id(o.node)),
                    ..Evidence::line("span_failure", format!("{} failed{why}; no child failed before it", facts.name(o.node)))
                });
            }
            if let Some(&top) = best.propagated.last() {
                let reach = if best.reaches_root { " (the request failed)" } else { "" };
                evidence.push(Evidence::line(
                    "propagation",
                    format!("{} failing caller span(s) above it, up to {}{reach}", best.propagated.len(), facts.name(top)),
                ));
            }
            for &(i, how) in best.logs.iter().take(EVIDENCE_PER_KIND_MAX) {
                let log = &facts.logs[i];
                let how = match how {
                    super::origin::LogMatch::Span => "on this span",
                    super::origin::LogMatch::ServiceTime => "same service, same time",
                };
                evidence.push(Evidence::line(
                    "error_log",
                    format!("{} logged at {} ({how}): {}", log.service, format_rfc3339_nanos(log.time_ns), cut(&log.body)),
                ));
            }
            push_affected_callers(facts, &service, &mut evidence);
            Some(Candidate {
                service,
                operation,
                kind: CandidateKind::Error,
                score: impact * confidence,
                evidence,
                nodes: members.iter().map(|&(_, o)| o.node).collect(),
                outcome: Outcome::Failure { origin: best.node, spared },
                order: rank as u64,
            })
        })
        .collect()
}

/// Anomalies (with their confidence) by (service, operation, kind).
type LatencyGroups<'a> = BTreeMap<(String, String, CandidateKind), Vec<(&'a Anomaly, f64)>>;

fn latency_candidates(facts: &Facts) -> Vec<Candidate> {
    let tree = facts.tree;
    let inherited = with_anomalous_descendant(tree, facts.anomalies);
    let mut groups: LatencyGroups = BTreeMap::new();
    for a in facts.anomalies {
        let Some((kind, confidence)) = latency_kind(tree, a, &inherited) else { continue };
        let s = &tree.spans[a.node];
        groups.entry((s.service.clone(), s.operation.clone(), kind)).or_default().push((a, confidence));
    }
    // Each group costs a re-timing of the whole tree: keep the groups with
    // the most excess time.
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|(_, a), (_, b)| excess_ms(b).total_cmp(&excess_ms(a)));
    groups.truncate(LATENCY_GROUPS_MAX);
    let damp = if facts.request_failed() { 0.5 } else { 1.0 };
    groups
        .into_iter()
        .map(|((service, operation, kind), members)| {
            let nodes: Vec<Node> = members.iter().map(|(a, _)| a.node).collect();
            let baseline = members[0].0.baseline;
            let p50_ns = (baseline.duration.p50_ms * 1_000_000.0) as u64;
            let actual_ns: u64 = nodes.iter().map(|&n| tree.spans[n].duration_ns()).sum();
            let retimed = retime(tree, &nodes.iter().map(|&n| (n, p50_ns)).collect());
            let impact = retimed.as_ref().map_or(0.0, |r| share(r.total_ns.saturating_sub(r.counterfactual_ns), r.total_ns));
            let confidence = members.iter().map(|(_, c)| *c).fold(0.0, f64::max);
            let mut evidence = Vec::new();
            for (a, _) in members.iter().take(EVIDENCE_PER_KIND_MAX) {
                if a.self_anomalous {
                    evidence.push(anomaly_evidence(facts, a, "self_time_anomaly", a.self_ms, baseline.self_time));
                }
                if a.duration_anomalous {
                    evidence.push(anomaly_evidence(facts, a, "duration_anomaly", a.duration_ms, baseline.duration));
                }
            }
            if let Some(path) = facts.path {
                let on_path: u64 = nodes.iter().map(|&n| path.on_path_ns(n)).sum();
                evidence.push(Evidence::line(
                    "critical_path",
                    format!(
                        "{:.1} ms of the {:.1} ms critical path ({:.0}%)",
                        ms(on_path),
                        ms(path.total_ns),
                        100.0 * share(on_path, path.total_ns)
                    ),
                ));
            }
            if let Some(r) = &retimed {
                evidence.push(Evidence::line(
                    "counterfactual",
                    format!(
                        "at its baseline p50 ({:.1} ms) the request would have taken {:.1} ms instead of {:.1} ms",
                        ms(p50_ns),
                        ms(r.counterfactual_ns),
                        ms(r.total_ns)
                    ),
                ));
            }
            if let Some(caveat) = caveat(facts, kind, nodes[0]) {
                evidence.push(Evidence::line("caveat", caveat));
            }
            push_affected_callers(facts, &service, &mut evidence);
            let order = nodes.iter().map(|&n| tree.spans[n].start_ns).min().unwrap_or(u64::MAX);
            let outcome = retimed.map_or(Outcome::None, |retimed| Outcome::Latency { p50_ns, actual_ns, retimed });
            Candidate { service, operation, kind, score: impact * confidence * damp, evidence, nodes, outcome, order }
        })
        .collect()
}

/// Which latency kind an anomaly is a candidate of, with its confidence;
/// `None` when its slowness is inherited from an anomalous descendant.
fn latency_kind(tree: &Tree, a: &Anomaly, inherited: &HashSet<Node>) -> Option<(CandidateKind, f64)> {
    let span = &tree.spans[a.node];
    if a.self_anomalous {
        let caller_side = matches!(span.kind, SpanKindView::Client | SpanKindView::Producer);
        let callee_traced = tree.children(a.node).iter().any(|&c| tree.spans[c].service != span.service);
        return Some(if caller_side && callee_traced { (CandidateKind::Network, 0.7) } else { (CandidateKind::Latency, 0.9) });
    }
    (!inherited.contains(&a.node)).then_some((CandidateKind::Latency, 0.5))
}

/// Spans with an anomalous span somewhere below them (one walk up per
/// anomaly, stopping at spans already marked: linear overall).
fn with_anomalous_descendant(tree: &Tree, anomalies: &[Anomaly]) -> HashSet<Node> {
    let mut marked = HashSet::new();
    for a in anomalies {
        for up in tree.ancestors(a.node) {
            if !marked.insert(up) {
                break;
            }
        }
    }
    marked
}

fn excess_ms(members: &[(&Anomaly, f64)]) -> f64 {
    members.iter().map(|(a, _)| a.duration_excess_ms()).sum()
}

fn caveat(facts: &Facts, kind: CandidateKind, node: Node) -> Option<String> {
    let tree = facts.tree;
    let span = &tree.spans[node];
    if kind == CandidateKind::Network {
        let callee = tree.children(node).iter().map(|&c| tree.spans[c].service.as_str()).find(|s| *s != span.service).unwrap_or("");
        return Some(format!(
            "the delay is visible only on {}'s client span, outside {callee}'s own spans: network, connection setup or queueing \
             before {callee} started; attributed to the call, not proven to be {}'s code",
            span.service, span.service
        ));
    }
    uninstrumented_peer(tree, node)
        .map(|peer| format!("{peer} sends no spans: the time is {peer}'s or the network's, seen from {}", span.service))
}

fn error_log_candidates(facts: &Facts) -> Vec<Candidate> {
    let tree = facts.tree;
    let explained: HashSet<usize> = facts.origins.iter().flat_map(|o| o.logs.iter().map(|&(i, _)| i)).collect();
    let failing_services: HashSet<&str> = tree.spans.iter().filter(|s| s.is_error).map(|s| s.service.as_str()).collect();
    let by_span: HashMap<(crate::model::TraceId, crate::model::SpanId), Node> =
        tree.spans.iter().enumerate().map(|(i, s)| ((s.trace_id, s.span_id), i)).collect();
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, log) in facts.logs.iter().enumerate() {
        if !log.is_error() || explained.contains(&i) || failing_services.contains(log.service.as_str()) {
            continue;
        }
        let operation = log.trace_id.zip(log.span_id).and_then(|k| by_span.get(&k)).map(|&n| tree.spans[n].operation.clone());
        groups.entry((log.service.clone(), operation.unwrap_or_default())).or_default().push(i);
    }
    let unexplained_failure = facts.request_failed() && !facts.origins.iter().any(|o| o.reaches_root);
    let impact = if unexplained_failure { 0.5 } else { 0.2 };
    groups
        .into_iter()
        .map(|((service, operation), logs)| {
            let mut evidence: Vec<Evidence> = logs
                .iter()
                .take(EVIDENCE_PER_KIND_MAX)
                .map(|&i| {
                    let log = &facts.logs[i];
                    Evidence::line(
                        "error_log",
                        format!("{} logged at {}: {}", log.service, format_rfc3339_nanos(log.time_ns), cut(&log.body)),
                    )
                })
                .collect();
            evidence.push(Evidence::line("caveat", format!("{} error log(s) without a failing span of {service}", logs.len())));
            let order = logs.iter().map(|&i| facts.logs[i].time_ns).min().unwrap_or(u64::MAX);
            Candidate {
                service,
                operation,
                kind: CandidateKind::ErrorLog,
                score: impact * 0.5,
                evidence,
                nodes: Vec::new(),
                outcome: Outcome::None,
                order,
            }
        })
        .collect()
}

fn critical_path_candidates(facts: &Facts) -> Vec<Candidate> {
    let (tree, Some(path)) = (facts.tree, facts.path) else { return Vec::new() };
    let mut steps: Vec<_> = path.steps().into_iter().filter(|s| !tree.is_virtual(s.node) && s.on_path_ns > 0).collect();
    steps.retain(|s| !has_usable_baseline(tree, facts.view, s.node));
    steps.sort_by_key(|s| (std::cmp::Reverse(s.on_path_ns), s.first_ns));
    let damp = if facts.request_failed() { 0.5 } else { 1.0 };
    let mut seen = HashSet::new();
    steps
        .into_iter()
        .filter(|s| seen.insert((tree.spans[s.node].service.as_str(), tree.spans[s.node].operation.as_str())))
        .take(CRITICAL_PATH_CANDIDATES_MAX)
        .map(|step| {
            let span = &tree.spans[step.node];
            let part = share(step.on_path_ns, path.total_ns);
            let samples = facts.view.get(&(span.service.clone(), span.operation.clone())).map_or(0, |b| b.duration.samples);
            let evidence = vec![
                Evidence {
                    span_id: Some(facts.span_id(step.node)),
                    value_ms: Some(ms(step.on_path_ns)),
                    ..Evidence::line(
                        "critical_path",
                        format!("{:.1} ms of the {:.1} ms critical path ({:.0}%)", ms(step.on_path_ns), ms(path.total_ns), part * 100.0),
                    )
                },
                Evidence::line(
                    "no_baseline",
                    format!(
                        "{samples} baseline sample(s), fewer than {}: ranked by its share of the path only",
                        super::anomaly::SAMPLES_MIN
                    ),
                ),
            ];
            Candidate {
                service: span.service.clone(),
                operation: span.operation.clone(),
                kind: CandidateKind::CriticalPath,
                score: part * 0.3 * damp,
                evidence,
                nodes: vec![step.node],
                outcome: Outcome::None,
                order: step.first_ns,
            }
        })
        .collect()
}

fn anomaly_evidence(facts: &Facts, a: &Anomaly, kind: &'static str, value_ms: f64, p: Percentiles) -> Evidence {
    let what = if kind == "self_time_anomaly" { "self time" } else { "duration" };
    Evidence {
        span_id: Some(facts.span_id(a.node)),
        value_ms: Some(value_ms),
        baseline: Some(p),
        ..Evidence::line(
            kind,
            format!(
                "{what} {value_ms:.1} ms vs baseline p50 {:.1} / p90 {:.1} / p99 {:.1} ms ({} samples)",
                p.p50_ms, p.p90_ms, p.p99_ms, p.samples
            ),
        )
    }
}

fn push_affected_callers(facts: &Facts, service: &str, evidence: &mut Vec<Evidence>) {
    let callers = facts.graph.affected_callers(service);
    if !callers.is_empty() {
        evidence.push(Evidence::line("affected_callers", format!("callers reached through the call graph: {}", callers.join(", "))));
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64).clamp(0.0, 1.0)
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1_000_000.0
}

/// A log body cut to 200 characters for one evidence line.
fn cut(text: &str) -> String {
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}
