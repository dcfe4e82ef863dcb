//! Per-request RCA on a running node: normal checkout sessions finish (idle
//! timeout) and teach the baselines; then a session where inventory is
//! slow and payments fails is analysed through `POST /api/v1/ai/rca`.

mod common;

use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::Value;

/// Normal sessions sent first (the baseline needs 10 samples).
const NORMAL_SESSIONS: u64 = 12;
const MS: u64 = 1_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(V::StringValue(value.into())) }), ..Default::default() }
}

/// One span of the checkout flow: (service, name, id, parent, start ms, end ms, error message).
type SpanSpec = (&'static str, &'static str, u64, Option<u64>, u64, u64, Option<&'static str>);

/// frontend → checkout → (inventory, then payments), in ms from the session's start.
fn checkout_flow(inventory_ms: u64, payments_error: Option<&'static str>) -> Vec<SpanSpec> {
    let inv_end = 5 + inventory_ms;
    let failed = payments_error.map(|_| "upstream failed");
    vec![
        ("frontend", "GET /checkout", 1, None, 0, inv_end + 35, failed),
        ("checkout", "POST /checkout", 2, Some(1), 2, inv_end + 33, failed),
        ("inventory", "reserve", 3, Some(2), 5, inv_end, None),
        ("payments", "charge", 4, Some(2), inv_end + 1, inv_end + 30, payments_error),
    ]
}

fn trace_bytes(n: u64) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&0x5eed_u64.to_be_bytes());
    t[8..].copy_from_slice(&n.to_be_bytes());
    t
}

fn request(id: &str, trace: [u8; 16], base_ns: u64, flow: &[SpanSpec]) -> ExportTraceServiceRequest {
    let resource_spans = flow
        .iter()
        .map(|&(service, name, span, parent, start, end, error)| ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", service)], ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: trace.to_vec(),
                    span_id: span.to_be_bytes().to_vec(),
                    parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
                    name: name.into(),
                    kind: SpanKind::Server as i32,
                    start_time_unix_nano: base_ns + start * MS,
                    end_time_unix_nano: base_ns + end * MS,
                    attributes: vec![kv("correlation_id", id)],
                    status: error.map(|m| Status { message: m.into(), code: StatusCode::Error as i32 }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

fn error_log(id: &str, trace: [u8; 16], span: u64, time_ns: u64, body: &str) -> ExportLogsServiceRequest {
    let record = LogRecord {
        time_unix_nano: time_ns,
        severity_text: "ERROR".into(),
        severity_number: 17,
        body: Some(AnyValue { value: Some(V::StringValue(body.into())) }),
        attributes: vec![kv("correlation_id", id)],
        trace_id: trace.to_vec(),
        span_id: span.to_be_bytes().to_vec(),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource { attributes: vec![kv("service.name", "payments")], ..Default::default() }),
            scope_logs: vec![ScopeLogs { log_records: vec![record], ..Default::default() }],
            ..Default::default()
        }],
    }
}

async fn rca(client: &reqwest::Client, node: &TestNode, id: &str) -> (u16, Value) {
    let resp = client.post(node.api("/api/v1/ai/rca")).json(&serde_json::json!({ "correlation_id": id })).send().await.expect("post");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_learned_from_finished_sessions_find_the_slow_and_the_failing_service() {
    let node = start_node(|f| {
        f.session.idle_timeout_ms = 200;
        f.session.tick_interval_ms = 20;
    })
    .await;
    let client = reqwest::Client::new();
    let traces = format!("{}/v1/traces", node.otlp_http());
    let t0 = 1_700_000_000_000_000_000u64;

    // Normal sessions: inventory takes 10..12 ms.
    for n in 0..NORMAL_SESSIONS {
        let id = format!("normal-{n}");
        let flow = checkout_flow(10 + n % 3, None);
        let body = request(&id, trace_bytes(n), t0 + n * 1_000 * MS, &flow).encode_to_vec();
        assert_eq!(post_protobuf(&client, &traces, body).await.status(), 200);
    }
    for n in 0..NORMAL_SESSIONS {
        correlate_until(&node, &format!("normal-{n}"), |b| b["live"] == false && b["summary"]["total_spans"] == 4).await;
    }

    // The incident: inventory takes 300 ms, payments fails and logs why.
    let id = "order-incident";
    let trace = trace_bytes(999);
    let base = t0 + 3_600_000 * MS;
    let body = request(id, trace, base, &checkout_flow(300, Some("card processor unreachable"))).encode_to_vec();
    assert_eq!(post_protobuf(&client, &traces, body).await.status(), 200);
    let log = error_log(id, trace, 4, base + 320 * MS, "POST https://processor/charge: connection refused");
    assert_eq!(post_protobuf(&client, &format!("{}/v1/logs", node.otlp_http()), log.encode_to_vec()).await.status(), 200);
    correlate_until(&node, id, |b| b["live"] == false && b["summary"]["total_logs"] == 1).await;

    let (status, r) = rca(&client, &node, id).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["correlation_id"], id);
    assert_eq!((r["live"].clone(), r["request_failed"].clone()), (Value::Bool(false), Value::Bool(true)));

    // The failure the caller saw comes first; the slow service next.
    assert_eq!((r["root_cause"]["service"].as_str(), r["root_cause"]["kind"].as_str()), (Some("payments"), Some("error")), "{r}");
    assert_eq!(r["error_origin"]["service"], "payments");
    assert_eq!(r["error_origin"]["logs"][0]["matched"], "span");
    let inventory = r["candidates"].as_array().and_then(|c| c.iter().find(|c| c["service"] == "inventory")).expect("inventory candidate");
    assert_eq!(inventory["kind"], "latency");
    let anomaly = r["anomalies"].as_array().and_then(|a| a.iter().find(|a| a["service"] == "inventory")).expect("inventory anomaly");
    assert_eq!(anomaly["baseline"]["samples"], NORMAL_SESSIONS, "learned from the normal sessions, not from this one");

    // Counterfactuals agree with each other and with the critical path.
    let cfs = r["counterfactuals"].as_array().expect("counterfactuals");
    let failure = cfs.iter().find(|c| c["kind"] == "failure").expect("failure counterfactual");
    assert_eq!((failure["spared"].clone(), failure["request_would_succeed"].clone()), (Value::from(2), Value::Bool(true)));
    let latency = cfs.iter().find(|c| c["kind"] == "latency" && c["service"] == "inventory").expect("latency counterfactual");
    let (total, counterfactual, saved) = (f(&latency["total_ms"]), f(&latency["counterfactual_total_ms"]), f(&latency["saved_ms"]));
    assert_eq!(total, f(&r["critical_path"]["total_ms"]));
    assert_eq!(total, 340.0);
    assert!((total - counterfactual - saved).abs() < 1e-6, "{latency}");
    // Sequential work: the saving is the whole excess of inventory over its p50.
    let excess = f(&latency["actual_ms"]) - f(&latency["baseline_p50_ms"]);
    assert!((saved - excess).abs() < 1e-6 && (285.0..=291.0).contains(&saved), "{latency}");
    let path_sum: f64 = r["critical_path"]["steps"].as_array().expect("steps").iter().map(|s| f(&s["self_ms"])).sum();
    assert!((path_sum - total).abs() < 1e-6);

    // A chain from the payments failure to the user-facing symptom.
    let chain = &r["chains"][0]["steps"];
    let services: Vec<&str> = chain.as_array().expect("steps").iter().filter_map(|s| s["service"].as_str()).collect();
    assert_eq!(services, ["payments", "payments", "checkout", "frontend"]);
    assert!(r["explanation"].as_str().is_some_and(|t| t.contains("payments charge")), "{}", r["explanation"]);

    let (status, body) = rca(&client, &node, "never-seen").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    tokio::time::timeout(Duration::from_secs(30), node.node.shutdown()).await.expect("shutdown");
}
