//! The simulations' deliberate bugs ([`Faults`]), to show their checks
//! catch what each breaks. Only a build with the `sim-faults` feature (the
//! simulations') can switch one on; the release binary has no switch.

use std::future::Future;
use std::sync::Arc;

use crate::ingest::IngestSink;

/// Deliberately broken behaviours. Only the simulations' bug-finding tests
/// switch them on, to show the simulator catches what they break, and only
/// a build with the `sim-faults` feature can (see `Sources::faults`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// OTLP gRPC answers success as soon as a batch is decoded, and ingests
    /// it afterwards; a failure after that is only logged.
    pub ack_before_durable: bool,
    /// No handoff sweep: live sessions stay on a node that no longer owns
    /// them after the ring changes.
    pub skip_handoff: bool,
    /// A leaving node keeps its archived segments instead of handing them
    /// to their owners: they become unreachable once it is gone.
    pub skip_archive_handover: bool,
    /// Trace bindings stay where they were made when the ring changes: a
    /// span that reaches a trace's new home by trace alone opens a derived
    /// session that never joins its request.
    pub skip_binding_sync: bool,
}

/// Serves OTLP gRPC, through [`AckEarly`] when the simulations switch
/// [`Faults::ack_before_durable`] on.
#[cfg(feature = "sim-faults")]
pub(super) async fn serve_otlp_grpc<S: IngestSink>(
    listener: Box<dyn ollystack_cluster::net::Acceptor>,
    sink: Arc<S>,
    limits: crate::receive::ReceiverLimits,
    auth: Option<crate::access::AuthLayer<tonic::body::Body>>,
    stop: impl Future<Output = ()> + Send + 'static,
    faults: Faults,
) -> Result<(), crate::receive::ReceiveError> {
    if faults.ack_before_durable {
        crate::receive::serve_grpc(listener, Arc::new(AckEarly(sink)), limits, auth, stop).await
    } else {
        crate::receive::serve_grpc(listener, sink, limits, auth, stop).await
    }
}

/// Serves OTLP gRPC (the release build has no fault switches).
#[cfg(not(feature = "sim-faults"))]
pub(super) async fn serve_otlp_grpc<S: IngestSink>(
    listener: Box<dyn ollystack_cluster::net::Acceptor>,
    sink: Arc<S>,
    limits: crate::receive::ReceiverLimits,
    auth: Option<crate::access::AuthLayer<tonic::body::Body>>,
    stop: impl Future<Output = ()> + Send + 'static,
    _faults: Faults,
) -> Result<(), crate::receive::ReceiveError> {
    crate::receive::serve_grpc(listener, sink, limits, auth, stop).await
}

#[cfg(feature = "sim-faults")]
mod ack_early {
    use std::future::Future;
    use std::sync::Arc;

    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    use crate::ingest::{Accepted, IngestError, IngestSink};

    /// [`super::Faults::ack_before_durable`]: acknowledges first, ingests afterwards.
    pub struct AckEarly<S>(pub Arc<S>);

    impl<S: IngestSink> AckEarly<S> {
        fn later<F>(&self, ingest: impl FnOnce(Arc<S>) -> F + Send + 'static) -> impl Future<Output = Result<Accepted, IngestError>> + Send
        where
            F: Future<Output = Result<Accepted, IngestError>> + Send + 'static,
        {
            let sink = self.0.clone();
            async move {
                tokio::spawn(async move {
                    if let Err(e) = ingest(sink).await {
                        tracing::warn!(error = %e, "batch acknowledged early failed to ingest");
                    }
                });
                Ok(Accepted::default())
            }
        }
    }

    impl<S: IngestSink> IngestSink for AckEarly<S> {
        fn traces(&self, request: ExportTraceServiceRequest) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
            self.later(move |s| async move { s.traces(request).await })
        }

        fn logs(&self, request: ExportLogsServiceRequest) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
            self.later(move |s| async move { s.logs(request).await })
        }

        fn metrics(&self, request: ExportMetricsServiceRequest) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
            self.later(move |s| async move { s.metrics(request).await })
        }
    }
}

#[cfg(feature = "sim-faults")]
use ack_early::AckEarly;
