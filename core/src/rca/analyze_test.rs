//! Whole analyses of small hand-built requests, one per fault kind.

use super::super::fixtures::*;
use super::*;
use crate::query::SpanKindView;
use crate::rca::candidate::CandidateKind;
use crate::rca::model::{RcaExemplar, RcaSpan};
use crate::rca::origin::LogMatch;

fn run(spans: Vec<RcaSpan>, logs: Vec<RcaLog>, exemplars: Vec<RcaExemplar>, view: &BaselineView) -> RcaResult {
    analyze(&RcaInput { spans, logs, exemplars }, view)
}

fn top(r: &RcaResult) -> (&str, &str, CandidateKind) {
    let c = r.root_cause.as_ref().expect("a root cause");
    (c.service.as_str(), c.operation.as_str(), c.kind)
}

fn ranked(r: &RcaResult) -> Vec<(&str, CandidateKind)> {
    r.candidates.iter().map(|c| (c.service.as_str(), c.kind)).collect()
}

/// frontend → checkout → payments → db; db throws and the failure propagates.
fn cascade() -> Vec<RcaSpan> {
    vec![
        fail(kind(sp("frontend", "GET /checkout", 1, None, 0, 100), SpanKindView::Server), "502 Bad Gateway"),
        fail(kind(sp("checkout", "POST /checkout", 2, Some(1), 5, 95), SpanKindView::Server), "payment failed"),
        fail(kind(sp("payments", "POST /charge", 3, Some(2), 10, 90), SpanKindView::Server), "db error"),
        kind(sp("db", "SELECT card", 4, Some(3), 12, 18), SpanKindView::Server),
        fail(kind(sp("db", "INSERT charges", 5, Some(3), 20, 30), SpanKindView::Server), "deadlock detected"),
    ]
}

#[test]
fn error_thrown_in_a_leaf_is_the_root_cause_of_the_cascade() {
    let logs = vec![error_log("db", 5, 29, "deadlock detected on table charges"), error_log("payments", 3, 31, "charge failed: db error")];
    let r = run(cascade(), logs, vec![exemplar("db", "db.duration", 5, 30, 0.01)], &BaselineView::new());
    assert!(r.request_failed);
    assert_eq!(top(&r), ("db", "INSERT charges", CandidateKind::Error));
    assert_eq!(r.root_cause.as_ref().map(|c| c.score), Some(1.0), "reaches the root and a log supports it");

    let origin = r.error_origin.as_ref().expect("origin");
    assert_eq!((origin.service.as_str(), origin.message.as_str(), origin.reaches_root), ("db", "deadlock detected", true));
    assert_eq!(origin.logs.len(), 1, "the payments log is on another span of another service");
    assert_eq!(origin.logs[0].matched, LogMatch::Span);

    let CounterfactualView::Failure { spared, request_would_succeed, statement, .. } = &r.counterfactuals[0] else {
        panic!("a failure counterfactual first: {:?}", r.counterfactuals)
    };
    assert_eq!((*spared, *request_would_succeed), (3, true));
    assert!(statement.starts_with("if db INSERT charges had not failed, these 3 spans would not have failed"), "{statement}");

    let chain = &r.chains[0];
    let kinds: Vec<(&str, &str)> = chain.steps.iter().map(|s| (s.service.as_str(), kind_name(s.kind))).collect();
    assert_eq!(
        kinds,
        [
            ("db", "error_log"),
            ("db", "span_failure"),
            ("db", "exemplar_outlier"),
            ("payments", "span_failure"),
            ("checkout", "span_failure"),
            ("frontend", "span_failure")
        ]
    );
    assert!(chain.steps[5].interpretation.contains("user-facing"), "{:?}", chain.steps[5]);
    assert!(r.explanation.contains("Most likely root cause: db INSERT charges (error"), "{}", r.explanation);
    let edge = &r.dependency_graph.edges;
    assert_eq!(
        edge.iter().map(|e| (e.from.as_str(), e.to.as_str(), e.errors)).collect::<Vec<_>>(),
        [("checkout", "payments", 1), ("frontend", "checkout", 1), ("payments", "db", 1)]
    );
}

fn kind_name(k: crate::rca::chains::StepKind) -> &'static str {
    match serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_owned)).as_deref() {
        Some("span_failure") => "span_failure",
        Some("error_log") => "error_log",
        Some("latency_anomaly") => "latency_anomaly",
        Some("exemplar_outlier") => "exemplar_outlier",
        _ => "?",
    }
}

#[test]
fn error_returned_by_a_middle_service_is_blamed_on_it() {
    // payments answers 5xx on its own; its db call was fine.
    let mut spans = cascade();
    spans[4].is_error = false;
    let r = run(spans, vec![], vec![], &BaselineView::new());
    assert_eq!(top(&r), ("payments", "POST /charge", CandidateKind::Error));
    assert_eq!(r.root_cause.as_ref().map(|c| c.score), Some(0.9), "no supporting log");
}

/// A slow leaf under concurrent siblings: the db query is slow, the other
/// calls run beside it and end earlier.
fn fan_out() -> Vec<RcaSpan> {
    vec![
        sp("web", "GET /", 1, None, 0, 100),
        sp("api", "profile", 2, Some(1), 5, 35),
        sp("api", "orders", 3, Some(1), 5, 95),
        sp("api", "recs", 4, Some(1), 5, 45),
        sp("db", "query", 5, Some(3), 10, 90),
    ]
}

fn fan_out_baselines() -> BaselineView {
    view(&[
        ("web", "GET /", 40.0, 10.0),
        ("api", "profile", 30.0, 30.0),
        ("api", "orders", 20.0, 10.0),
        ("api", "recs", 40.0, 40.0),
        ("db", "query", 10.0, 10.0),
    ])
}

#[test]
fn slow_leaf_under_concurrent_siblings() {
    let r = run(fan_out(), vec![], vec![], &fan_out_baselines());
    assert!(!r.request_failed);
    assert_eq!(top(&r), ("db", "query", CandidateKind::Latency));
    assert_eq!(r.critical_path.total_ms, 100.0);
    let path: Vec<(&str, f64)> = r.critical_path.steps.iter().map(|s| (s.operation.as_str(), s.self_ms)).collect();
    assert_eq!(path, [("GET /", 10.0), ("orders", 10.0), ("query", 80.0)]);
    let CounterfactualView::Latency { total_ms, counterfactual_total_ms, saved_ms, baseline_p50_ms, .. } = r.counterfactuals[0] else {
        panic!("latency counterfactual: {:?}", r.counterfactuals)
    };
    // db at 10 ms: orders ends at 25, so recs (5..45) now holds the root until 45, which ends 5 ms later.
    assert_eq!((total_ms, baseline_p50_ms, counterfactual_total_ms, saved_ms), (100.0, 10.0, 50.0, 50.0));
    let score = r.root_cause.as_ref().map(|c| c.score);
    assert_eq!(score, Some(0.45), "impact 50/100 × confidence 0.9");
    // The parents are slow only because of db: not candidates of their own.
    assert!(!ranked(&r).contains(&("api", CandidateKind::Latency)), "{:?}", ranked(&r));
    assert!(!ranked(&r).contains(&("web", CandidateKind::Latency)), "{:?}", ranked(&r));
    let chain = &r.chains[0];
    assert_eq!(chain.steps.iter().map(|s| s.operation.as_str()).collect::<Vec<_>>(), ["query", "orders", "GET /"]);
    assert!(chain.steps[2].interpretation.contains("user-facing"), "{:?}", chain.steps[2]);
}

#[test]
fn latency_in_a_middle_service_is_its_own_not_its_callee() {
    // api spends 60 ms of its own around a normal db call.
    let spans = vec![sp("web", "GET /", 1, None, 0, 100), sp("api", "orders", 2, Some(1), 5, 95), sp("db", "query", 3, Some(2), 40, 50)];
    let base = view(&[("web", "GET /", 40.0, 10.0), ("api", "orders", 25.0, 15.0), ("db", "query", 10.0, 10.0)]);
    let r = run(spans, vec![], vec![], &base);
    assert_eq!(top(&r), ("api", "orders", CandidateKind::Latency));
    assert!(r.anomalies.iter().all(|a| a.service != "db"));
    let evidence: Vec<&str> = r.root_cause.as_ref().map(|c| c.evidence.iter().map(|e| e.kind).collect()).unwrap_or_default();
    assert!(evidence.contains(&"self_time_anomaly") && evidence.contains(&"counterfactual"), "{evidence:?}");
    let e = r.root_cause.as_ref().and_then(|c| c.evidence.iter().find(|e| e.kind == "self_time_anomaly")).expect("evidence");
    assert_eq!((e.value_ms, e.baseline.map(|b| b.p99_ms)), (Some(80.0), Some(22.5)));
}

#[test]
fn network_delay_seen_only_on_the_client_span_is_attributed_with_a_caveat() {
    let spans = vec![
        kind(sp("checkout", "POST /checkout", 1, None, 0, 100), SpanKindView::Server),
        kind(sp("checkout", "charge", 2, Some(1), 5, 95), SpanKindView::Client),
        kind(sp("payments", "POST /charge", 3, Some(2), 45, 55), SpanKindView::Server),
    ];
    let base =
        view(&[("checkout", "POST /checkout", 25.0, 10.0), ("checkout", "charge", 15.0, 3.0), ("payments", "POST /charge", 10.0, 10.0)]);
    let r = run(spans, vec![], vec![], &base);
    assert_eq!(top(&r), ("checkout", "charge", CandidateKind::Network));
    let c = r.root_cause.as_ref().expect("candidate");
    let caveat = c.evidence.iter().find(|e| e.kind == "caveat").expect("caveat");
    assert!(caveat.detail.contains("visible only on checkout's client span"), "{}", caveat.detail);
    assert!(r.chains[0].steps[0].interpretation.contains("delay on the way"), "{:?}", r.chains[0].steps[0]);
    // payments itself was normal.
    assert!(r.anomalies.iter().all(|a| a.service != "payments"));
}

#[test]
fn cpu_contention_slows_every_operation_of_one_service() {
    let spans = vec![
        sp("web", "GET /", 1, None, 0, 200),
        sp("search", "parse", 2, Some(1), 0, 60),
        sp("search", "score", 3, Some(1), 60, 140),
        sp("search", "render", 4, Some(1), 140, 200),
    ];
    let base = view(&[
        ("web", "GET /", 60.0, 1.0),
        ("search", "parse", 20.0, 20.0),
        ("search", "score", 25.0, 25.0),
        ("search", "render", 15.0, 15.0),
    ]);
    let r = run(spans, vec![], vec![], &base);
    let top3: Vec<(&str, &str)> = r.candidates.iter().take(3).map(|c| (c.service.as_str(), c.operation.as_str())).collect();
    assert!(top3.iter().all(|(s, _)| *s == "search"), "{top3:?}");
    assert_eq!(top3[0].1, "score", "the largest saving first");
    assert_eq!(r.anomalies.iter().filter(|a| a.service == "search").count(), 3);
}

#[test]
fn a_failure_outranks_latency_when_the_request_failed() {
    // inventory is slow, payments fails: the caller saw the failure.
    let spans = vec![
        fail(sp("web", "POST /order", 1, None, 0, 120), "500"),
        sp("inventory", "reserve", 2, Some(1), 0, 100),
        fail(sp("payments", "charge", 3, Some(1), 100, 118), "card processor unreachable"),
    ];
    let base = view(&[("web", "POST /order", 40.0, 1.0), ("inventory", "reserve", 20.0, 20.0), ("payments", "charge", 15.0, 15.0)]);
    let r = run(spans, vec![], vec![], &base);
    assert_eq!(ranked(&r)[..2], [("payments", CandidateKind::Error), ("inventory", CandidateKind::Latency)]);
    let latency = &r.candidates[1];
    assert_eq!(latency.score, 0.3, "impact (80/120) × 0.9 × 0.5: the request failed");
}

#[test]
fn a_handled_failure_does_not_outrank_the_latency_the_caller_saw() {
    let spans = vec![
        sp("web", "GET /", 1, None, 0, 100),
        sp("cache", "get", 2, Some(1), 0, 2),
        fail(sp("cache", "redis GET", 3, Some(2), 0, 1), "timeout"),
        sp("db", "query", 4, Some(1), 2, 98),
    ];
    let base = view(&[("web", "GET /", 20.0, 4.0), ("db", "query", 15.0, 15.0)]);
    let r = run(spans, vec![], vec![], &base);
    assert_eq!(ranked(&r)[..2], [("db", CandidateKind::Latency), ("cache", CandidateKind::Error)]);
    assert_eq!(r.candidates[1].score, 0.27);
}

#[test]
fn without_baselines_the_critical_path_ranks_weakly() {
    let r = run(fan_out(), vec![], vec![], &BaselineView::new());
    assert_eq!(top(&r), ("db", "query", CandidateKind::CriticalPath));
    assert_eq!(r.root_cause.as_ref().map(|c| c.score), Some(0.24), "80% of the path × 0.3");
    assert!(r.anomalies.is_empty() && r.counterfactuals.is_empty());
}

#[test]
fn error_logs_without_failing_spans_are_candidates() {
    let spans = vec![fail(sp("web", "GET /", 1, None, 0, 50), ""), sp("api", "list", 2, Some(1), 5, 40)];
    // web failed on its own: an origin; api only logged an error.
    let r = run(spans, vec![error_log("api", 2, 20, "NullPointerException in ListHandler")], vec![], &BaselineView::new());
    assert_eq!(top(&r), ("web", "GET /", CandidateKind::Error));
    let log_candidate = r.candidates.iter().find(|c| c.kind == CandidateKind::ErrorLog).expect("error_log candidate");
    assert_eq!((log_candidate.service.as_str(), log_candidate.operation.as_str()), ("api", "list"));
}

#[test]
fn an_empty_session_has_an_empty_answer() {
    let r = run(vec![], vec![], vec![], &BaselineView::new());
    assert!(r.root_cause.is_none() && r.candidates.is_empty() && r.critical_path.steps.is_empty());
    assert_eq!(r.explanation, "No spans in this session: there is no request to analyse.");
}

#[test]
fn the_answer_serializes_with_stable_field_names() {
    let json = serde_json::to_value(run(cascade(), vec![], vec![], &BaselineView::new())).expect("serializes");
    let mut keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "anomalies",
            "candidates",
            "chains",
            "counterfactuals",
            "critical_path",
            "dependency_graph",
            "error_origin",
            "explanation",
            "request_failed",
            "root_cause"
        ]
    );
    assert_eq!(json["root_cause"]["kind"], "error");
    assert_eq!(json["counterfactuals"][0]["kind"], "failure");
    assert_eq!(json["critical_path"]["steps"][0]["span_id"], "0000000000000001");
    assert!(json["candidates"][0]["evidence"][0]["type"].is_string());
}
