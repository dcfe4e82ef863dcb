//! OTLP/gRPC receiver end to end: a real tonic server on port 0, the
//! generated OTLP clients, a recording sink behind it.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

use super::fixtures::{logs_request, metrics_request, spawn_grpc, trace_request, RecordingSink};
use crate::ingest::{Accepted, IngestError, Overload};
use crate::receive::codec::{RetryInfo, RpcStatus, RETRY_INFO_TYPE_URL};
use crate::receive::{serve_grpc, ReceiverLimits};

/// A trace client that compresses requests with gzip and accepts gzip.
async fn trace_client(url: &str) -> TraceServiceClient<Channel> {
    TraceServiceClient::connect(url.to_owned())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip)
}

#[tokio::test]
async fn gzip_trace_export_reaches_the_sink() {
    let sink = RecordingSink::accepting();
    let server = spawn_grpc(sink.clone(), ReceiverLimits::default()).await;
    let request = trace_request("GET /cart");
    let response = trace_client(&server.url).await.export(request.clone()).await.unwrap();
    assert_eq!(response.into_inner().partial_success, None);
    assert_eq!(sink.traces(), vec![request]);
}

#[tokio::test]
async fn logs_and_metrics_reach_their_sink_methods() {
    let sink = RecordingSink::accepting();
    let server = spawn_grpc(sink.clone(), ReceiverLimits::default()).await;
    let mut logs = LogsServiceClient::connect(server.url.clone()).await.unwrap();
    logs.export(logs_request()).await.unwrap();
    let mut metrics = MetricsServiceClient::connect(server.url.clone()).await.unwrap();
    metrics.export(metrics_request()).await.unwrap();
    assert_eq!(sink.logs(), vec![logs_request()]);
    assert_eq!(sink.metrics(), vec![metrics_request()]);
    assert!(sink.traces().is_empty());
}

#[tokio::test]
async fn overload_is_resource_exhausted_with_retry_info() {
    let sink = RecordingSink::answering(Err(IngestError::Overloaded { reason: Overload::MemoryBudget, retry_after_ms: 1_500 }));
    let server = spawn_grpc(sink, ReceiverLimits::default()).await;
    let status = trace_client(&server.url).await.export(trace_request("busy")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let details = RpcStatus::decode(status.details()).unwrap();
    assert_eq!(details.details[0].type_url, RETRY_INFO_TYPE_URL);
    let delay = RetryInfo::decode(&details.details[0].value[..]).unwrap().retry_delay.unwrap();
    assert_eq!((delay.seconds, delay.nanos), (1, 500_000_000));
}

#[tokio::test]
async fn sink_errors_map_to_their_codes() {
    let cases = [
        (IngestError::Invalid("no spans".to_owned()), tonic::Code::InvalidArgument),
        (IngestError::Unavailable("wal closed".to_owned()), tonic::Code::Unavailable),
        (IngestError::Internal("disk".to_owned()), tonic::Code::Internal),
    ];
    for (error, code) in cases {
        let sink = RecordingSink::answering(Err(error.clone()));
        let server = spawn_grpc(sink, ReceiverLimits::default()).await;
        let status = trace_client(&server.url).await.export(trace_request("x")).await.unwrap_err();
        assert_eq!(status.code(), code);
        assert_eq!(status.message(), error.to_string());
    }
}

#[tokio::test]
async fn partial_success_is_reported() {
    let accepted = Accepted { rejected_items: 3, error_message: "3 items lacked ids".to_owned() };
    let sink = RecordingSink::answering(Ok(accepted));
    let server = spawn_grpc(sink, ReceiverLimits::default()).await;
    let response = trace_client(&server.url).await.export(trace_request("a")).await.unwrap();
    let partial = response.into_inner().partial_success.unwrap();
    assert_eq!((partial.rejected_spans, partial.error_message.as_str()), (3, "3 items lacked ids"));
    let mut logs = LogsServiceClient::connect(server.url.clone()).await.unwrap();
    let partial = logs.export(logs_request()).await.unwrap().into_inner().partial_success;
    assert_eq!(partial.unwrap().rejected_log_records, 3);
    let mut metrics = MetricsServiceClient::connect(server.url.clone()).await.unwrap();
    let partial = metrics.export(metrics_request()).await.unwrap().into_inner().partial_success;
    assert_eq!(partial.unwrap().rejected_data_points, 3);
}

#[tokio::test]
async fn requests_over_the_concurrency_bound_are_unavailable() {
    let sink = RecordingSink::holding();
    let limits = ReceiverLimits { max_concurrent_requests: 1, ..Default::default() };
    let server = spawn_grpc(sink.clone(), limits).await;
    let mut client = trace_client(&server.url).await;
    let first = tokio::spawn({
        let mut client = client.clone();
        async move { client.export(trace_request("first")).await.map(|_| ()) }
    });
    sink.hold().entered.notified().await;
    let status = client.export(trace_request("second")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(status.message().contains("limit 1"), "{}", status.message());
    sink.hold().release.add_permits(1);
    first.await.unwrap().unwrap();
    assert_eq!(sink.traces().len(), 1);
}

#[tokio::test]
async fn oversized_messages_are_refused_before_the_sink() {
    let sink = RecordingSink::accepting();
    let limits = ReceiverLimits { max_request_bytes: 1024, ..Default::default() };
    let server = spawn_grpc(sink.clone(), limits).await;
    let big = trace_request(&"x".repeat(4096));
    let mut plain = TraceServiceClient::connect(server.url.clone()).await.unwrap();
    let status = plain.export(big.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status}");
    // Compressed it fits the limit; inflated it does not (a zip bomb in small).
    let status = trace_client(&server.url).await.export(big).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
    assert_eq!(sink.calls(), 0);
}

#[tokio::test]
async fn serve_returns_once_shutdown_resolves() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink = RecordingSink::accepting();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_grpc(
        Box::new(ollystack_cluster::net::TcpAcceptor(listener)),
        sink,
        ReceiverLimits::default(),
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn requests_are_charged_to_the_memory_budget_before_decoding() {
    let sink = RecordingSink::holding();
    let size = trace_request("first").encoded_len();
    let budget = std::sync::Arc::new(crate::session::MemoryBudget::new(1 << 24));
    budget.force_reserve((1 << 24) - 10 * size as u64);
    let before = budget.used_bytes();
    let limits = ReceiverLimits { memory: crate::receive::RequestMemory(Some(budget.clone())), ..Default::default() };
    let server = spawn_grpc(sink.clone(), limits).await;
    let mut plain = TraceServiceClient::connect(server.url.clone()).await.unwrap();
    let first = tokio::spawn({
        let mut client = plain.clone();
        async move { client.export(trace_request("first")).await.map(|_| ()) }
    });
    sink.hold().entered.notified().await;
    assert_eq!(budget.used_bytes(), before + 8 * size as u64, "charged while in flight");
    let status = plain.export(trace_request("first")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
    sink.hold().release.add_permits(1);
    first.await.unwrap().unwrap();
    assert_eq!(budget.used_bytes(), before, "given back once answered");
    assert_eq!(sink.traces().len(), 1);
}
