//! Route tests of `/api/v1/correlate/{id}[/timeline|/impact]` over a fake
//! backend, including tenancy and backend failures.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use serde_json::json;

use super::super::fake::{app, app_with_state, get, FakeBackend};
use crate::model::TenantId;
use crate::query::fixtures::{checkout_session, session, span, stored_span, MS, T0};
use crate::query::{Page, QueryError, Segment, PAGE_LIMIT_MAX};

fn checkout_backend() -> FakeBackend {
    FakeBackend::default().with_session(TenantId::DEFAULT, checkout_session("order-42"))
}

#[tokio::test]
async fn full_answer_merges_segments_and_drops_the_duplicate() {
    let (app, _) = app(checkout_backend(), false);
    let reply = get(&app, "/api/v1/correlate/order-42", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["correlation_id"], "order-42");
    assert_eq!(body["live"], true);
    assert_eq!(
        body["summary"],
        json!({"total_spans": 3, "total_logs": 2, "total_metrics": 1, "error_count": 2, "service_count": 3, "duration_ms": 100.0})
    );
    assert_eq!(body["time_range"], json!({"start": "2023-11-14T22:13:20.000000000Z", "end": "2023-11-14T22:13:20.100000000Z"}));
    assert_eq!(body["services"], json!(["checkout", "frontend", "payments"]));

    let charge = &body["traces"][1];
    assert_eq!(charge["span_name"], "charge", "the live copy wins over the archived one");
    assert_eq!(charge["span_kind"], "client");
    assert_eq!(charge["status_code"], "error");
    assert_eq!(charge["status_message"], "card declined");
    assert_eq!(charge["service_name"], "checkout");
    assert_eq!(charge["duration_ns"], 50_000_000);
    assert_eq!(charge["trace_id"], "01".repeat(16));
    assert_eq!(charge["parent_span_id"], "0101010101010101");
    assert_eq!(charge["timestamp"], "2023-11-14T22:13:20.010000000Z");
    assert_eq!(body["traces"][0]["parent_span_id"], "");
    assert_eq!(body["traces"][0]["attributes"], json!({"http.route": "/checkout"}));

    let log = &body["logs"][1];
    assert_eq!(
        (log["body"].clone(), log["severity_number"].clone(), log["service_name"].clone()),
        (json!("payment failed"), json!(17), json!("payments"))
    );
    assert_eq!(body["metrics"][0]["labels"], json!({"route": "/checkout"}));
    assert_eq!(body["errors"][0]["type"], "span");
    assert_eq!(body["errors"][1]["type"], "log");
    assert_eq!(body["skipped_records"], 0);
}

#[tokio::test]
async fn full_answer_timeline_is_sorted() {
    let (app, _) = app(checkout_backend(), false);
    let body = get(&app, "/api/v1/correlate/order-42", &[]).await.json();
    let timeline = body["timeline"].as_array().expect("timeline array");
    let stamps: Vec<&str> = timeline.iter().map(|e| e["timestamp"].as_str().expect("timestamp")).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    let kinds: Vec<&str> = timeline.iter().map(|e| e["type"].as_str().expect("type")).collect();
    assert_eq!(kinds, ["span", "log", "span", "span", "log", "metric"]);
    assert_eq!(
        timeline[2],
        json!({
            "timestamp": "2023-11-14T22:13:20.010000000Z", "type": "span", "service": "checkout", "description": "charge",
            "span_id": "0202020202020202", "duration_ms": 50.0, "level": "error", "is_error": true
        })
    );
    assert_eq!(timeline[5]["duration_ms"], json!(null));
    assert_eq!(timeline[5]["description"], "http.server.duration = 0.1");
}

#[tokio::test]
async fn timeline_route() {
    let (app, _) = app(checkout_backend(), false);
    let reply = get(&app, "/api/v1/correlate/order-42/timeline", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!((body["correlation_id"].clone(), body["live"].clone()), (json!("order-42"), json!(true)));
    assert_eq!(body["timeline"].as_array().map(Vec::len), Some(6));
    assert_eq!(body["partial"], json!(false));
    assert_eq!(body.as_object().map(|o| o.len()), Some(6), "only correlation_id, live, partial, timeline, truncated, page");
    assert_eq!(body["truncated"], json!(false));
}

#[tokio::test]
async fn impact_route() {
    let (app, _) = app(checkout_backend(), false);
    let reply = get(&app, "/api/v1/correlate/order-42/impact", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["services"], json!(["checkout", "frontend", "payments"]));
    assert_eq!(body["operations"][0], json!({"service": "checkout", "operation": "charge", "calls": 1, "errors": 1}));
    assert_eq!(body["errors_by_service"], json!({"checkout": 1, "frontend": 0, "payments": 1}));
    assert_eq!(body["root_span"], json!({"span_name": "GET /checkout", "service_name": "frontend", "failed": false, "duration_ms": 100.0}));
    assert_eq!(body["user_facing_failed"], false);
}

#[tokio::test]
async fn unknown_id_is_404() {
    let (app, _) = app(checkout_backend(), false);
    for uri in ["/api/v1/correlate/nope", "/api/v1/correlate/nope/timeline", "/api/v1/correlate/nope/impact"] {
        let reply = get(&app, uri, &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.error().0, "not_found");
    }
}

#[tokio::test]
async fn malformed_ids_are_400_before_any_lookup() {
    let (app, backend) = app(checkout_backend(), false);
    let long = format!("/api/v1/correlate/{}", "a".repeat(101));
    for uri in [
        "/api/v1/correlate/",
        "/api/v1/correlate//timeline",
        "/api/v1/correlate/a%20b",
        "/api/v1/correlate/a.b/timeline",
        "/api/v1/correlate/%FF",
        long.as_str(),
    ] {
        let reply = get(&app, uri, &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(reply.error().0, "bad_request");
    }
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 0);
    let (_, message) = get(&app, "/api/v1/correlate/a%20b", &[]).await.error();
    assert!(message.contains("\"a b\""), "{message}");
}

#[tokio::test]
async fn backend_failures_map_to_503_and_500() {
    let failing = |e| FakeBackend { failure: Some(e), ..checkout_backend() };
    let (unavailable, _) = app(failing(QueryError::Unavailable("owner unreachable".into())), false);
    let reply = get(&unavailable, "/api/v1/correlate/order-42", &[]).await;
    assert_eq!((reply.status, reply.error().0.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
    let (broken, _) = app(failing(QueryError::Storage("disk".into())), false);
    let reply = get(&broken, "/api/v1/correlate/order-42/impact", &[]).await;
    assert_eq!((reply.status, reply.error().0.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
}

#[tokio::test]
async fn tenancy_scopes_lookups() {
    let backend = FakeBackend::default().with_session("acme", checkout_session("order-42"));
    let (app, backend) = app(backend, true);
    let uri = "/api/v1/correlate/order-42";
    let missing = get(&app, uri, &[]).await;
    assert_eq!((missing.status, missing.error().0.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    assert_eq!(get(&app, uri, &[("X-Tenant-ID", "acme")]).await.status, StatusCode::OK);
    assert_eq!(get(&app, "/api/v1/correlate/order-42?tenant=acme", &[]).await.status, StatusCode::OK);
    assert_eq!(get(&app, uri, &[("X-Tenant-ID", "other")]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/api/v1/correlate/order-42?tenant=a%20b", &[]).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 3, "bad tenants never reach the backend");
}

#[tokio::test]
async fn without_tenancy_the_header_is_ignored() {
    let (app, _) = app(checkout_backend(), false);
    assert_eq!(get(&app, "/api/v1/correlate/order-42", &[("X-Tenant-ID", "acme")]).await.status, StatusCode::OK);
}

/// 7 archived spans and 5 live ones; span IDs 1..=12 in storage order,
/// started in reverse order of their IDs.
fn big_backend() -> FakeBackend {
    let stored = |ids: std::ops::RangeInclusive<u8>| -> Vec<_> {
        ids.map(|i| stored_span("svc", &span(1, i, None, &format!("op{i}"), T0 + (20 - u64::from(i)) * MS, T0 + 30 * MS))).collect()
    };
    let segments = vec![
        Segment { live: true, spans: stored(8..=12), ..Default::default() },
        Segment { live: false, spans: stored(1..=7), ..Default::default() },
    ];
    FakeBackend::default().with_session(TenantId::DEFAULT, session("big", segments))
}

#[tokio::test]
async fn a_page_is_capped_and_says_how_to_get_the_rest() {
    let (app, backend) = app(big_backend(), false);
    let body = get(&app, "/api/v1/correlate/big?limit=5", &[]).await.json();
    assert_eq!(body["traces"].as_array().map(Vec::len), Some(5));
    assert_eq!(body["truncated"], json!(true));
    assert_eq!(
        body["page"],
        json!({"offset": 0, "limit": 5, "session_spans": 12, "session_logs": 0, "session_metrics": 0,
               "next": "/api/v1/correlate/big?offset=5&limit=5"})
    );
    // The summary counts the whole session; the page is sorted by time.
    assert_eq!(body["summary"]["total_spans"], json!(12));
    let names: Vec<&str> = body["traces"].as_array().into_iter().flatten().filter_map(|s| s["span_name"].as_str()).collect();
    assert_eq!(names, ["op5", "op4", "op3", "op2", "op1"], "archived first, each page by time");
    assert_eq!(*backend.last_page.lock(), Some(Page { offset: 0, limit: 5 }));
}

#[tokio::test]
async fn following_next_visits_every_span_once() {
    let (app, _) = app(big_backend(), false);
    for view in ["", "/timeline", "/impact"] {
        let mut uri = Some(format!("/api/v1/correlate/big{view}?limit=5"));
        let (mut pages, mut seen) = (0, Vec::new());
        while let Some(u) = uri.take() {
            let body = get(&app, &u, &[]).await.json();
            match view {
                "" => seen.extend(body["traces"].as_array().into_iter().flatten().map(|s| s["span_name"].clone())),
                "/timeline" => seen.extend(body["timeline"].as_array().into_iter().flatten().map(|s| s["description"].clone())),
                _ => seen.extend(body["operations"].as_array().into_iter().flatten().map(|s| s["operation"].clone())),
            }
            uri = body["page"]["next"].as_str().map(str::to_owned);
            pages += 1;
        }
        let mut names: Vec<String> = seen.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
        names.sort();
        let mut expected: Vec<String> = (1..=12).map(|i| format!("op{i}")).collect();
        expected.sort();
        assert_eq!((pages, names), (3, expected), "{view}");
    }
}

#[tokio::test]
async fn the_default_page_is_the_cap_and_a_small_session_is_whole() {
    let (app, backend) = app(checkout_backend(), false);
    let body = get(&app, "/api/v1/correlate/order-42", &[]).await.json();
    assert_eq!(*backend.last_page.lock(), Some(Page { offset: 0, limit: PAGE_LIMIT_MAX }));
    assert_eq!((body["truncated"].clone(), body["page"]["next"].clone()), (json!(false), json!(null)));
}

#[tokio::test]
async fn bad_pages_are_400_naming_them() {
    let (app, backend) = app(big_backend(), false);
    let over = format!("limit={}", PAGE_LIMIT_MAX + 1);
    for (query, named) in [("limit=0", "limit \"0\""), (over.as_str(), "limit"), ("offset=-1", "offset \"-1\""), ("page=2", "page")] {
        let reply = get(&app, &format!("/api/v1/correlate/big?{query}"), &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.error().1.contains(named), "{query}: {}", reply.error().1);
    }
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn next_keeps_the_tenant_parameter() {
    let backend = FakeBackend::default().with_session("acme", big_backend().sessions.into_values().next().expect("one session"));
    let (app, _) = app(backend, true);
    let body = get(&app, "/api/v1/correlate/big/timeline?limit=10&tenant=acme", &[]).await.json();
    assert_eq!(body["page"]["next"], json!("/api/v1/correlate/big/timeline?offset=10&limit=10&tenant=acme"));
}

#[tokio::test(start_paused = true)]
async fn reads_beyond_the_permits_are_429_with_retry_after() {
    let (app, backend, state) = app_with_state(checkout_backend(), false);
    let held = state.session_reads.clone().acquire_many_owned(super::SESSION_READS_MAX as u32).await.expect("permits");
    let reply = get(&app, "/api/v1/correlate/order-42", &[]).await;
    assert_eq!((reply.status, reply.error().0.as_str()), (StatusCode::TOO_MANY_REQUESTS, "resource_exhausted"));
    assert_eq!(reply.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 0, "no read while over the bound");
    drop(held);
    assert_eq!(get(&app, "/api/v1/correlate/order-42", &[]).await.status, StatusCode::OK);
}
