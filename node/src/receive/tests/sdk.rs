//! The OpenTelemetry SDK's own OTLP exporters as clients: what real
//! applications send must reach the sink with the right names and IDs.

use opentelemetry::trace::{Span as _, SpanContext, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Compression, Protocol, SpanExporter, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::fixtures::{spawn_grpc, spawn_http, RecordingSink};
use crate::receive::ReceiverLimits;

const SPAN_NAMES: [&str; 3] = ["GET /cart", "SELECT cart", "render"];

/// Ends one span per name through `exporter` and returns their contexts.
/// Blocking: the simple processor waits on each export.
fn export_spans(exporter: SpanExporter) -> Vec<SpanContext> {
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter).build();
    let tracer = provider.tracer("receive-tests");
    let contexts = SPAN_NAMES
        .iter()
        .map(|name| {
            let mut span = tracer.start(name.to_string());
            let context = span.span_context().clone();
            span.end();
            context
        })
        .collect();
    provider.shutdown().unwrap();
    contexts
}

/// (name, trace ID, span ID) of every span the sink received.
fn received_spans(sink: &RecordingSink) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    sink.traces()
        .iter()
        .flat_map(|request| &request.resource_spans)
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .map(|span| (span.name.clone(), span.trace_id.clone(), span.span_id.clone()))
        .collect()
}

fn expected_spans(contexts: &[SpanContext]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    SPAN_NAMES
        .iter()
        .zip(contexts)
        .map(|(name, context)| {
            let trace_id = context.trace_id().to_bytes().to_vec();
            (name.to_string(), trace_id, context.span_id().to_bytes().to_vec())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_exporter_with_gzip_reaches_the_sink() {
    let sink = RecordingSink::accepting();
    let server = spawn_grpc(sink.clone(), ReceiverLimits::default()).await;
    let contexts = tokio::task::spawn_blocking(move || {
        let exporter =
            SpanExporter::builder().with_tonic().with_endpoint(server.url.clone()).with_compression(Compression::Gzip).build().unwrap();
        export_spans(exporter)
    })
    .await
    .unwrap();
    assert_eq!(received_spans(&sink), expected_spans(&contexts));
}

/// Exports over OTLP/HTTP in `protocol`; the blocking reqwest client must
/// live off the async threads.
async fn http_export(protocol: Protocol) {
    let sink = RecordingSink::accepting();
    let server = spawn_http(sink.clone(), ReceiverLimits::default()).await;
    let contexts = tokio::task::spawn_blocking(move || {
        let exporter =
            SpanExporter::builder().with_http().with_protocol(protocol).with_endpoint(format!("{}/v1/traces", server.url)).build().unwrap();
        export_spans(exporter)
    })
    .await
    .unwrap();
    assert_eq!(received_spans(&sink), expected_spans(&contexts));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_exporter_reaches_the_sink() {
    http_export(Protocol::HttpBinary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_exporter_reaches_the_sink() {
    http_export(Protocol::HttpJson).await;
}
