//! Causal corrections of one request's ranking, through the trace tree:
//!
//! * a client span that failed while its callee's span did not (a timeout,
//!   a refused or rejected answer) is an error origin, but when the
//!   callee's side is anomalously slow the slowness is the cause: its
//!   latency candidate is lifted above the failure, and the failure keeps
//!   half its score;
//! * a span that retried a failing call waits between attempts, and that
//!   wait is its self time: its latency candidate is halved and the
//!   retried failure is lifted above it.
//!
//! The per-incident ranking applies the same rules to aggregates
//! (`incident/rank.rs`).

use std::collections::BTreeMap;

use super::candidate::{Candidate, CandidateKind, Evidence, Facts, Outcome};
use super::tree::Node;
use crate::query::SpanKindView;

pub fn adjust(facts: &Facts, all: &mut [Candidate]) {
    blame_slow_callees_for_timeouts(facts, all);
    discount_retry_waits(facts, all);
}

fn blame_slow_callees_for_timeouts(facts: &Facts, all: &mut [Candidate]) {
    let tree = facts.tree;
    for e in 0..all.len() {
        let Outcome::Failure { origin, .. } = all[e].outcome else { continue };
        let span = &tree.spans[origin];
        let callee_traced = tree.children(origin).iter().any(|&c| tree.spans[c].service != span.service);
        if span.kind != SpanKindView::Client || !callee_traced {
            continue;
        }
        let below = |n: Node| tree.ancestors(n).any(|a| a == origin);
        let target = (0..all.len())
            .filter(|&t| matches!(all[t].kind, CandidateKind::Latency | CandidateKind::Network))
            .filter(|&t| all[t].nodes.iter().any(|&n| below(n)))
            .max_by(|&a, &b| all[a].score.total_cmp(&all[b].score));
        let Some(t) = target else { continue };
        let failure = format!("{} {}", all[e].service, all[e].operation);
        let slow = format!("{} {}", all[t].service, all[t].operation);
        all[t].score = all[t].score.max((all[e].score + 0.01).min(1.0));
        all[t].evidence.insert(
            0,
            Evidence::line(
                "explains",
                format!("explains the failure of {failure}: its callee did not fail but answered too slowly (a timeout)"),
            ),
        );
        all[e].score *= 0.5;
        all[e].evidence.push(Evidence::line("caveat", format!("the callee's span did not fail; {slow} was slow below it")));
    }
}

fn discount_retry_waits(facts: &Facts, all: &mut [Candidate]) {
    let tree = facts.tree;
    for c in 0..all.len() {
        if all[c].kind != CandidateKind::Latency {
            continue;
        }
        let Some((op, count, failed_calls)) = all[c].nodes.iter().find_map(|&n| retried_call(facts, n)) else { continue };
        let wait_score = all[c].score;
        all[c].score *= 0.5;
        all[c].evidence.push(Evidence::line(
            "caveat",
            format!("it called {op} {count} times after failures: the waits between retries count as its own time"),
        ));
        // The failure that was retried caused the wait.
        let below = |n: Node| failed_calls.iter().any(|&f| n == f || tree.ancestors(n).any(|a| a == f));
        let cause = (0..all.len()).filter(|&e| all[e].kind == CandidateKind::Error).find(|&e| all[e].nodes.iter().any(|&n| below(n)));
        if let Some(e) = cause {
            let waiting = format!("{} {}", all[c].service, all[c].operation);
            all[e].score = all[e].score.max((wait_score + 0.01).min(1.0));
            all[e].evidence.insert(0, Evidence::line("explains", format!("explains the retry waits of {waiting}")));
        }
    }
}

/// A client call of `n` made 2+ times with a failure: (operation, calls, the failed calls).
fn retried_call(facts: &Facts, n: Node) -> Option<(String, usize, Vec<Node>)> {
    let tree = facts.tree;
    let mut calls: BTreeMap<&str, Vec<Node>> = BTreeMap::new();
    for &child in tree.children(n) {
        if tree.spans[child].kind == SpanKindView::Client {
            calls.entry(tree.spans[child].operation.as_str()).or_default().push(child);
        }
    }
    calls.into_iter().find_map(|(op, nodes)| {
        let failed: Vec<Node> = nodes.iter().copied().filter(|&x| tree.spans[x].is_error).collect();
        (nodes.len() >= 2 && !failed.is_empty()).then(|| (op.to_owned(), nodes.len(), failed))
    })
}

#[cfg(test)]
mod tests {
    use crate::query::SpanKindView::{Client, Server};
    use crate::rca::analyze;
    use crate::rca::fixtures::{fail, kind, sp, view};
    use crate::rca::{CandidateKind, RcaInput};

    #[test]
    fn a_timeout_is_blamed_on_the_slow_callee_below_it() {
        let spans = vec![
            fail(kind(sp("web", "GET /", 1, None, 0, 120), Server), "upstream failed"),
            fail(kind(sp("web", "call db", 2, Some(1), 10, 110), Client), "timeout after 100 ms"),
            kind(sp("db", "query", 3, Some(2), 11, 190), Server),
        ];
        let baseline = view(&[("web", "GET /", 30.0, 10.0), ("web", "call db", 12.0, 1.0), ("db", "query", 10.0, 10.0)]);
        let r = analyze(&RcaInput { spans, ..Default::default() }, &baseline);
        let top = &r.candidates[0];
        assert_eq!((top.service.as_str(), top.kind), ("db", CandidateKind::Latency), "{:?}", r.candidates);
        assert!(top.evidence[0].detail.contains("explains the failure of web call db"), "{:?}", top.evidence);
        let timeout = r.candidates.iter().find(|c| c.kind == CandidateKind::Error).expect("the timeout stays a candidate");
        assert!(timeout.score < top.score && timeout.evidence.iter().any(|e| e.detail.contains("db query was slow below it")));
    }

    #[test]
    fn waits_between_retries_are_not_the_callers_fault() {
        let spans = vec![
            kind(sp("api", "handle", 1, None, 0, 100), Server),
            fail(kind(sp("api", "call db", 2, Some(1), 0, 10), Client), "HTTP 500"),
            fail(kind(sp("db", "query", 3, Some(2), 1, 9), Server), "deadlock"),
            kind(sp("api", "call db", 4, Some(1), 60, 70), Client),
            kind(sp("db", "query", 5, Some(4), 61, 69), Server),
        ];
        let baseline = view(&[("api", "handle", 15.0, 5.0), ("api", "call db", 10.0, 2.0), ("db", "query", 8.0, 8.0)]);
        let r = analyze(&RcaInput { spans, ..Default::default() }, &baseline);
        let api = r.candidates.iter().find(|c| c.service == "api" && c.kind == CandidateKind::Latency).expect("api latency");
        assert!(api.evidence.iter().any(|e| e.detail.contains("called call db 2 times after failures")), "{:?}", api.evidence);
        let db = r.candidates.iter().find(|c| c.service == "db").expect("db error");
        assert!(db.score > api.score, "{:?}", r.candidates);
    }
}
