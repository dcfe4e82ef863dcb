//! OTel attribute limits on ingest, as the network-safety issue found them
//! missing: a span with 100,000 attributes and one with a 10 MB value were
//! stored whole. Sent over OTLP/HTTP to a real node, read back through the
//! API: each is stored within the limits and says what it lost, the other
//! signals of the request are kept, and `/metrics` counts it all.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::Value;

const TRACE: [u8; 16] = [0x5a; 16];
const START_NS: u64 = 1_700_000_000_000_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(V::StringValue(value.into())) }), ..Default::default() }
}

fn span(n: u64, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: TRACE.to_vec(),
        span_id: (n + 1).to_be_bytes().to_vec(),
        name: format!("op-{n}"),
        start_time_unix_nano: START_NS + n * 1_000,
        end_time_unix_nano: START_NS + n * 1_000 + 500,
        attributes,
        ..Default::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource { attributes: vec![kv("service.name", "checkout")], ..Default::default() })
}

fn span_named<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["traces"].as_array().and_then(|spans| spans.iter().find(|s| s["span_name"] == name)).unwrap_or_else(|| panic!("no span {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_spans_are_stored_within_the_limits_and_say_what_they_lost() {
    let node = start_node(|_| {}).await;
    let id = "order-attr-limits-1";
    // 100,000 attributes, the correlation ID last: it is read before the
    // limit drops it, so the span still joins its session.
    let mut many: Vec<KeyValue> = (0..100_000).map(|i| kv(&format!("attr.{i:06}"), "v")).collect();
    many.push(kv("correlation_id", id));
    let ten_mb = "é".repeat(5 << 20);
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    span(0, many),
                    span(1, vec![kv("correlation_id", id), kv("payload", &ten_mb)]),
                    span(2, vec![kv("correlation_id", id), kv("http.route", "/checkout")]),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let body = request.encode_to_vec();
    assert!(body.len() > 10 << 20 && body.len() < 16 << 20, "fits the default request bound: {} bytes", body.len());
    let client = reqwest::Client::new();
    let sent = post_protobuf(&client, &format!("{}/v1/traces", node.otlp_http()), body).await;
    assert_eq!(sent.status(), 200);

    let answer = correlate_until(&node, id, |b| b["traces"].as_array().is_some_and(|t| t.len() == 3)).await;
    let wide = span_named(&answer, "op-0");
    assert_eq!(wide["attributes"].as_object().map(|a| a.len()), Some(128));
    assert_eq!(wide["attributes"]["attr.000127"], "v");
    assert_eq!(wide["dropped_attributes_count"], 100_001 - 128);
    let long = span_named(&answer, "op-1");
    let payload = long["attributes"]["payload"].as_str().expect("payload kept, cut");
    assert_eq!(payload.chars().count(), 65_536);
    assert!(payload.chars().all(|c| c == 'é'), "cut at a character boundary");
    assert_eq!(long["dropped_attributes_count"], 0);
    let plain = span_named(&answer, "op-2");
    assert_eq!(plain["attributes"]["http.route"], "/checkout");

    let (_, metrics) = get_json(&node.api("/metrics")).await;
    let metrics = metrics.as_str().expect("text").to_owned();
    assert_eq!(metric(&metrics, "ollystack_ingest_attributes_dropped_total{signal=\"span\"}"), Some(100_001 - 128), "{metrics}");
    assert_eq!(metric(&metrics, "ollystack_ingest_values_truncated_total{signal=\"span\"}"), Some(1), "{metrics}");
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_configurable_and_bound_log_bodies() {
    let node = start_node(|f| {
        f.ingest.attribute_count_limit = 2;
        f.ingest.log_body_length_limit = 1_000;
    })
    .await;
    let id = "order-attr-limits-2";
    let log = LogRecord {
        time_unix_nano: START_NS,
        trace_id: TRACE.to_vec(),
        body: Some(AnyValue { value: Some(V::StringValue("b".repeat(3 << 20))) }),
        attributes: vec![kv("correlation_id", id), kv("a", "1"), kv("b", "2"), kv("c", "3")],
        ..Default::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs { log_records: vec![log], ..Default::default() }],
            ..Default::default()
        }],
    };
    let client = reqwest::Client::new();
    let sent = post_protobuf(&client, &format!("{}/v1/logs", node.otlp_http()), request.encode_to_vec()).await;
    assert_eq!(sent.status(), 200);
    let answer = correlate_until(&node, id, |b| b["logs"].as_array().is_some_and(|l| l.len() == 1)).await;
    let stored = &answer["logs"][0];
    assert_eq!(stored["body"].as_str().map(str::len), Some(1_000));
    assert_eq!(stored["attributes"].as_object().map(|a| a.len()), Some(2));
    assert_eq!(stored["dropped_attributes_count"], 2);
    let (_, metrics) = get_json(&node.api("/metrics")).await;
    let metrics = metrics.as_str().expect("text").to_owned();
    assert_eq!(metric(&metrics, "ollystack_ingest_attributes_dropped_total{signal=\"log\"}"), Some(2), "{metrics}");
    assert_eq!(metric(&metrics, "ollystack_ingest_values_truncated_total{signal=\"log\"}"), Some(1), "{metrics}");
    node.node.shutdown().await;
}
