//! Bad input gets a clear error (or its ID replaced and counted) and loses
//! nothing else; overload answers "retry later" and drops nothing accepted.

mod common;

use common::*;
use prost::Message;

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_huge_ids_and_nul_bytes() {
    let node = start_node(|_| {}).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", node.otlp_http());

    let resp = post_protobuf(&client, &url, b"\xff\xff\xff garbage that is not protobuf".to_vec()).await;
    assert_eq!(resp.status(), 400);

    let huge = "x".repeat(5 * 1024 * 1024);
    let req = trace_request("api", Some(&huge), [3; 16], 0, 1);
    assert_eq!(post_protobuf(&client, &url, req.encode_to_vec()).await.status(), 200);
    let req = trace_request("api", Some("evil\0id"), [4; 16], 0, 1);
    assert_eq!(post_protobuf(&client, &url, req.encode_to_vec()).await.status(), 200);
    let req = trace_request("api", Some("<script>alert(1)</script>"), [5; 16], 0, 1);
    assert_eq!(post_protobuf(&client, &url, req.encode_to_vec()).await.status(), 200);

    // Each span kept, under its trace-derived ID.
    for t in [3u8, 4, 5] {
        let (s, b) = get_json(&node.api(&format!("/api/v1/traces/{}", hex::encode([t; 16])))).await;
        assert_eq!(s, 200, "{b}");
        assert!(b["correlation_id"].as_str().expect("id").starts_with("olly-"));
    }
    let (_, m) = get_json(&node.api("/metrics")).await;
    let m = m.as_str().expect("text").to_owned();
    assert_eq!(metric(&m, "ollystack_correlation_ids_rejected_total{reason=\"too_long\"}"), 1, "{m}");
    assert_eq!(metric(&m, "ollystack_correlation_ids_rejected_total{reason=\"control_bytes\"}"), 1, "{m}");
    assert_eq!(metric(&m, "ollystack_ingest_items_total{signal=\"spans\"}"), 3, "{m}");

    // Invalid IDs in the API are a 400, unknown ones a 404 — as JSON.
    let (s, b) = get_json(&node.api("/api/v1/correlate/bad%20id")).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = get_json(&node.api("/api/v1/correlate/nobody-knows-me")).await;
    assert_eq!(s, 404, "{b}");
    assert!(b["error"]["message"].is_string());
    let (s, _) = get_json(&node.api("/healthz")).await;
    assert_eq!(s, 200);
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_retryable_and_keeps_what_was_accepted() {
    let node = start_node(|f| f.session.memory_budget_bytes = 1 << 20).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", node.otlp_http());
    let mut accepted = 0u64;
    let mut refused = false;
    for i in 0..200u64 {
        let req = trace_request("api", Some("heavy"), [9; 16], i * 100, 100);
        let resp = post_protobuf(&client, &url, req.encode_to_vec()).await;
        match resp.status().as_u16() {
            200 => accepted += 100,
            429 => {
                assert!(resp.headers().get("retry-after").is_some(), "429 carries Retry-After");
                refused = true;
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(refused, "a 1 MiB budget must refuse some of 20k spans");
    assert!(accepted > 0);
    let body = correlate_until(&node, "heavy", |b| b["summary"]["total_spans"].as_u64().is_some()).await;
    assert_eq!(body["summary"]["total_spans"].as_u64(), Some(accepted));
    let (s, _) = get_json(&node.api("/healthz")).await;
    assert_eq!(s, 200);
    node.node.shutdown().await;
}

/// OTLP logs of `service` with no correlation ID and no trace context.
fn context_free_logs(service: &str, lines: &[&str]) -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let text = |s: &str| Some(AnyValue { value: Some(Value::StringValue(s.to_owned())) });
    let records = lines.iter().map(|line| LogRecord { time_unix_nano: 1, body: text(line), ..Default::default() }).collect();
    opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![KeyValue { key: "service.name".into(), value: text(service), ..Default::default() }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_no_request_share_a_session_per_service_and_minute() {
    let node = start_node(|_| {}).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/logs", node.otlp_http());
    let resp = post_protobuf(&client, &url, context_free_logs("cron", &["tick 1", "tick 2"]).encode_to_vec()).await;
    assert_eq!(resp.status(), 200);
    let resp = post_protobuf(&client, &url, context_free_logs("cron", &["tick 3"]).encode_to_vec()).await;
    assert_eq!(resp.status(), 200);
    let resp = post_protobuf(&client, &url, context_free_logs("mailer", &["sent"]).encode_to_vec()).await;
    assert_eq!(resp.status(), 200);
    let (status, body) = get_json(&node.api("/api/v1/sessions?limit=10")).await;
    assert_eq!(status, 200, "{body}");
    let sessions = body["sessions"].as_array().expect("sessions");
    let of = |service: &str| sessions.iter().filter(|s| strs(&s["services"]) == [service]).cloned().collect::<Vec<_>>();
    // Unless the minute turned between the posts (then one more session).
    let cron = of("cron");
    assert!((1..=2).contains(&cron.len()), "{body}");
    assert_eq!(cron.iter().map(|s| s["total_logs"].as_u64().unwrap_or(0)).sum::<u64>(), 3, "{body}");
    assert_eq!(of("mailer").len(), 1, "{body}");
    let id = cron[0]["correlation_id"].as_str().expect("id");
    assert!(id.starts_with("olly-"), "{id}");
    let (status, session) = get_json(&node.api(&format!("/api/v1/correlate/{id}"))).await;
    assert_eq!(status, 200, "{session}");
    node.node.shutdown().await;
}
