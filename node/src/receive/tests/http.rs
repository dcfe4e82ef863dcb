//! OTLP/HTTP receiver end to end: a real server on port 0, reqwest as the
//! client, a recording sink behind it.

use axum::body::Body;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tower::ServiceExt;

use super::codec::SPEC_TRACES_JSON;
use super::fixtures::{gzip, logs_request, metrics_request, spawn_http, trace_request, RecordingSink, SPAN_ID, TRACE_ID};
use crate::ingest::{Accepted, IngestError, Overload};
use crate::receive::codec::{RetryInfo, RpcStatus};
use crate::receive::{http_router, ReceiverLimits};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

async fn post(url: &str, content_type: &str, content_encoding: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url).header("content-type", content_type).body(body);
    if let Some(encoding) = content_encoding {
        request = request.header("content-encoding", encoding);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// The `google.rpc.Status` protobuf body of an error response.
async fn status_body(response: reqwest::Response) -> RpcStatus {
    assert_eq!(header(&response, "content-type").as_deref(), Some(PROTOBUF));
    RpcStatus::decode(response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn protobuf_export_reaches_the_sink() {
    let sink = RecordingSink::accepting();
    let server = spawn_http(sink.clone(), ReceiverLimits::default()).await;
    let request = trace_request("GET /cart");
    let url = format!("{}/v1/traces", server.url);
    let response = post(&url, PROTOBUF, None, request.encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type").as_deref(), Some(PROTOBUF));
    let body = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(body.partial_success, None);
    assert_eq!(sink.traces(), vec![request]);
}

#[tokio::test]
async fn logs_and_metrics_reach_their_sink_methods() {
    let sink = RecordingSink::accepting();
    let server = spawn_http(sink.clone(), ReceiverLimits::default()).await;
    let logs = logs_request();
    let response = post(&format!("{}/v1/logs", server.url), PROTOBUF, None, logs.encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    let metrics = metrics_request();
    let url = format!("{}/v1/metrics", server.url);
    let response = post(&url, PROTOBUF, None, metrics.encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(sink.logs(), vec![logs]);
    assert_eq!(sink.metrics(), vec![metrics]);
    assert!(sink.traces().is_empty());
}

#[tokio::test]
async fn spec_json_export_reaches_the_sink_with_binary_ids() {
    let sink = RecordingSink::accepting();
    let server = spawn_http(sink.clone(), ReceiverLimits::default()).await;
    let url = format!("{}/v1/traces", server.url);
    let response = post(&url, "application/json; charset=utf-8", None, SPEC_TRACES_JSON.into()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type").as_deref(), Some(JSON));
    assert_eq!(response.text().await.unwrap(), "{}");
    let span = sink.traces()[0].resource_spans[0].scope_spans[0].spans[0].clone();
    assert_eq!(span.trace_id, TRACE_ID);
    assert_eq!(span.span_id, SPAN_ID);
    assert_eq!(span.name, "GET /cart");
}

#[tokio::test]
async fn gzip_bodies_are_decompressed_in_both_formats() {
    let sink = RecordingSink::accepting();
    let server = spawn_http(sink.clone(), ReceiverLimits::default()).await;
    let url = format!("{}/v1/traces", server.url);
    let request = trace_request("gzipped");
    let response = post(&url, PROTOBUF, Some("gzip"), gzip(&request.encode_to_vec())).await;
    assert_eq!(response.status(), 200);
    let response = post(&url, JSON, Some("gzip"), gzip(SPEC_TRACES_JSON.as_bytes())).await;
    assert_eq!(response.status(), 200);
    let traces = sink.traces();
    assert_eq!(traces[0], request);
    assert_eq!(traces[1].resource_spans[0].scope_spans[0].spans[0].trace_id, TRACE_ID);
}

#[tokio::test]
async fn garbage_protobuf_is_400_with_a_status_body() {
    let sink = RecordingSink::accepting();
    let server = spawn_http(sink.clone(), ReceiverLimits::default()).await;
    let url = format!("{}/v1/traces", server.url);
    let response = post(&url, PROTOBUF, None, vec![0xff; 64]).await;
    assert_eq!(response.status(), 400);
    let status = status_body(response).await;
    assert_eq!(status.code, tonic::Code::InvalidArgument as i32);
    assert!(status.message.contains("protobuf ExportTraceServiceRequest"), "{}", status.message);
    assert_eq!(sink.calls(), 0);
}

#[tokio::test]
async fn bad_json_and_bad_gzip_are_400() {
    let sink = RecordingSink::accepting();
    let server = spawn_http(sink.clone(), ReceiverLimits::default()).await;
    let url = format!("{}/v1/logs", server.url);
    let response = post(&url, JSON, None, b"{\"resourceLogs\": 7}".to_vec()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(header(&response, "content-type").as_deref(), Some(JSON));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], tonic::Code::InvalidArgument as i32);
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("OTLP/JSON for ExportLogsServiceRequest"), "{message}");
    let response = post(&url, PROTOBUF, Some("gzip"), b"not gzip".to_vec()).await;
    assert_eq!(response.status(), 400);
    assert!(status_body(response).await.message.contains("gzip"));
    assert_eq!(sink.calls(), 0);
}

#[tokio::test]
async fn unsupported_media_is_415() {
    let sink = RecordingSink::accepting();
    let server = spawn_http(sink.clone(), ReceiverLimits::default()).await;
    let url = format!("{}/v1/traces", server.url);
    let response = post(&url, "text/plain", None, b"hello".to_vec()).await;
    assert_eq!(response.status(), 415);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("application/x-protobuf"));
    let response = post(&url, PROTOBUF, Some("br"), b"hello".to_vec()).await;
    assert_eq!(response.status(), 415);
    assert_eq!(sink.calls(), 0);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let sink = RecordingSink::accepting();
    let limits = ReceiverLimits { max_request_bytes: 4 * 1024 * 1024, ..Default::default() };
    let server = spawn_http(sink.clone(), limits).await;
    let url = format!("{}/v1/traces", server.url);
    let response = post(&url, PROTOBUF, None, vec![0x0a; 5 * 1024 * 1024]).await;
    assert_eq!(response.status(), 413);
    assert!(status_body(response).await.message.contains("4194304 bytes"));
    assert_eq!(sink.calls(), 0);
}

#[tokio::test]
async fn streamed_bodies_without_length_are_cut_at_the_limit() {
    let sink = RecordingSink::accepting();
    let limits = ReceiverLimits { max_request_bytes: 1024 * 1024, ..Default::default() };
    // Endless chunks: only a bound on the read can end this request.
    let chunks = futures::stream::repeat_with(|| Ok::<_, std::io::Error>(Bytes::from(vec![0; 64 * 1024])));
    let request = axum::http::Request::post("/v1/traces").header("content-type", PROTOBUF).body(Body::from_stream(chunks)).unwrap();
    let response = http_router(sink.clone(), limits, None).oneshot(request).await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(sink.calls(), 0);
}

#[tokio::test]
async fn gzip_bombs_are_rejected_without_inflating_them() {
    let sink = RecordingSink::accepting();
    let server = spawn_http(sink.clone(), ReceiverLimits::default()).await;
    // 100 MiB of zeros compress to about 100 KiB; the limit is 16 MiB.
    let bomb = gzip(&vec![0; 100 * 1024 * 1024]);
    assert!(bomb.len() < ReceiverLimits::DEFAULT_MAX_REQUEST_BYTES / 16);
    let url = format!("{}/v1/metrics", server.url);
    let response = post(&url, PROTOBUF, Some("gzip"), bomb).await;
    assert_eq!(response.status(), 413);
    assert_eq!(sink.calls(), 0);
}

#[tokio::test]
async fn overload_is_429_with_retry_after_and_retry_info() {
    let sink = RecordingSink::answering(Err(IngestError::Overloaded { reason: Overload::MemoryBudget, retry_after_ms: 2_500 }));
    let server = spawn_http(sink.clone(), ReceiverLimits::default()).await;
    let url = format!("{}/v1/traces", server.url);
    let response = post(&url, PROTOBUF, None, trace_request("busy").encode_to_vec()).await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "retry-after").as_deref(), Some("3"));
    let status = status_body(response).await;
    assert_eq!(status.code, tonic::Code::ResourceExhausted as i32);
    let retry_info = RetryInfo::decode(&status.details[0].value[..]).unwrap();
    assert_eq!(retry_info.retry_delay.map(|d| d.seconds), Some(2));
}

#[tokio::test]
async fn sink_errors_map_to_their_statuses() {
    let cases = [
        (IngestError::Unavailable("wal closed".to_owned()), 503, Some("1")),
        (IngestError::Internal("disk".to_owned()), 500, None),
        (IngestError::Invalid("no spans".to_owned()), 400, None),
    ];
    for (error, status, retry_after) in cases {
        let sink = RecordingSink::answering(Err(error.clone()));
        let server = spawn_http(sink, ReceiverLimits::default()).await;
        let url = format!("{}/v1/traces", server.url);
        let response = post(&url, JSON, None, b"{}".to_vec()).await;
        assert_eq!(response.status(), status, "{error}");
        assert_eq!(header(&response, "retry-after").as_deref(), retry_after, "{error}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], error.code().grpc_code() as i32);
        assert_eq!(body["message"], error.to_string());
    }
}

#[tokio::test]
async fn requests_over_the_concurrency_bound_are_503() {
    let sink = RecordingSink::holding();
    let limits = ReceiverLimits { max_concurrent_requests: 1, ..Default::default() };
    let server = spawn_http(sink.clone(), limits).await;
    let url = format!("{}/v1/traces", server.url);
    let body = trace_request("first").encode_to_vec();
    let first = tokio::spawn({
        let (url, body) = (url.clone(), body.clone());
        async move { post(&url, PROTOBUF, None, body).await.status() }
    });
    sink.hold().entered.notified().await;
    let second = post(&url, PROTOBUF, None, body).await;
    assert_eq!(second.status(), 503);
    assert_eq!(header(&second, "retry-after").as_deref(), Some("1"));
    assert_eq!(status_body(second).await.code, tonic::Code::Unavailable as i32);
    sink.hold().release.add_permits(1);
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(sink.traces().len(), 1);
}

#[tokio::test]
async fn partial_success_is_reported_in_both_formats() {
    let accepted = Accepted { rejected_items: 2, error_message: "2 items lacked ids".to_owned() };
    let sink = RecordingSink::answering(Ok(accepted));
    let server = spawn_http(sink, ReceiverLimits::default()).await;
    let url = format!("{}/v1/traces", server.url);
    let response = post(&url, PROTOBUF, None, trace_request("a").encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    let body = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    let partial = body.partial_success.unwrap();
    assert_eq!((partial.rejected_spans, partial.error_message.as_str()), (2, "2 items lacked ids"));

    let response = post(&url, JSON, None, SPEC_TRACES_JSON.into()).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["partialSuccess"]["rejectedSpans"], 2);

    let url = format!("{}/v1/logs", server.url);
    let response = post(&url, PROTOBUF, None, logs_request().encode_to_vec()).await;
    let body = ExportLogsServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(body.partial_success.unwrap().rejected_log_records, 2);

    let url = format!("{}/v1/metrics", server.url);
    let response = post(&url, PROTOBUF, None, metrics_request().encode_to_vec()).await;
    let body = ExportMetricsServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(body.partial_success.unwrap().rejected_data_points, 2);
}

/// A budget with room for one request of `request_bytes` being decoded
/// and ingested (charged 8× its size), not two.
fn budget_for_one(request_bytes: usize) -> std::sync::Arc<crate::session::MemoryBudget> {
    let budget = std::sync::Arc::new(crate::session::MemoryBudget::new(1 << 24));
    budget.force_reserve((1 << 24) - 10 * request_bytes as u64);
    budget
}

#[tokio::test]
async fn requests_are_charged_to_the_memory_budget_before_decoding() {
    let sink = RecordingSink::holding();
    let body = trace_request("first").encode_to_vec();
    let budget = budget_for_one(body.len());
    let before = budget.used_bytes();
    let limits = ReceiverLimits { memory: crate::receive::RequestMemory(Some(budget.clone())), ..Default::default() };
    let server = spawn_http(sink.clone(), limits).await;
    let url = format!("{}/v1/traces", server.url);
    let first = tokio::spawn({
        let (url, body) = (url.clone(), body.clone());
        async move { post(&url, PROTOBUF, None, body).await.status() }
    });
    sink.hold().entered.notified().await;
    assert_eq!(budget.used_bytes(), before + 8 * body.len() as u64, "charged while in flight");
    let second = post(&url, PROTOBUF, None, body.clone()).await;
    assert_eq!(second.status(), 429);
    assert!(header(&second, "retry-after").is_some());
    // Compressed, it is charged by its inflated size.
    let third = post(&url, PROTOBUF, Some("gzip"), gzip(&body)).await;
    assert_eq!(third.status(), 429);
    sink.hold().release.add_permits(1);
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(budget.used_bytes(), before, "given back once answered");
    assert_eq!(sink.traces().len(), 1);
}
