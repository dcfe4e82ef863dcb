//! The ranked root-cause candidates of an incident: what changed between
//! the baseline and the incident window, blamed causally. Pure.
//!
//! | kind | from | score |
//! |---|---|---|
//! | `error` | failures that start at an operation (no failing child) rose | 1.0 (0.9 without error logs) × Δ/(Δ+0.05) |
//! | `latency` | an operation's self time rose (its own work, not its callees') | 0.9 × ratio part × excess part |
//! | `service_latency` | ≥ 2 and ≥ 60% of a service's operations slowed | the best of them (operation `*`) |
//! | `network` | a call's client-side time rose while the callee's own span did not | 0.8 × the latency formula on the gap |
//! | `error_log` | error logs rose with no failure starting in that service | 0.3 × Δ/(Δ+0.05) |
//! | `log_change` | a log line written on most calls is gone | 0.2 × how much of it is gone |
//!
//! Causal, through the dependency graph ([`Deps`]):
//! * self time, not duration, is compared: a slow callee makes its callers'
//!   durations rise, not their self time, so callers are not blamed;
//! * failures that start in a caller whose callee's spans did not fail
//!   (timeouts, refused or rejected answers), and whose callee side shows a
//!   latency, network or log change, are blamed on that change (the
//!   caller's failure keeps half its score);
//! * latency of a caller that retries a failing callee is its waiting, not
//!   its fault: halved.
//!
//! Every candidate says which callers were affected.

use serde::Serialize;

use super::aggregate::WindowAggregate;
use super::changes::{edge_changes, excess_ms, op_changes, ratio, EdgeChange, OpChange, Pair, SAMPLES_MIN};
use super::deps::Deps;
use crate::rca::{CandidateKind, Evidence, Percentiles};

/// At most this many candidates are answered.
pub const CANDIDATES_MAX: usize = 10;
/// Callers named in `affected_callers` evidence.
const CALLERS_SHOWN_MAX: usize = 5;
/// Share of a service's operations that must slow for `service_latency`.
const SERVICE_SHARE_MIN: f64 = 0.6;

/// One candidate: the same JSON shape as the per-request candidates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentCandidate {
    pub service: String,
    /// `*` for a whole service; empty for logs of the service outside spans.
    pub operation: String,
    pub kind: CandidateKind,
    pub score: f64,
    pub evidence: Vec<Evidence>,
}

/// Candidates, best first, at most [`CANDIDATES_MAX`].
pub fn rank(base: &WindowAggregate, inc: &WindowAggregate) -> Vec<IncidentCandidate> {
    let ops = op_changes(base, inc);
    let edges = edge_changes(base, inc);
    let deps = Deps::new(&[base, inc]);
    rank_changes(inc, &ops, &edges, &deps)
}

pub fn rank_changes(inc: &WindowAggregate, ops: &[OpChange], edges: &[EdgeChange], deps: &Deps) -> Vec<IncidentCandidate> {
    let mut all = error_candidates(inc, ops);
    all.extend(fold_services(latency_candidates(ops), ops));
    all.extend(network_candidates(edges));
    all.extend(error_log_candidates(ops));
    all.extend(log_change_candidates(ops));
    blame_callees_for_caller_failures(&mut all, edges, deps);
    discount_retry_waits(&mut all, edges);
    for c in &mut all {
        push_affected_callers(c, ops, deps);
        c.score = (c.score.clamp(0.0, 1.0) * 1_000.0).round() / 1_000.0;
    }
    all.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then(a.kind.cmp(&b.kind)).then_with(|| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)))
    });
    all.truncate(CANDIDATES_MAX);
    all
}

fn candidate(c: &OpChange, kind: CandidateKind, score: f64, evidence: Vec<Evidence>) -> IncidentCandidate {
    IncidentCandidate { service: c.service.clone(), operation: c.operation.clone(), kind, score, evidence }
}

fn saturate(delta: f64, half: f64) -> f64 {
    if delta <= 0.0 {
        0.0
    } else {
        delta / (delta + half)
    }
}

/// The latency strength of a change: how many times slower, and by how much.
fn latency_strength(p: &Pair<Percentiles>) -> f64 {
    let excess = excess_ms(p);
    saturate(ratio(p) - 1.0, 0.5) * (0.5 + 0.5 * saturate(excess, 2.0))
}

fn error_candidates(inc: &WindowAggregate, ops: &[OpChange]) -> Vec<IncidentCandidate> {
    ops.iter()
        .filter(|c| c.left("origin_error_rate"))
        .map(|c| {
            let delta = c.origin_error_delta();
            let logged = c.error_logs_per_call.incident > c.error_logs_per_call.baseline;
            let mut evidence = vec![Evidence::line(
                "error_rate_change",
                format!(
                    "failures starting here (no failing child): {:.1}% of {} calls, baseline {:.1}% of {} (z = {:.1})",
                    100.0 * c.origin_error_rate.incident,
                    c.calls.incident,
                    100.0 * c.origin_error_rate.baseline,
                    c.calls.baseline,
                    c.z
                ),
            )];
            if let Some(op) = inc.op(&c.service, &c.operation) {
                for (message, n) in op.messages.iter().take(2) {
                    evidence.push(Evidence::line("failure_message", format!("{n} × {message:?}")));
                }
            }
            if logged {
                evidence.push(error_log_evidence(c));
            }
            candidate(c, CandidateKind::Error, saturate(delta, 0.05) * if logged { 1.0 } else { 0.9 }, evidence)
        })
        .collect()
}

fn error_log_evidence(c: &OpChange) -> Evidence {
    Evidence::line(
        "error_log_count",
        format!(
            "{:.2} error logs per call ({:.0} in the window), baseline {:.2}",
            c.error_logs_per_call.incident,
            c.error_logs_per_call.incident * c.calls.incident.max(1) as f64,
            c.error_logs_per_call.baseline
        ),
    )
}

fn latency_evidence(kind: &'static str, what: &str, p: &Pair<Percentiles>, calls: &Pair<u64>) -> Evidence {
    let (b, i) = (p.baseline, p.incident);
    Evidence {
        value_ms: Some(i.p50_ms),
        baseline: Some(b),
        ..Evidence::line(
            kind,
            format!(
                "{what} p50 {:.1} → {:.1} ms, p90 {:.1} → {:.1} ms, p99 {:.1} → {:.1} ms ({} calls, baseline {})",
                b.p50_ms, i.p50_ms, b.p90_ms, i.p90_ms, b.p99_ms, i.p99_ms, calls.incident, calls.baseline
            ),
        )
    }
}

fn latency_candidates(ops: &[OpChange]) -> Vec<IncidentCandidate> {
    ops.iter()
        .filter(|c| c.left("self_time") && !(c.client_side && c.traced_callee))
        .map(|c| {
            let mut evidence = vec![latency_evidence("self_time_change", "self time", &c.self_time, &c.calls)];
            if c.left("duration") {
                evidence.push(latency_evidence("duration_change", "duration", &c.duration, &c.calls));
            }
            if c.client_side {
                evidence.push(Evidence::line(
                    "caveat",
                    format!(
                        "{} {} calls out to a peer that sends no spans: the time is the peer's or the network's",
                        c.service, c.operation
                    ),
                ));
            }
            candidate(c, CandidateKind::Latency, 0.9 * latency_strength(&c.self_time), evidence)
        })
        .collect()
}

/// Latency candidates of a service most of whose operations slowed become
/// one `service_latency` candidate.
fn fold_services(latency: Vec<IncidentCandidate>, ops: &[OpChange]) -> Vec<IncidentCandidate> {
    let mut services: Vec<&str> = latency.iter().map(|c| c.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let mut folded: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for service in services {
        let eligible: Vec<&OpChange> = ops
            .iter()
            .filter(|c| c.service == service && !c.client_side && c.calls.baseline >= SAMPLES_MIN && c.calls.incident >= SAMPLES_MIN)
            .collect();
        let slowed: Vec<&&OpChange> = eligible.iter().filter(|c| c.left("self_time")).collect();
        if slowed.len() < 2 || (slowed.len() as f64) < SERVICE_SHARE_MIN * eligible.len() as f64 {
            continue;
        }
        let members: Vec<&IncidentCandidate> = latency.iter().filter(|c| c.service == service).collect();
        let score = members.iter().map(|c| c.score).fold(0.0, f64::max);
        let names: Vec<String> = slowed.iter().map(|c| format!("{} ×{:.1}", c.operation, c.self_ratio())).collect();
        let mut evidence = vec![Evidence::line(
            "service_wide_slowdown",
            format!("{} of {} operations' self time rose: {}", slowed.len(), eligible.len(), names.join(", ")),
        )];
        evidence.extend(members.iter().flat_map(|c| c.evidence.first().cloned()).take(3));
        evidence.push(Evidence::line(
            "caveat",
            "the whole service is slower, not one code path: CPU contention, GC pauses, a noisy neighbour or a saturated pool".to_owned(),
        ));
        out.push(IncidentCandidate {
            service: service.to_owned(),
            operation: "*".to_owned(),
            kind: CandidateKind::ServiceLatency,
            score,
            evidence,
        });
        folded.push(service.to_owned());
    }
    out.extend(latency.into_iter().filter(|c| !folded.contains(&c.service)));
    out
}

fn network_candidates(edges: &[EdgeChange]) -> Vec<IncidentCandidate> {
    edges
        .iter()
        .filter(|e| e.left("gap") && !e.left("server"))
        .map(|e| {
            let evidence = vec![
                latency_evidence("client_side_change", &format!("{}'s client span", e.caller), &e.client, &e.calls),
                latency_evidence("server_side", &format!("{}'s own span", e.callee), &e.server, &e.calls),
                latency_evidence("network_change", "time outside the callee's span", &e.gap, &e.calls),
                Evidence::line(
                    "caveat",
                    format!(
                        "the delay is visible only on {}'s client span, outside {}'s own spans: network, connection setup or \
                         queueing before {} started; attributed to the call, not proven to be either service's code",
                        e.caller, e.callee, e.callee
                    ),
                ),
            ];
            IncidentCandidate {
                service: e.caller.clone(),
                operation: e.caller_operation.clone(),
                kind: CandidateKind::Network,
                score: 0.8 * latency_strength(&e.gap),
                evidence,
            }
        })
        .collect()
}

fn error_log_candidates(ops: &[OpChange]) -> Vec<IncidentCandidate> {
    ops.iter()
        .filter(|c| c.left("error_logs"))
        .filter(|c| !ops.iter().any(|o| o.service == c.service && o.left("origin_error_rate")))
        .map(|c| {
            let delta = c.error_logs_per_call.incident - c.error_logs_per_call.baseline;
            let evidence = vec![
                error_log_evidence(c),
                Evidence::line("caveat", format!("no failure starts in {}: its error logs rose without failing spans", c.service)),
            ];
            candidate(c, CandidateKind::ErrorLog, 0.3 * saturate(delta, 0.05), evidence)
        })
        .collect()
}

fn log_change_candidates(ops: &[OpChange]) -> Vec<IncidentCandidate> {
    ops.iter()
        .filter_map(|c| {
            let gone =
                c.templates.iter().filter(|t| t.change == "gone").max_by(|a, b| a.per_call.baseline.total_cmp(&b.per_call.baseline))?;
            let lost = 1.0 - gone.per_call.incident / gone.per_call.baseline.max(f64::MIN_POSITIVE);
            let mut evidence: Vec<Evidence> = c
                .templates
                .iter()
                .take(3)
                .map(|t| {
                    Evidence::line(
                        "log_change",
                        format!(
                            "{} line {:?}: {:.0}% of calls, baseline {:.0}%",
                            t.change,
                            t.template,
                            100.0 * t.per_call.incident,
                            100.0 * t.per_call.baseline
                        ),
                    )
                })
                .collect();
            evidence.push(Evidence::line(
                "caveat",
                format!("{} {} no longer takes a code path it usually took; no span of it fails", c.service, c.operation),
            ));
            Some(candidate(c, CandidateKind::LogChange, 0.2 * lost.clamp(0.0, 1.0), evidence))
        })
        .collect()
}

/// Kinds a caller's failures can be blamed on.
fn is_callee_side(kind: CandidateKind) -> bool {
    matches!(kind, CandidateKind::Latency | CandidateKind::ServiceLatency | CandidateKind::Network | CandidateKind::LogChange)
}

/// Failures starting in a caller whose callee did not fail are blamed on a
/// change on the callee side of that call (see the module doc).
fn blame_callees_for_caller_failures(all: &mut [IncidentCandidate], edges: &[EdgeChange], deps: &Deps) {
    let errors: Vec<usize> = (0..all.len()).filter(|&i| all[i].kind == CandidateKind::Error).collect();
    for e in errors {
        let caller = all[e].service.clone();
        let target = (0..all.len())
            .filter(|&t| is_callee_side(all[t].kind))
            .filter(|&t| explains(&all[t], &caller, edges, deps))
            .max_by(|&a, &b| all[a].score.total_cmp(&all[b].score));
        let Some(t) = target else { continue };
        let (error_score, error_name) = (all[e].score, format!("{} {}", all[e].service, all[e].operation));
        let target_name = format!("{} {} ({})", all[t].service, all[t].operation, all[t].kind.as_str());
        let lifted = all[t].score.max(error_score + 0.01);
        all[t].score = lifted;
        all[t].evidence.insert(
            0,
            Evidence::line(
                "explains",
                format!("explains the failures starting at {error_name}: {caller} calls it and its side of the call changed"),
            ),
        );
        all[e].score = error_score * 0.5;
        all[e].evidence.push(Evidence::line("caveat", format!("likely a consequence of {target_name}, on the callee side of its calls")));
    }
}

/// Whether candidate `t` is on the callee side of a failing call of `caller`.
fn explains(t: &IncidentCandidate, caller: &str, edges: &[EdgeChange], deps: &Deps) -> bool {
    if t.kind == CandidateKind::LogChange {
        return deps.calls(caller, &t.service);
    }
    edges.iter().filter(|e| e.caller == caller && e.left("caller_only_errors")).any(|e| {
        (t.kind == CandidateKind::Network && t.service == caller && t.operation == e.caller_operation)
            || t.service == e.callee
            || deps.downstream(&e.callee).contains(&t.service.as_str())
    })
}

/// A caller whose calls to a failing callee rose (retries) waits for them:
/// its latency is halved.
fn discount_retry_waits(all: &mut [IncidentCandidate], edges: &[EdgeChange]) {
    let failing: Vec<String> = all.iter().filter(|c| c.kind == CandidateKind::Error).map(|c| c.service.clone()).collect();
    for c in all.iter_mut().filter(|c| matches!(c.kind, CandidateKind::Latency | CandidateKind::ServiceLatency)) {
        let retried = edges.iter().find(|e| {
            e.caller == c.service
                && failing.contains(&e.callee)
                && e.error_rate.incident > e.error_rate.baseline
                && e.calls.incident as f64 > 1.1 * e.calls.baseline as f64
        });
        if let Some(e) = retried {
            c.score *= 0.5;
            c.evidence.push(Evidence::line(
                "caveat",
                format!(
                    "{} calls {} more often while {} fails ({} calls, baseline {}): retries and their waits",
                    c.service, e.callee, e.callee, e.calls.incident, e.calls.baseline
                ),
            ));
        }
    }
}

fn push_affected_callers(c: &mut IncidentCandidate, ops: &[OpChange], deps: &Deps) {
    let callers = deps.upstream(&c.service);
    if callers.is_empty() {
        return;
    }
    let affected: Vec<String> = callers
        .iter()
        .filter_map(|caller| {
            let hit = ops.iter().filter(|o| o.service == *caller && !o.client_side).find(|o| o.left("duration") || o.left("error_rate"))?;
            let mut what = Vec::new();
            if hit.left("duration") {
                what.push(format!("duration p90 {:.1} → {:.1} ms", hit.duration.baseline.p90_ms, hit.duration.incident.p90_ms));
            }
            if hit.left("error_rate") {
                what.push(format!("errors {:.1}% → {:.1}%", 100.0 * hit.error_rate.baseline, 100.0 * hit.error_rate.incident));
            }
            Some(format!("{} {} ({})", caller, hit.operation, what.join(", ")))
        })
        .take(CALLERS_SHOWN_MAX)
        .collect();
    let detail = if affected.is_empty() {
        format!("callers reached through the call graph: {} (no change in their duration or errors)", callers.join(", "))
    } else {
        format!("affected callers: {}", affected.join("; "))
    };
    c.evidence.push(Evidence::line("affected_callers", detail));
}

#[cfg(test)]
#[path = "blame_test.rs"]
mod tests;
