//! The parser over many phrasings.

use super::*;

/// 2023-11-14T22:23:20Z.
const NOW: u64 = 1_700_000_600_000;
const HOUR: u64 = 3_600_000;

fn vocab() -> Vocabulary {
    Vocabulary {
        services: vec!["checkout".into(), "payments".into(), "frontend".into(), "cart-service".into()],
        operations: vec!["GET /checkout".into(), "POST /orders".into(), "GET /health".into()],
    }
}

fn q(text: &str) -> Parsed {
    parse(text, NOW, &vocab())
}

#[test]
fn the_issue_example() {
    let p = q("slowest checkout requests with errors in the last hour");
    let query = &p.query;
    assert_eq!(query.service.as_deref(), Some("checkout"));
    assert_eq!((query.errors, query.errors_only, query.order_by), (ErrorFilter::Only, true, OrderBy::DurationDesc));
    assert_eq!((query.since_unix_ms, query.range.as_deref()), (Some(NOW - HOUR), Some("1h")));
    assert_eq!(query.since.as_deref(), Some("2023-11-14T21:23:20.000000000Z"));
    assert_eq!(query.limit, LIMIT_DEFAULT);
    assert!(p.unknown_words.is_empty(), "{:?}", p.unknown_words);
    assert_eq!(
        query.interpretation(),
        "sessions touching service checkout with errors active in the last 1h (since 2023-11-14T21:23:20.000000000Z), slowest first, at most 20"
    );
}

#[test]
fn time_ranges() {
    for (text, ms) in [
        ("errors in the last 15 minutes", 15 * 60_000),
        ("errors last 15m", 15 * 60_000),
        ("past 2 hours", 2 * HOUR),
        ("previous day", 24 * HOUR),
        ("in the past 3 days", 72 * HOUR),
        ("since 10m", 10 * 60_000),
        ("2h", 2 * HOUR),
        ("last 1 week", 7 * 24 * HOUR),
        ("last 30 seconds", 30_000),
    ] {
        assert_eq!(q(text).query.since_unix_ms, Some(NOW - ms), "{text}");
    }
    let absolute = q("since 2023-11-14T20:00:00Z");
    assert_eq!(absolute.query.since_unix_ms, Some(1_699_992_000_000));
    let today = q("failed requests today");
    assert_eq!(today.query.since_unix_ms, Some(NOW - NOW % (24 * HOUR)));
    assert_eq!(q("requests").query.since_unix_ms, None);
}

#[test]
fn orderings() {
    for (text, order) in [
        ("slowest requests", OrderBy::DurationDesc),
        ("longest checkout flows", OrderBy::DurationDesc),
        ("slow payments", OrderBy::DurationDesc),
        ("fastest requests", OrderBy::DurationAsc),
        ("quickest", OrderBy::DurationAsc),
        ("latest errors", OrderBy::Newest),
        ("most recent requests", OrderBy::Newest),
        ("last requests", OrderBy::Newest),
        ("oldest sessions", OrderBy::Oldest),
        ("requests with the most errors", OrderBy::ErrorsDesc),
        ("payments", OrderBy::Newest),
    ] {
        assert_eq!(q(text).query.order_by, order, "{text}");
    }
    let both = q("slowest fastest requests");
    assert_eq!(both.query.order_by, OrderBy::DurationDesc);
    assert_eq!(both.notes.len(), 1);
}

#[test]
fn errors() {
    for (text, errors) in [
        ("failed checkouts", ErrorFilter::Only),
        ("failing payments", ErrorFilter::Only),
        ("requests with exceptions", ErrorFilter::Only),
        ("5xx requests", ErrorFilter::Only),
        ("requests without errors", ErrorFilter::Without),
        ("requests with no errors", ErrorFilter::Without),
        ("successful payments", ErrorFilter::Without),
        ("slowest requests", ErrorFilter::Any),
    ] {
        assert_eq!(q(text).query.errors, errors, "{text}");
    }
}

#[test]
fn durations_and_limits() {
    let p = q("requests slower than 500ms");
    assert_eq!(p.query.min_duration_ms, Some(500.0));
    assert_eq!(q("requests longer than 2 seconds").query.min_duration_ms, Some(2_000.0));
    assert_eq!(q("calls over 1.5s").query.min_duration_ms, Some(1_500.0));
    assert_eq!(q("requests taking more than 300 ms").query.min_duration_ms, Some(300.0));
    assert_eq!(q("requests >250ms").query.min_duration_ms, Some(250.0));
    assert_eq!(q("requests > 250").query.min_duration_ms, Some(250.0));
    assert_eq!(q("requests faster than 20ms").query.max_duration_ms, Some(20.0));
    assert_eq!(q("requests under 1s").query.max_duration_ms, Some(1_000.0));
    assert_eq!(q("requests at least 100ms").query.min_duration_ms, Some(100.0));
    assert_eq!(q("top 5 slowest requests").query.limit, 5);
    assert_eq!(q("10 slowest checkout requests").query.limit, 10);
    assert_eq!(q("first 3 errors").query.limit, 3);
    assert_eq!(q("last 7 requests").query.limit, 7);
    assert_eq!(q("last 7 requests").query.order_by, OrderBy::Newest);
    let capped = q("top 5000 requests");
    assert_eq!(capped.query.limit, LIMIT_MAX);
    assert!(capped.notes[0].contains("capped"));
}

#[test]
fn names() {
    assert_eq!(q("CHECKOUT errors").query.service.as_deref(), Some("checkout"), "case-insensitive, canonical spelling");
    assert_eq!(q("service cart-service").query.service.as_deref(), Some("cart-service"));
    assert_eq!(q("service:payments errors").query.service.as_deref(), Some("payments"));
    assert_eq!(q("svc=unknown-svc").query.service.as_deref(), Some("unknown-svc"), "explicit names are taken as given");
    assert_eq!(q("checkout service requests").query.service.as_deref(), Some("checkout"));
    assert_eq!(q("requests to /orders").query.operation.as_deref(), Some("/orders"));
    assert_eq!(q("slow GET /checkout requests").query.operation.as_deref(), Some("GET /checkout"));
    assert_eq!(q("\"POST /orders\" failures").query.operation.as_deref(), Some("POST /orders"));
    assert_eq!(q("\"payments\" failures").query.service.as_deref(), Some("payments"));
    assert_eq!(q("health requests").query.operation.as_deref(), Some("health"), "part of a known operation");
    assert_eq!(q("endpoint /x").query.operation.as_deref(), Some("/x"));
    let two = q("checkout payments");
    assert_eq!(two.query.service.as_deref(), Some("checkout"));
    assert!(two.notes[0].contains("payments ignored"));
}

#[test]
fn unknown_words_are_reported_never_used() {
    let p = q("slowest checkout requests; DROP TABLE sessions -- with errors");
    assert_eq!(p.unknown_words, ["DROP", "TABLE", "--"]);
    assert_eq!(p.query.service.as_deref(), Some("checkout"));
    let gibberish = q("flibbertigibbet wobble");
    assert_eq!(gibberish.unknown_words, ["flibbertigibbet", "wobble"]);
    assert_eq!(gibberish.query, StructuredQuery::default());
    assert_eq!(q("").query, StructuredQuery::default());
}

#[test]
fn bounds_hold() {
    let long = "wobble ".repeat(200);
    let p = q(&long);
    assert!(p.unknown_words.len() <= UNKNOWN_MAX);
    assert!(p.notes.iter().any(|n| n.contains("first 64 words")));
    let unterminated = q("\"GET /checkout");
    assert_eq!(unterminated.query.operation.as_deref(), Some("GET /checkout"));
    assert_eq!(q("last 99999999999999999999 days").query.since_unix_ms, Some(0), "saturates");
}

fn row(id: &str, duration_ms: f64, error_count: u64, root: &str, last_seen_unix_ms: u64) -> crate::query::SessionListItem {
    crate::query::SessionListItem {
        correlation_id: crate::model::CorrelationId::from_trusted(id),
        tenant_id: crate::model::TenantId::default_tenant(),
        live: false,
        start: String::new(),
        end: String::new(),
        duration_ms,
        total_spans: 1,
        total_logs: 0,
        total_metrics: 0,
        error_count,
        services: vec![],
        root_span: Some(root.to_owned()),
        last_seen_unix_ms,
    }
}

#[test]
fn apply_filters_sorts_and_limits() {
    let rows = vec![row("a", 50.0, 0, "GET /checkout", 1), row("b", 900.0, 2, "GET /checkout", 2), row("c", 300.0, 1, "POST /orders", 3)];
    let ids = |query: &StructuredQuery| -> Vec<String> { query.apply(rows.clone()).iter().map(|r| r.correlation_id.to_string()).collect() };
    assert_eq!(ids(&StructuredQuery { min_duration_ms: Some(100.0), order_by: OrderBy::DurationDesc, ..Default::default() }), ["b", "c"]);
    assert_eq!(ids(&StructuredQuery { operation: Some("checkout".into()), errors: ErrorFilter::Without, ..Default::default() }), ["a"]);
    assert_eq!(ids(&StructuredQuery { order_by: OrderBy::Oldest, limit: 2, ..Default::default() }), ["a", "b"]);
    assert_eq!(ids(&StructuredQuery { order_by: OrderBy::ErrorsDesc, ..Default::default() }), ["b", "c", "a"]);
}
