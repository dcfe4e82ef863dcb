//! Incident ranking on small hand-built aggregates, one test per fault
//! kind. Topology: web `GET /` → api `handle` → (api `call db` → db
//! `query`, api `call cache` → cache `get`), 200 requests per window.

use super::*;
use crate::rca::incident::aggregate::{EdgeStats, OpStats};
use crate::rca::incident::sketch::LatencySketch;

const CALLS: u64 = 200;

/// `n` values spread evenly over ±10% around `ms`.
fn sketch(ms: f64, n: u64) -> LatencySketch {
    let mut s = LatencySketch::default();
    for k in 0..n {
        s.record((ms * 1_000.0 * (0.9 + 0.2 * k as f64 / n as f64)) as u64);
    }
    s
}

fn op(service: &str, operation: &str, self_ms: f64, duration_ms: f64) -> OpStats {
    OpStats {
        service: service.into(),
        operation: operation.into(),
        calls: CALLS,
        self_us: sketch(self_ms, CALLS),
        duration_us: sketch(duration_ms, CALLS),
        ..Default::default()
    }
}

fn client(mut o: OpStats) -> OpStats {
    o.client_calls = o.calls;
    o.traced_callee_calls = o.calls;
    o
}

fn failing(mut o: OpStats, errors: u64, origin: bool) -> OpStats {
    o.errors = errors;
    if origin {
        o.origin_errors = errors;
    }
    o
}

fn logged(mut o: OpStats, error_logs: u64, templates: &[(&str, u64)]) -> OpStats {
    o.error_logs = error_logs;
    o.logs = error_logs + templates.iter().map(|(_, n)| n).sum::<u64>();
    o.templates = templates.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect();
    o
}

fn edge(caller: &str, caller_operation: &str, callee: &str, client_ms: f64, server_ms: f64) -> EdgeStats {
    EdgeStats {
        caller: caller.into(),
        caller_operation: caller_operation.into(),
        callee: callee.into(),
        calls: CALLS,
        client_us: sketch(client_ms, CALLS),
        server_us: sketch(server_ms, CALLS),
        gap_us: sketch(client_ms - server_ms, CALLS),
        ..Default::default()
    }
}

fn window(mut ops: Vec<OpStats>, mut edges: Vec<EdgeStats>) -> WindowAggregate {
    ops.sort_by(|a, b| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)));
    edges.sort_by(|a, b| (&a.caller, &a.caller_operation, &a.callee).cmp(&(&b.caller, &b.caller_operation, &b.callee)));
    WindowAggregate { sessions: CALLS, ops, edges, ..Default::default() }
}

/// Per-op timings of the normal flow: (db self, cache self, api self, gap to db).
struct Flow {
    db_ms: f64,
    cache_ms: f64,
    api_ms: f64,
    db_gap_ms: f64,
}

const NORMAL: Flow = Flow { db_ms: 5.0, cache_ms: 1.0, api_ms: 4.0, db_gap_ms: 1.0 };

/// The ops and edges of a flow; `tweak` changes them before the window is built.
fn flow(f: &Flow, tweak: impl FnOnce(&mut Vec<OpStats>, &mut Vec<EdgeStats>)) -> WindowAggregate {
    let db_call = f.db_ms + f.db_gap_ms;
    let cache_call = f.cache_ms + 0.5;
    let api = f.api_ms + db_call + cache_call;
    let web = 2.0 + api;
    let mut ops = vec![
        op("web", "GET /", 2.0, web),
        op("api", "handle", f.api_ms, api),
        client(op("api", "call db", f.db_gap_ms, db_call)),
        client(op("api", "call cache", 0.5, cache_call)),
        op("db", "query", f.db_ms, f.db_ms),
        logged(op("cache", "get", f.cache_ms, f.cache_ms), 0, &[("hit for key #", CALLS)]),
    ];
    let mut edges = vec![
        edge("web", "GET /", "api", api, api),
        edge("api", "call db", "db", db_call, f.db_ms),
        edge("api", "call cache", "cache", cache_call, f.cache_ms),
    ];
    // web's span is a server span calling api's server span: no client side.
    edges[0].client_us = LatencySketch::default();
    edges[0].gap_us = LatencySketch::default();
    tweak(&mut ops, &mut edges);
    window(ops, edges)
}

fn find<'a>(ops: &'a mut [OpStats], service: &str, operation: &str) -> &'a mut OpStats {
    ops.iter_mut().find(|o| o.service == service && o.operation == operation).expect("op")
}

fn top(c: &[IncidentCandidate]) -> (&str, &str, CandidateKind) {
    let first = c.first().expect("a candidate");
    (first.service.as_str(), first.operation.as_str(), first.kind)
}

fn named(c: &[IncidentCandidate]) -> Vec<(&str, CandidateKind)> {
    c.iter().map(|c| (c.service.as_str(), c.kind)).collect()
}

fn evidence(c: &IncidentCandidate, kind: &str) -> String {
    c.evidence.iter().filter(|e| e.kind == kind).map(|e| e.detail.clone()).collect::<Vec<_>>().join(" | ")
}

#[test]
fn nothing_changed_means_no_candidate() {
    assert!(rank(&flow(&NORMAL, |_, _| {}), &flow(&NORMAL, |_, _| {})).is_empty());
}

#[test]
fn error_thrown_in_a_leaf_blames_the_leaf_not_its_callers() {
    let inc = flow(&NORMAL, |ops, _| {
        *find(ops, "db", "query") = logged(failing(op("db", "query", 5.0, 5.0), 40, true), 40, &[]);
        find(ops, "db", "query").messages = vec![("deadlock detected".into(), 40)];
        for (s, o) in [("api", "handle"), ("api", "call db"), ("web", "GET /")] {
            let f = find(ops, s, o);
            f.errors = 40;
        }
    });
    let c = rank(&flow(&NORMAL, |_, _| {}), &inc);
    assert_eq!(top(&c), ("db", "query", CandidateKind::Error));
    assert!(c[0].score > 0.7, "{c:?}");
    assert!(evidence(&c[0], "failure_message").contains("deadlock detected"));
    assert!(evidence(&c[0], "error_log_count").contains("0.20 error logs per call"), "{:?}", c[0]);
    assert!(evidence(&c[0], "affected_callers").contains("api handle (errors 0.0% → 20.0%)"), "{:?}", c[0]);
    assert_eq!(named(&c).len(), 1, "callers' propagated failures are not candidates: {c:?}");
}

#[test]
fn error_returned_without_exception_or_log_still_ranks_first() {
    let inc = flow(&NORMAL, |ops, _| {
        *find(ops, "db", "query") = failing(op("db", "query", 5.0, 5.0), 30, true);
        find(ops, "api", "handle").errors = 30;
    });
    let c = rank(&flow(&NORMAL, |_, _| {}), &inc);
    assert_eq!(top(&c), ("db", "query", CandidateKind::Error));
    assert!(c[0].score < 0.9 && c[0].score > 0.6, "no log: confidence 0.9: {c:?}");
}

#[test]
fn latency_in_a_leaf_is_blamed_on_the_leaf_not_on_slower_callers() {
    let c = rank(&flow(&NORMAL, |_, _| {}), &flow(&Flow { db_ms: 50.0, ..NORMAL }, |_, _| {}));
    assert_eq!(top(&c), ("db", "query", CandidateKind::Latency));
    assert_eq!(named(&c), [("db", CandidateKind::Latency)], "callers' durations rose, their self time did not");
    assert!(evidence(&c[0], "self_time_change").contains("self time p50 5.0 → 49.9 ms"), "{:?}", c[0]);
    assert!(evidence(&c[0], "affected_callers").contains("web GET / (duration p90"), "{:?}", c[0]);
}

#[test]
fn latency_in_a_middle_service_is_blamed_on_it() {
    let c = rank(&flow(&NORMAL, |_, _| {}), &flow(&Flow { api_ms: 40.0, ..NORMAL }, |_, _| {}));
    assert_eq!(top(&c), ("api", "handle", CandidateKind::Latency));
    assert_eq!(c.len(), 1, "{c:?}");
}

#[test]
fn network_delay_seen_only_on_the_client_span_is_attributed_to_the_call_with_a_caveat() {
    let c = rank(&flow(&NORMAL, |_, _| {}), &flow(&Flow { db_gap_ms: 40.0, ..NORMAL }, |_, _| {}));
    assert_eq!(top(&c), ("api", "call db", CandidateKind::Network));
    let caveat = evidence(&c[0], "caveat");
    assert!(caveat.contains("visible only on api's client span, outside db's own spans"), "{caveat}");
    assert!(evidence(&c[0], "server_side").contains("db's own span p50 5.0 → 5.0"), "{:?}", c[0]);
    assert!(!named(&c).contains(&("db", CandidateKind::Latency)), "{c:?}");
}

#[test]
fn cpu_contention_slowing_every_operation_points_at_the_service() {
    let extra = |ops: &mut Vec<OpStats>| {
        ops.push(op("api", "list", 3.0, 3.0));
        ops.push(op("api", "health", 2.0, 2.0));
    };
    let base = flow(&NORMAL, |ops, _| extra(ops));
    let inc = flow(&Flow { api_ms: 12.0, ..NORMAL }, |ops, _| {
        ops.push(op("api", "list", 9.0, 9.0));
        ops.push(op("api", "health", 6.0, 6.0));
    });
    let c = rank(&base, &inc);
    assert_eq!(top(&c), ("api", "*", CandidateKind::ServiceLatency));
    assert!(evidence(&c[0], "service_wide_slowdown").starts_with("3 of 3 operations' self time rose"), "{:?}", c[0]);
    assert!(!named(&c).contains(&("api", CandidateKind::Latency)), "folded into the service: {c:?}");
    // One slow operation of three is that operation, not the service.
    let one = rank(&base, &flow(&Flow { api_ms: 12.0, ..NORMAL }, |ops, _| extra(ops)));
    assert_eq!(top(&one), ("api", "handle", CandidateKind::Latency));
}

#[test]
fn cascade_of_timeouts_is_blamed_on_the_slow_callee() {
    // db got 100× slower; api's client times out (its span fails, db's does not); web fails.
    let inc = flow(&Flow { db_ms: 500.0, ..NORMAL }, |ops, edges| {
        *find(ops, "api", "call db") = failing(client(op("api", "call db", 1.0, 300.0)), 60, true);
        find(ops, "api", "handle").errors = 60;
        find(ops, "web", "GET /").errors = 60;
        edges[1].caller_only_errors = 60;
    });
    let c = rank(&flow(&NORMAL, |_, _| {}), &inc);
    assert_eq!(top(&c), ("db", "query", CandidateKind::Latency), "{c:?}");
    assert!(evidence(&c[0], "explains").contains("failures starting at api call db"), "{:?}", c[0]);
    let api = c.iter().find(|c| c.kind == CandidateKind::Error).expect("api's failures stay, second");
    assert!(api.score < c[0].score && evidence(api, "caveat").contains("consequence of db query"), "{api:?}");
}

#[test]
fn a_hiding_fault_that_only_removes_a_log_line_is_found_behind_the_callers_failures() {
    // cache stopped writing its usual line (a code path no longer taken) and
    // returns nothing; api fails on the empty answer; no cache span fails.
    let inc = flow(&NORMAL, |ops, edges| {
        *find(ops, "cache", "get") = op("cache", "get", 1.0, 1.0);
        *find(ops, "api", "handle") = logged(failing(op("api", "handle", 4.0, 11.5), 50, true), 50, &[]);
        find(ops, "web", "GET /").errors = 50;
        edges[2].caller_only_errors = 0;
    });
    let c = rank(&flow(&NORMAL, |_, _| {}), &inc);
    assert_eq!(top(&c), ("cache", "get", CandidateKind::LogChange), "{c:?}");
    assert!(evidence(&c[0], "log_change").contains("gone line \"hit for key #\": 0% of calls, baseline 100%"), "{:?}", c[0]);
    assert_eq!(c[1].kind, CandidateKind::Error);
    // Without the caller's failures the log change alone is weak.
    let quiet = rank(&flow(&NORMAL, |_, _| {}), &flow(&NORMAL, |ops, _| *find(ops, "cache", "get") = op("cache", "get", 1.0, 1.0)));
    assert_eq!(top(&quiet), ("cache", "get", CandidateKind::LogChange));
    assert!(quiet[0].score <= 0.2);
}

#[test]
fn retry_waits_of_a_caller_are_not_its_fault() {
    // db fails a third of calls; api retries with backoff: more calls, more self time.
    let inc = flow(&Flow { api_ms: 30.0, ..NORMAL }, |ops, edges| {
        *find(ops, "db", "query") = failing(op("db", "query", 5.0, 5.0), 90, true);
        edges[1].calls = 300;
        edges[1].errors = 90;
    });
    let c = rank(&flow(&NORMAL, |_, _| {}), &inc);
    assert_eq!(top(&c), ("db", "query", CandidateKind::Error), "{c:?}");
    let api = c.iter().find(|c| c.service == "api").expect("api latency");
    assert!(evidence(api, "caveat").contains("retries"), "{api:?}");
}

#[test]
fn error_logs_without_failures_are_a_weak_candidate() {
    let inc = flow(&NORMAL, |ops, _| {
        let cache = find(ops, "cache", "get");
        cache.error_logs = 30;
    });
    let c = rank(&flow(&NORMAL, |_, _| {}), &inc);
    assert_eq!(top(&c), ("cache", "get", CandidateKind::ErrorLog));
    assert!(c[0].score < 0.3);
}

#[test]
fn merged_node_aggregates_rank_like_one_node() {
    let base = flow(&NORMAL, |_, _| {});
    let inc = flow(&Flow { db_ms: 50.0, ..NORMAL }, |_, _| {});
    let (mut base2, mut inc2) = (base.clone(), inc.clone());
    base2.merge(&base);
    inc2.merge(&inc);
    assert_eq!(top(&rank(&base2, &inc2)), top(&rank(&base, &inc)));
}
