//! OTLP/gRPC receiver: the trace, logs and metrics services on one tonic
//! server, accepting and sending gzip.
//!
//! tonic inflates (bounded by `max_decoding_message_size`) before a service
//! method runs, and the export service (`grpc_export`) decodes, on the async
//! threads: that work is bounded
//! by `max_request_bytes` but not moved to the blocking pool (tonic offers no
//! hook for it). Admission is therefore a tower layer in front of the whole
//! server, doing what the HTTP receiver does: it reads the body (bounded in
//! size, in time and with every other body being read), then takes an
//! admission slot (UNAVAILABLE beyond the bound), then charges the memory
//! budget by the message prefix (RESOURCE_EXHAUSTED beyond it), and only
//! then lets tonic decode.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ollystack_cluster::net::Acceptor;
use tokio::sync::Semaphore;
use tonic::codegen::http;

use super::body::{body_budget_kib, read_body_bounded, BodyError, BODY_READ_TIMEOUT};
use super::codec::DecodeError;
use super::grpc_export::{ingest_error_status, ExportServer};
use super::signal::{Logs, Metrics, Traces};
use super::{ReceiveError, ReceiverLimits, RequestMemory};
use crate::access::AuthLayer;
use crate::error::ErrorCode;
use crate::ingest::IngestSink;

/// Serves the OTLP/gRPC services on `listener` until `shutdown` resolves,
/// then waits for open connections to finish.
pub async fn serve_grpc<S: IngestSink>(
    listener: Box<dyn Acceptor>,
    sink: Arc<S>,
    limits: ReceiverLimits,
    auth: Option<AuthLayer<tonic::body::Body>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiveError> {
    let max_bytes = limits.max_request_bytes;
    let traces = ExportServer::<Traces, S>::new(Arc::clone(&sink), max_bytes);
    let logs = ExportServer::<Logs, S>::new(Arc::clone(&sink), max_bytes);
    let metrics = ExportServer::<Metrics, S>::new(sink, max_bytes);
    let admission = AdmissionLayer {
        admission: limits.admission(),
        max_concurrent_requests: limits.max_concurrent_requests,
        memory: limits.memory.clone(),
        max_request_bytes: max_bytes,
        buffered: Arc::new(Semaphore::new(body_budget_kib(&limits))),
    };
    let routes = tonic::service::Routes::new(traces).add_service(logs).add_service(metrics);
    let service = tower::Layer::layer(&admission, routes);
    // Authentication first: a refused caller takes no admission permit.
    match auth {
        Some(auth) => ollystack_cluster::net::serve_grpc(listener, tower::Layer::layer(&auth, service), shutdown).await,
        None => ollystack_cluster::net::serve_grpc(listener, service, shutdown).await,
    }
    Ok(())
}

/// How long an export call may take once its body is in.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Tower layer bounding the requests in flight on the gRPC server.
#[derive(Clone)]
struct AdmissionLayer {
    /// One permit per request in flight; `try_acquire` only, never waits.
    admission: Arc<Semaphore>,
    /// The bound, named in the UNAVAILABLE message.
    max_concurrent_requests: usize,
    /// Charged before tonic decodes a request ([`super::memory`]).
    memory: RequestMemory,
    max_request_bytes: usize,
    /// Bodies being read, in KiB ([`body_budget_kib`]).
    buffered: Arc<Semaphore>,
}

impl<Inner> tower::Layer<Inner> for AdmissionLayer {
    type Service = Admission<Inner>;

    fn layer(&self, inner: Inner) -> Self::Service {
        Admission { inner, layer: self.clone() }
    }
}

/// [`AdmissionLayer`] around a service.
#[derive(Clone)]
struct Admission<Inner> {
    inner: Inner,
    layer: AdmissionLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<Inner> tower::Service<http::Request<tonic::body::Body>> for Admission<Inner>
where
    Inner: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    Inner::Future: Send + 'static,
    Inner::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Inner::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        // The ready service answers this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            // The body first, bounded in size, time and (with every other body being read)
            // bytes: a client that stalls it holds no admission permit.
            let (parts, body) = request.into_parts();
            let limit = layer.max_request_bytes.saturating_add(GRPC_PREFIX_BYTES);
            let (raw, _buffered) =
                match tokio::time::timeout(BODY_READ_TIMEOUT, read_body_bounded(body, None, limit, &layer.buffered)).await {
                    Ok(Ok(read)) => read,
                    Ok(Err(BodyError::Decode(DecodeError::TooLarge { limit_bytes }))) => {
                        return Ok(ErrorCode::TooLarge.grpc_status(format!("request larger than {limit_bytes} bytes")).into_http())
                    }
                    Ok(Err(BodyError::Decode(err))) => return Ok(err.code().grpc_status(err.to_string()).into_http()),
                    Ok(Err(BodyError::Full)) => {
                        return Ok(ErrorCode::Unavailable.grpc_status("too many request bodies being read; retry").into_http())
                    }
                    Err(_) => {
                        return Ok(ErrorCode::Timeout
                            .grpc_status(format!("the request body did not arrive within {BODY_READ_TIMEOUT:?}"))
                            .into_http())
                    }
                };
            let Ok(permit) = Arc::clone(&layer.admission).try_acquire_owned() else {
                let limit = layer.max_concurrent_requests;
                return Ok(ErrorCode::Unavailable.grpc_status(format!("too many concurrent export requests (limit {limit})")).into_http());
            };
            let charge = match layer.memory.charge(charged_bytes(&raw, layer.max_request_bytes)) {
                Ok(charge) => charge,
                Err(overloaded) => return Ok(ingest_error_status(&overloaded).into_http()),
            };
            let request = http::Request::from_parts(parts, tonic::body::Body::new(http_body_util::Full::new(raw)));
            let response = match tokio::time::timeout(REQUEST_TIMEOUT, inner.call(request)).await {
                Ok(response) => response,
                Err(_) => {
                    Ok(ErrorCode::Timeout.grpc_status(format!("the request did not complete within {REQUEST_TIMEOUT:?}")).into_http())
                }
            };
            drop((charge, permit));
            response
        })
    }
}

/// Length of a gRPC message prefix: a compression flag and a 4-byte length.
const GRPC_PREFIX_BYTES: usize = 5;

/// Plain bytes a request is charged for, from its first message prefix:
/// the declared length, or for a compressed message eight times it (a
/// typical OTLP compression ratio; tonic bounds the real inflation by the
/// request limit), at most the limit.
fn charged_bytes(head: &[u8], max_bytes: usize) -> usize {
    let Some(prefix) = head.get(..GRPC_PREFIX_BYTES) else { return 0 };
    let declared = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    let plain = if prefix[0] == 0 { declared } else { declared.saturating_mul(8) };
    plain.min(max_bytes)
}
