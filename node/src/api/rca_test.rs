//! Route tests of `POST /api/v1/ai/rca` over a fake backend: the answer's
//! shape, baselines, and 400/404.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::super::fake::{FakeBackend, FixedClock, Reply};
use super::super::{router, ApiState};
use crate::model::TenantId;
use crate::query::fixtures::{checkout_session, failed, session, span, stored_span, MS, T0};
use crate::query::Segment;
use crate::rca::{Baselines, Sample};

fn app_with(backend: FakeBackend, baselines: Baselines) -> (axum::Router, Arc<FakeBackend>) {
    let backend = Arc::new(backend);
    let state = ApiState {
        backend: Arc::clone(&backend),
        tenancy_enabled: false,
        max_id_length: 100,
        clock: Arc::new(FixedClock),
        baselines: Arc::new(baselines),
        explainer: Arc::new(crate::llm::Explainer::off()),
        session_reads: crate::api::session_reads(),
    };
    (router(state), backend)
}

async fn post(app: &axum::Router, body: &str) -> Reply {
    let request =
        Request::post("/api/v1/ai/rca").header("content-type", "application/json").body(Body::from(body.to_owned())).expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body").to_vec();
    Reply { status, headers, body }
}

fn checkout_backend() -> FakeBackend {
    FakeBackend::default().with_session(TenantId::DEFAULT, checkout_session("order-42"))
}

#[tokio::test]
async fn a_session_is_analysed() {
    let (app, _) = app_with(checkout_backend(), Baselines::default());
    let reply = post(&app, r#"{"correlation_id": "order-42"}"#).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(
        (body["correlation_id"].clone(), body["live"].clone(), body["partial"].clone()),
        (json!("order-42"), json!(true), json!(false))
    );
    // checkout's charge failed, its callee (payments) did not: charge is the origin.
    assert_eq!(body["root_cause"]["service"], "checkout");
    assert_eq!(body["root_cause"]["kind"], "error");
    assert_eq!(body["root_cause"], body["candidates"][0]);
    assert_eq!(body["error_origin"]["message"], "card declined");
    // payments logged an error but no payments span failed: a weaker candidate of its own.
    assert_eq!(body["error_origin"]["logs"], json!([]));
    let kinds: Vec<(Value, Value)> =
        body["candidates"].as_array().expect("array").iter().map(|c| (c["service"].clone(), c["kind"].clone())).collect();
    assert!(kinds.contains(&(json!("payments"), json!("error_log"))), "{kinds:?}");
    assert_eq!(body["critical_path"]["total_ms"], 100.0);
    assert_eq!(body["dependency_graph"]["nodes"], json!(["checkout", "frontend", "payments"]));
    for field in ["anomalies", "counterfactuals", "chains", "candidates"] {
        assert!(body[field].is_array(), "{field}");
    }
    assert!(body["explanation"].as_str().is_some_and(|t| t.contains("checkout charge")), "{}", body["explanation"]);
}

#[tokio::test]
async fn learned_baselines_reach_the_analysis_without_the_session_itself() {
    // An archived segment: web → db where db took 90 ms; baselines say 10 ms.
    let root = span(1, 1, None, "GET /", T0, T0 + 100 * MS);
    let db = span(1, 2, Some(1), "query", T0 + 5 * MS, T0 + 95 * MS);
    let segment = Segment { live: false, spans: vec![stored_span("web", &root), stored_span("db", &db)], ..Default::default() };
    let baselines = Baselines::default();
    let normal = |service: &str, operation: &str, d: u64, own: u64| Sample {
        service: service.into(),
        operation: operation.into(),
        duration_us: d,
        self_us: own,
    };
    for _ in 0..20 {
        baselines.observe(&TenantId::default_tenant(), &[normal("web", "GET /", 20_000, 10_000), normal("db", "query", 10_000, 10_000)]);
    }
    // As the node would have: the archived segment was learned when it closed.
    baselines.observe_session(&TenantId::default_tenant(), segment.spans.iter().map(|s| (s.service_name.as_str(), s.span.as_slice())));
    let backend = FakeBackend::default().with_session(TenantId::DEFAULT, session("slow-1", vec![segment]));
    let (app, _) = app_with(backend, baselines);
    let body = post(&app, r#"{"correlation_id": "slow-1"}"#).await.json();
    assert_eq!(body["live"], false);
    assert_eq!((body["root_cause"]["service"].clone(), body["root_cause"]["kind"].clone()), (json!("db"), json!("latency")));
    let anomaly = body["anomalies"].as_array().and_then(|a| a.iter().find(|x| x["service"] == "db")).expect("db anomaly").clone();
    assert_eq!(anomaly["baseline"]["samples"], 20, "the session's own segment is left out");
    let cf = &body["counterfactuals"][0];
    assert_eq!((cf["kind"].clone(), cf["total_ms"].clone()), (json!("latency"), json!(100.0)));
    // db at its p50 (10 ms, within the histogram's 1%): 5 + 10 + 5 ms.
    let counterfactual = cf["counterfactual_total_ms"].as_f64().expect("number");
    assert!((counterfactual - 20.0).abs() < 0.2, "{cf}");
}

#[tokio::test]
async fn bad_bodies_and_ids_are_400_before_any_lookup() {
    let (app, backend) = app_with(checkout_backend(), Baselines::default());
    let long = format!(r#"{{"correlation_id": "{}"}}"#, "a".repeat(101));
    for body in [
        "",
        "not json",
        "[1]",
        "{}",
        r#"{"correlation_id": 42}"#,
        r#"{"correlation_id": "a b"}"#,
        r#"{"correlation_id": ""}"#,
        r#"{"correlation_id": "x", "start": "2023-11-14T22:00:00Z"}"#,
        r#"{"correlation_id": "x", "limit": 3}"#,
        long.as_str(),
    ] {
        let reply = post(&app, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.error().0, "bad_request", "{body}");
    }
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 0);
    let (_, message) = post(&app, r#"{"correlation_id": "x", "limit": 3}"#).await.error();
    assert!(message.contains("unknown field \"limit\""), "{message}");
}

#[tokio::test]
async fn unknown_sessions_are_404() {
    let (app, _) = app_with(checkout_backend(), Baselines::default());
    let reply = post(&app, r#"{"correlation_id": "nope"}"#).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error().0, "not_found");
}

#[tokio::test]
async fn a_failed_root_without_children_is_its_own_origin() {
    let only = Segment {
        live: true,
        spans: vec![stored_span("api", &failed(span(1, 1, None, "GET /x", T0, T0 + MS), "boom"))],
        ..Default::default()
    };
    let backend = FakeBackend::default().with_session(TenantId::DEFAULT, session("one", vec![only]));
    let (app, _) = app_with(backend, Baselines::default());
    let body: Value = post(&app, r#"{"correlation_id": "one"}"#).await.json();
    assert_eq!(body["request_failed"], true);
    assert_eq!(body["counterfactuals"][0]["kind"], "failure");
    assert_eq!(body["counterfactuals"][0]["spared"], 0);
}

#[tokio::test]
async fn a_huge_session_is_analysed_from_a_bounded_read_and_says_so() {
    let one = stored_span("checkout", &failed(span(1, 1, None, "GET /checkout", T0, T0 + 5 * MS), "boom"));
    let over = usize::try_from(super::RCA_RECORDS_MAX).expect("fits") + 1;
    let huge = session("huge", vec![Segment { live: false, spans: vec![one; over], ..Default::default() }]);
    let (app, backend) = app_with(FakeBackend::default().with_session(TenantId::DEFAULT, huge), Baselines::default());
    let reply = post(&app, r#"{"correlation_id": "huge"}"#).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["partial"], json!(true));
    assert!(body["partial_reason"].as_str().is_some_and(|r| r.contains(&format!("holds {over} spans"))), "{body}");
    assert_eq!(*backend.last_page.lock(), Some(crate::query::Page::first(super::RCA_RECORDS_MAX)));
}
