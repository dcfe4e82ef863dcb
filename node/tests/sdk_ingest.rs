//! End to end with real OpenTelemetry SDK exporters: spans of three
//! services over OTLP/gRPC (the explicit ID only on the root span, which is
//! exported last), logs over OTLP/HTTP carrying the ID only in a JSON body,
//! baggage, trace-derived IDs, and exemplars through the Python SDK.

mod common;

use common::*;
use opentelemetry::logs::{AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

fn grpc_tracer(endpoint: &str, service: &'static str) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .expect("grpc exporter");
    SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build()
}

fn http_tracer(endpoint: &str, service: &'static str) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()
        .expect("http exporter");
    SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build()
}

/// web → checkout → payments; payments fails; only web's root span carries
/// the correlation ID and it ends (is exported) last. Returns the trace ID.
fn send_checkout_trace(grpc: &str, correlation_id: &str) -> String {
    let web = grpc_tracer(grpc, "web");
    let checkout = grpc_tracer(grpc, "checkout");
    let payments = grpc_tracer(grpc, "payments");
    let mut root = web.tracer("web").span_builder("GET /checkout").with_kind(SpanKind::Server).start(&web.tracer("web"));
    let trace_id = root.span_context().trace_id().to_string();
    let root_cx = Context::current().with_remote_span_context(root.span_context().clone());
    let mut mid = checkout.tracer("checkout").start_with_context("checkout.place_order", &root_cx);
    let mid_cx = Context::current().with_remote_span_context(mid.span_context().clone());
    let mut leaf = payments.tracer("payments").start_with_context("payments.charge", &mid_cx);
    leaf.set_attribute(KeyValue::new("db.statement", "UPDATE cards SET balance = balance - 42 WHERE id = 'c-9'"));
    leaf.set_status(Status::error("card declined"));
    leaf.end();
    mid.set_status(Status::error("payment failed"));
    mid.end();
    root.set_attribute(KeyValue::new("correlation_id", correlation_id.to_owned()));
    root.end();
    for p in [payments, checkout, web] {
        p.shutdown().expect("flush");
    }
    trace_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_services_over_grpc_join_the_root_spans_session() {
    let node = start_node(|_| {}).await;
    let grpc = node.otlp_grpc();
    let handle = tokio::runtime::Handle::current();
    let trace_id = tokio::task::spawn_blocking(move || {
        let _rt = handle.enter();
        send_checkout_trace(&grpc, "order-12345")
    })
    .await
    .expect("sdk thread");

    let body = correlate_until(&node, "order-12345", |b| b["summary"]["total_spans"] == 3).await;
    assert_eq!(body["correlation_id"], "order-12345");
    assert_eq!(body["live"], true);
    assert_eq!(strs(&body["services"]), vec!["checkout", "payments", "web"]);
    assert_eq!(body["summary"]["service_count"], 3);
    assert_eq!(body["summary"]["error_count"], 2);
    let traces = body["traces"].as_array().expect("traces");
    assert!(traces.iter().all(|s| s["trace_id"] == trace_id.as_str()));
    let leaf = traces.iter().find(|s| s["span_name"] == "payments.charge").expect("leaf span");
    assert_eq!(leaf["service_name"], "payments");
    assert_eq!(leaf["status_code"], "error");
    assert_eq!(leaf["status_message"], "card declined");
    // db.statement migrated to db.query.text with literals scrubbed.
    assert_eq!(leaf["attributes"]["db.query.text"], "UPDATE cards SET balance = balance - ? WHERE id = ?");
    assert!(leaf["attributes"].get("db.statement").is_none());
    let root = traces.iter().find(|s| s["span_name"] == "GET /checkout").expect("root");
    assert_eq!(root["parent_span_id"], "");
    assert_eq!(root["span_kind"], "server");
    let timeline = body["timeline"].as_array().expect("timeline");
    assert_eq!(timeline.len(), 3);
    let times: Vec<&str> = timeline.iter().map(|t| t["timestamp"].as_str().expect("ts")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "timeline sorted: {times:?}");

    // The trace-derived session the children first landed in redirects here.
    let (status, trace) = get_json(&node.api(&format!("/api/v1/traces/{trace_id}"))).await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["correlation_id"], "order-12345");

    let (status, impact) = get_json(&node.api("/api/v1/correlate/order-12345/impact")).await;
    assert_eq!(status, 200);
    assert_eq!(impact["user_facing_failed"], false);

    let (_, metrics) = get_json(&node.api("/metrics")).await;
    let text = metrics.as_str().expect("metrics text");
    assert!(text.contains("ollystack_semconv_deprecated_attributes_total{attribute=\"db.statement\"} 1"), "{text}");
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_over_http_find_their_session_by_json_body_and_trace() {
    let node = start_node(|_| {}).await;
    let http = node.otlp_http();
    tokio::task::spawn_blocking(move || {
        let exporter =
            opentelemetry_otlp::LogExporter::builder().with_http().with_endpoint(format!("{http}/v1/logs")).build().expect("log exporter");
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("billing").build())
            .build();
        let logger = provider.logger("billing");
        let mut rec = logger.create_log_record();
        rec.set_severity_number(Severity::Error);
        rec.set_severity_text("ERROR");
        rec.set_body(LogValue::from(r#"{"msg":"invoice rejected","correlationId":"flow-json-1"}"#.to_owned()));
        logger.emit(rec);
        let mut plain = logger.create_log_record();
        plain.set_severity_number(Severity::Info);
        plain.set_body(LogValue::from("no id at all".to_owned()));
        logger.emit(plain);
        provider.shutdown().expect("flush");
    })
    .await
    .expect("sdk thread");

    let body = correlate_until(&node, "flow-json-1", |b| b["summary"]["total_logs"] == 1).await;
    let log = &body["logs"][0];
    assert_eq!(log["service_name"], "billing");
    assert_eq!(log["severity_text"], "ERROR");
    assert_eq!(log["severity_number"], 17);
    assert!(log["body"].as_str().expect("body").contains("invoice rejected"));
    assert_eq!(body["summary"]["error_count"], 1);
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1));

    // A log with no ID and no trace gets a generated olly- ID and is listed.
    let (status, sessions) = get_json(&node.api("/api/v1/sessions?limit=10")).await;
    assert_eq!(status, 200);
    let ids = sessions["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["correlation_id"].as_str().unwrap_or("").to_owned())
        .collect::<Vec<_>>();
    assert!(ids.contains(&"flow-json-1".to_owned()), "{ids:?}");
    assert!(ids.iter().any(|i| i.starts_with("olly-")), "{ids:?}");
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baggage_and_trace_derived_ids_over_http() {
    let node = start_node(|_| {}).await;
    let http = node.otlp_http();
    let (derived_trace, bag_trace) = tokio::task::spawn_blocking(move || {
        let p = http_tracer(&http, "catalog");
        let t = p.tracer("catalog");
        let mut a = t.start("list-products");
        let derived_trace = a.span_context().trace_id().to_string();
        a.end();
        let mut b = t.start("search");
        b.set_attribute(KeyValue::new("baggage", "user=alice,correlation_id=flow-bag-9;prop=1"));
        let bag_trace = b.span_context().trace_id().to_string();
        b.end();
        p.shutdown().expect("flush");
        (derived_trace, bag_trace)
    })
    .await
    .expect("sdk thread");

    let body = correlate_until(&node, "flow-bag-9", |b| b["summary"]["total_spans"] == 1).await;
    assert_eq!(body["traces"][0]["trace_id"], bag_trace.as_str());

    let (status, trace) = get_json(&node.api(&format!("/api/v1/traces/{derived_trace}"))).await;
    assert_eq!(status, 200, "{trace}");
    let derived = trace["correlation_id"].as_str().expect("id").to_owned();
    assert!(derived.starts_with("olly-"), "{derived}");
    assert!(derived.ends_with(&derived_trace[24..]), "derived from the trace id: {derived}");
    let body = correlate_until(&node, &derived, |b| b["summary"]["total_spans"] == 1).await;
    assert_eq!(body["traces"][0]["span_name"], "list-products");
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemplars_from_the_python_sdk() {
    let Ok(python) = std::env::var("OLLYSTACK_TEST_PYTHON") else {
        panic!("OLLYSTACK_TEST_PYTHON is not set: run the tests through ./scripts/test, which installs the Python OpenTelemetry SDK");
    };
    let node = start_node(|_| {}).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send_exemplars.py");
    let out = tokio::process::Command::new(python).arg(script).arg(node.otlp_http()).arg("quote-77").output().await.expect("python runs");
    assert!(out.status.success(), "python sdk failed: {}", String::from_utf8_lossy(&out.stderr));
    let trace_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();

    let body = correlate_until(&node, "quote-77", |b| b["summary"]["total_metrics"] == 1 && b["summary"]["total_spans"] == 1).await;
    let ex = &body["metrics"][0];
    assert_eq!(ex["metric_name"], "pricing.latency");
    assert_eq!(ex["value"], 42.5);
    assert_eq!(ex["trace_id"], trace_id.as_str());
    assert_eq!(ex["service_name"], "pricing");
    assert_eq!(ex["labels"]["route"], "/quote");

    let (status, list) = get_json(&node.api("/api/v1/metrics/pricing.latency/exemplars")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["exemplars"].as_array().map(Vec::len), Some(1));

    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let resp = client.get(node.api(&format!("/api/v1/exemplars/{trace_id}/trace"))).send().await.expect("redirect");
    assert_eq!(resp.status().as_u16(), 307);
    assert_eq!(resp.headers()["location"], "/api/v1/correlate/quote-77");
    node.node.shutdown().await;
}
