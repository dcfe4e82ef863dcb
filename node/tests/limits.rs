//! The cluster-wide cardinality limiter end to end on one node: spans with
//! 20 distinct `http.route` values over OTLP/HTTP and OTLP/gRPC, a limit
//! of 5 per window; the first 5 routes survive, the rest are stored as the
//! overflow marker and counted.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use ollystack_cluster::admission::OVERFLOW_VALUE;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const SESSION: &str = "limits-session-1";

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(V::StringValue(value.into())) }), ..Default::default() }
}

/// Spans `first..first + count` of one trace, span `i` on route `/route-{i}`.
fn routed_spans(first: u64, count: u64) -> ExportTraceServiceRequest {
    let spans = (first..first + count)
        .map(|i| Span {
            trace_id: vec![7; 16],
            span_id: (i + 1).to_be_bytes().to_vec(),
            name: format!("GET /route-{i}"),
            start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000,
            end_time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000 + 500,
            attributes: vec![kv("correlation_id", SESSION), kv("http.route", &format!("/route-{i}"))],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", "web")], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_five_routes_survive_and_the_rest_overflow() {
    let node = start_node(|f| {
        f.limits.attributes.insert("http.route".into(), 5);
    })
    .await;
    // The node proposes its limits to the (one-node) cluster at start.
    eventually(Duration::from_secs(10), || async { node.node.limiter.active_limits().map(|_| ()) }).await;

    let http = reqwest::Client::new();
    let resp = post_protobuf(&http, &format!("{}/v1/traces", node.otlp_http()), routed_spans(0, 10).encode_to_vec()).await;
    assert_eq!(resp.status(), 200);
    let mut grpc = TraceServiceClient::connect(node.otlp_grpc()).await.expect("grpc connects");
    grpc.export(routed_spans(10, 10)).await.expect("grpc export");

    let body = correlate_until(&node, SESSION, |b| b["summary"]["total_spans"] == 20).await;
    let routes: Vec<String> = body["traces"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|span| span["attributes"]["http.route"].as_str().expect("route kept as a string").to_owned())
        .collect();
    let real: BTreeSet<&str> = routes.iter().map(String::as_str).filter(|r| *r != OVERFLOW_VALUE).collect();
    let expected: BTreeSet<String> = (0..5).map(|i| format!("/route-{i}")).collect();
    assert_eq!(real, expected.iter().map(String::as_str).collect(), "the first five routes decided survive: {routes:?}");
    assert_eq!(routes.iter().filter(|r| *r == OVERFLOW_VALUE).count(), 15, "{routes:?}");

    let (_, metrics) = get_json(&node.api("/metrics")).await;
    let metrics = metrics.as_str().expect("text").to_owned();
    assert_eq!(metric(&metrics, "ollystack_limits_values_overflowed_total{attribute=\"http.route\"}"), Some(15), "{metrics}");
    assert_eq!(metric(&metrics, "ollystack_limits_values_admitted_total{attribute=\"http.route\"}"), Some(5), "{metrics}");
    assert_eq!(metric(&metrics, "ollystack_limits_refusals_total"), Some(0), "{metrics}");
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_limits_every_route_is_kept() {
    let node = start_node(|_| {}).await;
    let http = reqwest::Client::new();
    let resp = post_protobuf(&http, &format!("{}/v1/traces", node.otlp_http()), routed_spans(0, 20).encode_to_vec()).await;
    assert_eq!(resp.status(), 200);
    let body = correlate_until(&node, SESSION, |b| b["summary"]["total_spans"] == 20).await;
    let routes: BTreeSet<&str> =
        body["traces"].as_array().expect("spans").iter().filter_map(|s| s["attributes"]["http.route"].as_str()).collect();
    assert_eq!(routes.len(), 20);
    assert!(node.node.limiter.active_limits().is_none());
    node.node.shutdown().await;
}
