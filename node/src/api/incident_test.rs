//! Route tests of per-incident RCA and `POST /api/v1/ai/analyze` over a
//! fake backend: 20 requests an hour before, 20 in the incident hour (db
//! slow there), all far in the past (event time, not node time).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::super::fake::{app, FakeBackend, Reply};
use crate::model::{CorrelationId, TenantId};
use crate::query::collect_window;
use crate::query::fixtures::{session, span, stored_span, with_kind, MS, T0};
use crate::query::{format_rfc3339_nanos, Segment, SessionListItem};
use crate::rca::incident::WindowQuery;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

const HOUR: u64 = 3_600_000 * MS;
const REQUESTS: u8 = 20;

/// web `GET /` → api `handle` → db `query` (db takes `db_ms`), at `at`.
fn request(n: u8, at: u64, db_ms: u64) -> (crate::query::SessionData, SessionListItem) {
    let id = format!("req-{n}");
    let jitter = u64::from(n % 3);
    let t = n + 1; // trace 0 would be all-zero: invalid
    let end = at + (10 + db_ms + jitter) * MS;
    let spans = vec![
        stored_span("web", &with_kind(span(t, 1, None, "GET /", at, end), SpanKind::Server)),
        stored_span("api", &with_kind(span(t, 2, Some(1), "handle", at + MS, end - MS), SpanKind::Server)),
        stored_span("db", &with_kind(span(t, 3, Some(2), "query", at + 3 * MS, at + (3 + db_ms + jitter) * MS), SpanKind::Server)),
    ];
    let item = SessionListItem {
        correlation_id: CorrelationId::from_trusted(id.as_str()),
        tenant_id: TenantId::default_tenant(),
        live: false,
        start: format_rfc3339_nanos(at),
        end: format_rfc3339_nanos(end),
        duration_ms: (end - at) as f64 / MS as f64,
        total_spans: 3,
        total_logs: 0,
        total_metrics: 0,
        error_count: 0,
        services: vec!["api".into(), "db".into(), "web".into()],
        root_span: Some("GET /".into()),
        last_seen_unix_ms: 1,
    };
    (session(&id, vec![Segment { live: false, spans, ..Default::default() }]), item)
}

fn backend() -> FakeBackend {
    let mut backend = FakeBackend::default();
    for n in 0..2 * REQUESTS {
        let incident = n >= REQUESTS;
        let at = T0 + u64::from(n % REQUESTS) * 60_000 * MS + if incident { HOUR } else { 0 };
        let (data, item) = request(n, at, if incident { 80 } else { 5 });
        backend = backend.with_session(TenantId::DEFAULT, data);
        backend.listed.push(item);
    }
    backend
}

async fn post(app: &axum::Router, path: &str, body: Value) -> Reply {
    let request = Request::post(path).header("content-type", "application/json").body(Body::from(body.to_string())).expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body").to_vec();
    Reply { status, headers, body }
}

#[tokio::test]
async fn an_old_incident_window_ranks_the_slow_callee_first() {
    let (app, _) = app(backend(), false);
    let reply = post(&app, "/api/v1/ai/rca", json!({"start": format_rfc3339_nanos(T0 + HOUR), "end": T0 + 2 * HOUR})).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["window"]["baseline"], "previous_window");
    assert_eq!(body["window"]["baseline_start"], "2023-11-14T22:13:20.000000000Z");
    assert_eq!(body["sessions"], json!({"baseline": 20, "incident": 20}));
    assert_eq!(body["partial"], false);
    let root = &body["root_cause"];
    assert_eq!((root["service"].as_str(), root["operation"].as_str(), root["kind"].as_str()), (Some("db"), Some("query"), Some("latency")));
    assert_eq!(body["root_cause"], body["candidates"][0]);
    assert_eq!(body["candidates"].as_array().map(Vec::len), Some(1), "callers are not blamed: {}", body["candidates"]);
    let evidence = root["evidence"].as_array().expect("evidence");
    assert!(evidence.iter().any(|e| e["type"] == "self_time_change" && e["baseline"]["samples"] == 20), "{root}");
    assert!(evidence.iter().any(|e| e["type"] == "affected_callers" && e["detail"].as_str().is_some_and(|d| d.contains("web GET /"))));
    assert_eq!(body["dependency_graph"]["nodes"], json!(["api", "db", "web"]));
    assert!(body["explanation"].as_str().is_some_and(|t| t.contains("db query (latency")), "{}", body["explanation"]);
    assert_eq!((body["explanation_source"].as_str(), body.get("explanation_error")), (Some("deterministic"), None));
}

#[tokio::test]
async fn a_configured_llm_phrases_the_computed_answer_and_its_failure_is_reported() {
    use axum::routing::post as route_post;
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(String::new()));
    let record = seen.clone();
    let server = axum::Router::new().route(
        "/api/chat",
        route_post(move |axum::Json(body): axum::Json<Value>| {
            let record = record.clone();
            async move {
                *record.lock() = body["messages"][1]["content"].as_str().unwrap_or_default().to_owned();
                axum::Json(json!({"message": {"role": "assistant", "content": "db's queries slowed tenfold."}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, server).await });
    let settings = |url: String| crate::llm::LlmSettings {
        provider: crate::llm::Provider::Ollama,
        url,
        model: "m".into(),
        api_key: Default::default(),
        timeout: std::time::Duration::from_secs(5),
    };
    let with_llm = |url: String| {
        let state = super::super::ApiState {
            backend: std::sync::Arc::new(backend()),
            tenancy_enabled: false,
            max_id_length: 100,
            clock: std::sync::Arc::new(super::super::fake::FixedClock),
            baselines: std::sync::Arc::new(crate::rca::Baselines::default()),
            explainer: std::sync::Arc::new(crate::llm::Explainer::new(Some(settings(url))).expect("client")),
            session_reads: crate::api::session_reads(),
        };
        super::super::router(state)
    };
    let window = json!({"start": T0 + HOUR, "end": T0 + 2 * HOUR});
    let body = post(&with_llm(url), "/api/v1/ai/rca", window.clone()).await.json();
    assert_eq!(
        (body["explanation"].as_str(), body["explanation_source"].as_str()),
        (Some("db's queries slowed tenfold."), Some("llm:ollama"))
    );
    assert!(seen.lock().contains(r#""root_cause":{"#), "the prompt carries the computed JSON");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let body = post(&with_llm(format!("http://{closed}")), "/api/v1/ai/analyze", window).await.json();
    assert_eq!(body["explanation_source"], "deterministic");
    assert!(body["explanation_error"].as_str().is_some_and(|e| e.starts_with("llm:ollama request failed")), "{body}");
    assert!(body["explanation"].as_str().is_some_and(|t| t.contains("left their baseline")));
}

#[tokio::test]
async fn analyze_lists_what_left_its_baseline() {
    let (app, _) = app(backend(), false);
    let start = T0 + HOUR;
    let body = post(&app, "/api/v1/ai/analyze", json!({"start": start, "end": start + HOUR, "baseline_start": T0, "baseline_end": start}))
        .await
        .json();
    assert_eq!(body["window"]["baseline"], "given");
    let anomalies = body["anomalies"].as_array().expect("anomalies");
    let db = anomalies.iter().find(|a| a["service"] == "db").expect("db anomaly");
    assert_eq!(db["departures"], json!(["self_time", "duration"]));
    assert!(db["self_time"]["incident"]["p50_ms"].as_f64().is_some_and(|p| p > 70.0), "{db}");
    let api = anomalies.iter().find(|a| a["service"] == "api").expect("api's duration rose");
    assert_eq!(api["departures"], json!(["duration"]), "api's own time did not change");
    // A quiet window: nothing left.
    let quiet = post(&app, "/api/v1/ai/analyze", json!({"start": T0 + HOUR / 2, "end": T0 + HOUR})).await.json();
    assert_eq!(quiet["anomalies"], json!([]), "{quiet}");
}

#[tokio::test]
async fn bodies_with_both_forms_neither_or_bad_windows_are_400() {
    let (app, backend) = app(backend(), false);
    for (path, body, says) in [
        ("/api/v1/ai/rca", json!({"correlation_id": "a", "start": T0, "end": T0 + HOUR}), "not both"),
        ("/api/v1/ai/rca", json!({}), "needs correlation_id (one request) or start and end"),
        ("/api/v1/ai/rca", json!({"start": T0}), "end is missing"),
        ("/api/v1/ai/rca", json!({"start": T0, "end": T0 + 1, "limit": 3}), "unknown field \"limit\""),
        ("/api/v1/ai/analyze", json!({"start": T0 + 5, "end": T0}), "end must be after start"),
        ("/api/v1/ai/analyze", json!({"correlation_id": "a"}), "unknown field \"correlation_id\""),
    ] {
        let reply = post(&app, path, body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        let (code, message) = reply.error();
        assert_eq!(code, "bad_request");
        assert!(message.contains(says), "{body}: {message}");
    }
    assert_eq!(backend.lookups.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn windows_beyond_the_session_bound_are_partial() {
    let backend = backend();
    let q = WindowQuery { start_unix_nano: T0, end_unix_nano: T0 + 2 * HOUR, sessions_max: 7, keys_max: 100 };
    let collected = collect_window(&backend, &TenantId::default_tenant(), &q).await.expect("collected");
    assert_eq!(collected.aggregate.sessions, 7);
    assert!(collected.partial.as_deref().is_some_and(|p| p.contains("more than 7 sessions")), "{:?}", collected.partial);
    let tight = WindowQuery { keys_max: 1, ..q };
    let collected = collect_window(&backend, &TenantId::default_tenant(), &tight).await.expect("collected");
    assert!(collected.partial.as_deref().is_some_and(|p| p.contains("key bound")), "{:?}", collected.partial);
}

#[tokio::test]
async fn windows_whose_listing_stopped_early_are_partial() {
    let backend = FakeBackend { resume_before_unix_ms: Some(1_700_000_000_000), ..backend() };
    let q = WindowQuery { start_unix_nano: T0, end_unix_nano: T0 + 2 * HOUR, sessions_max: 100, keys_max: 100 };
    let collected = collect_window(&backend, &TenantId::default_tenant(), &q).await.expect("collected");
    assert!(collected.partial.as_deref().is_some_and(|p| p.contains("were not read")), "{:?}", collected.partial);
}
