//! The three OTLP signals (traces, logs, metrics) behind one trait, so the
//! export path of each receiver is written once and only this file knows
//! which message, sink method and `rejected_*` field belong to which signal.

use std::future::Future;

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse};

use crate::ingest::{Accepted, IngestError, IngestSink, SignalKind};

/// One OTLP signal: its request and response messages and its sink method.
pub(crate) trait Signal: Send + Sync + 'static {
    /// The export request, decodable from protobuf and OTLP/JSON.
    type Request: prost::Message + Default + serde::de::DeserializeOwned + crate::access::pin::Pinnable + Send + 'static;
    /// The export response, encodable to protobuf and OTLP/JSON.
    type Response: prost::Message + serde::Serialize + Send + 'static;

    /// Protobuf message name of the request, named in decode errors.
    const REQUEST_NAME: &'static str;

    /// The signal as a sink may route it encoded (`None`: always decoded).
    const KIND: Option<SignalKind>;

    /// The gRPC service, and the path of its `Export` method.
    const SERVICE_NAME: &'static str;
    const EXPORT_PATH: &'static str;

    /// Hands the request to the sink method of this signal.
    fn ingest<S: IngestSink>(sink: &S, request: Self::Request) -> impl Future<Output = Result<Accepted, IngestError>> + Send;

    /// The OTLP response for an accepted batch: `partial_success` is set only
    /// when items were rejected (an empty one means full success anyway).
    fn response(accepted: &Accepted) -> Self::Response;
}

/// Traces: `ExportTraceServiceRequest`, `rejected_spans`.
pub(crate) enum Traces {}
/// Logs: `ExportLogsServiceRequest`, `rejected_log_records`.
pub(crate) enum Logs {}
/// Metrics: `ExportMetricsServiceRequest`, `rejected_data_points`.
pub(crate) enum Metrics {}

/// `rejected_*` fields are int64 in OTLP; counts beyond it saturate.
fn rejected_count(accepted: &Accepted) -> i64 {
    i64::try_from(accepted.rejected_items).unwrap_or(i64::MAX)
}

impl Signal for Traces {
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;
    const REQUEST_NAME: &'static str = "ExportTraceServiceRequest";
    const KIND: Option<SignalKind> = Some(SignalKind::Traces);
    const SERVICE_NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

    fn ingest<S: IngestSink>(sink: &S, request: Self::Request) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        sink.traces(request)
    }

    fn response(accepted: &Accepted) -> Self::Response {
        let partial_success = (accepted.rejected_items > 0)
            .then(|| ExportTracePartialSuccess { rejected_spans: rejected_count(accepted), error_message: accepted.error_message.clone() });
        ExportTraceServiceResponse { partial_success }
    }
}

impl Signal for Logs {
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;
    const REQUEST_NAME: &'static str = "ExportLogsServiceRequest";
    const KIND: Option<SignalKind> = Some(SignalKind::Logs);
    const SERVICE_NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

    fn ingest<S: IngestSink>(sink: &S, request: Self::Request) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        sink.logs(request)
    }

    fn response(accepted: &Accepted) -> Self::Response {
        let partial_success = (accepted.rejected_items > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: rejected_count(accepted),
            error_message: accepted.error_message.clone(),
        });
        ExportLogsServiceResponse { partial_success }
    }
}

impl Signal for Metrics {
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;
    const REQUEST_NAME: &'static str = "ExportMetricsServiceRequest";
    const KIND: Option<SignalKind> = None;
    const SERVICE_NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

    fn ingest<S: IngestSink>(sink: &S, request: Self::Request) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        sink.metrics(request)
    }

    fn response(accepted: &Accepted) -> Self::Response {
        let partial_success = (accepted.rejected_items > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: rejected_count(accepted),
            error_message: accepted.error_message.clone(),
        });
        ExportMetricsServiceResponse { partial_success }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server;
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server;

    use super::*;

    #[test]
    fn service_names_are_the_generated_ones() {
        assert_eq!(Traces::SERVICE_NAME, trace_service_server::SERVICE_NAME);
        assert_eq!(Logs::SERVICE_NAME, logs_service_server::SERVICE_NAME);
        assert_eq!(Metrics::SERVICE_NAME, metrics_service_server::SERVICE_NAME);
        for (name, path) in [
            (Traces::SERVICE_NAME, Traces::EXPORT_PATH),
            (Logs::SERVICE_NAME, Logs::EXPORT_PATH),
            (Metrics::SERVICE_NAME, Metrics::EXPORT_PATH),
        ] {
            assert_eq!(path, format!("/{name}/Export"));
        }
    }
}
