//! Test fixtures: a recording [`IngestSink`] whose answer and timing tests
//! control, servers on port 0, and small sample requests.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify, Semaphore};

use crate::ingest::{Accepted, IngestError, IngestSink};
use crate::receive::{http_router, serve_grpc, ReceiverLimits};

/// A sink that records every request and answers what the test told it.
pub(super) struct RecordingSink {
    traces: Mutex<Vec<ExportTraceServiceRequest>>,
    logs: Mutex<Vec<ExportLogsServiceRequest>>,
    metrics: Mutex<Vec<ExportMetricsServiceRequest>>,
    /// The answer to every call.
    outcome: Mutex<Result<Accepted, IngestError>>,
    /// When set, each call signals `entered` then waits for a `release` permit.
    hold: Option<Hold>,
}

pub(super) struct Hold {
    pub entered: Notify,
    pub release: Semaphore,
}

impl RecordingSink {
    pub(super) fn accepting() -> Arc<Self> {
        Self::answering(Ok(Accepted::default()))
    }

    pub(super) fn answering(outcome: Result<Accepted, IngestError>) -> Arc<Self> {
        Arc::new(Self::new(outcome, None))
    }

    /// Accepts, but only once the test adds a permit to `hold().release`.
    pub(super) fn holding() -> Arc<Self> {
        let hold = Hold { entered: Notify::new(), release: Semaphore::new(0) };
        Arc::new(Self::new(Ok(Accepted::default()), Some(hold)))
    }

    fn new(outcome: Result<Accepted, IngestError>, hold: Option<Hold>) -> Self {
        Self { traces: Mutex::default(), logs: Mutex::default(), metrics: Mutex::default(), outcome: Mutex::new(outcome), hold }
    }

    pub(super) fn hold(&self) -> &Hold {
        self.hold.as_ref().expect("sink built with holding()")
    }

    pub(super) fn traces(&self) -> Vec<ExportTraceServiceRequest> {
        self.traces.lock().unwrap().clone()
    }

    pub(super) fn logs(&self) -> Vec<ExportLogsServiceRequest> {
        self.logs.lock().unwrap().clone()
    }

    pub(super) fn metrics(&self) -> Vec<ExportMetricsServiceRequest> {
        self.metrics.lock().unwrap().clone()
    }

    /// Requests of any signal received so far.
    pub(super) fn calls(&self) -> usize {
        self.traces().len() + self.logs().len() + self.metrics().len()
    }

    async fn answer(&self) -> Result<Accepted, IngestError> {
        if let Some(hold) = &self.hold {
            hold.entered.notify_one();
            let _permit = hold.release.acquire().await.expect("release semaphore open");
        }
        self.outcome.lock().unwrap().clone()
    }
}

impl IngestSink for RecordingSink {
    async fn traces(&self, request: ExportTraceServiceRequest) -> Result<Accepted, IngestError> {
        self.traces.lock().unwrap().push(request);
        self.answer().await
    }

    async fn logs(&self, request: ExportLogsServiceRequest) -> Result<Accepted, IngestError> {
        self.logs.lock().unwrap().push(request);
        self.answer().await
    }

    async fn metrics(&self, request: ExportMetricsServiceRequest) -> Result<Accepted, IngestError> {
        self.metrics.lock().unwrap().push(request);
        self.answer().await
    }
}

/// A receiver running on 127.0.0.1:0; stops when dropped.
pub(super) struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Dropping it resolves the shutdown future.
    _shutdown: oneshot::Sender<()>,
}

pub(super) async fn spawn_http(sink: Arc<RecordingSink>, limits: ReceiverLimits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let router = http_router(sink, limits, None);
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Server { url, _shutdown: shutdown }
}

pub(super) async fn spawn_grpc(sink: Arc<RecordingSink>, limits: ReceiverLimits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_grpc(Box::new(ollystack_cluster::net::TcpAcceptor(listener)), sink, limits, None, async move {
        let _ = stopped.await;
    }));
    Server { url, _shutdown: shutdown }
}

pub(super) const TRACE_ID: [u8; 16] = [0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c];
pub(super) const SPAN_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];

fn service_resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".to_owned(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue("checkout".to_owned())) }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// One span named `name` with [`TRACE_ID`] and [`SPAN_ID`].
pub(super) fn trace_request(name: &str) -> ExportTraceServiceRequest {
    let span = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: 1_544_712_660_000_000_000,
        end_time_unix_nano: 1_544_712_661_000_000_000,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: service_resource(),
            scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
            ..Default::default()
        }],
    }
}

pub(super) fn logs_request() -> ExportLogsServiceRequest {
    let record = LogRecord {
        trace_id: TRACE_ID.to_vec(),
        severity_number: 9,
        body: Some(AnyValue { value: Some(any_value::Value::StringValue("cart loaded".to_owned())) }),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: service_resource(),
            scope_logs: vec![ScopeLogs { log_records: vec![record], ..Default::default() }],
            ..Default::default()
        }],
    }
}

pub(super) fn metrics_request() -> ExportMetricsServiceRequest {
    let point = NumberDataPoint {
        time_unix_nano: 1_544_712_660_000_000_000,
        value: Some(number_data_point::Value::AsInt(42)),
        ..Default::default()
    };
    let metric =
        Metric { name: "cart.size".to_owned(), data: Some(metric::Data::Gauge(Gauge { data_points: vec![point] })), ..Default::default() };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: service_resource(),
            scope_metrics: vec![ScopeMetrics { metrics: vec![metric], ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// Gzip of `bytes`.
pub(super) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}
