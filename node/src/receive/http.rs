//! OTLP/HTTP receiver: `POST /v1/traces`, `/v1/logs` and `/v1/metrics` on
//! axum, protobuf or OTLP/JSON, optionally gzip-compressed.
//!
//! A request goes: content type check → admission (no queueing) → bounded
//! body read → decode (off the async threads when large or compressed) →
//! sink → response in the request's format. Every failure is answered with a
//! `google.rpc.Status` body and the status code OTLP clients expect.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Extension;
use axum::Router;
use bytes::Bytes;

use tokio::sync::Semaphore;

use super::body::{body_budget_kib, read_body_bounded, BodyError, BODY_READ_TIMEOUT};
use super::codec::{self, DecodeError, Encoding, Format, RpcStatus};
use super::memory::{Charge, RequestMemory};
use super::signal::{Logs, Metrics, Signal, Traces};
use super::ReceiverLimits;
use crate::access::layer::PinTenant;
use crate::access::pin::Pinnable;
use crate::access::tokens::Denied;
use crate::access::AuthLayer;
use crate::error::ErrorCode;
use crate::ingest::{IngestError, IngestSink, WholeRoute};

/// Bodies up to this size (uncompressed) are decoded on the async thread:
/// a blocking-pool hop costs more than decoding them.
const INLINE_DECODE_MAX_BYTES: usize = 64 * 1024;

/// `Retry-After` sent with 503 when the receiver is at its concurrency bound.
const SHED_RETRY_AFTER_SECS: u64 = 1;

/// The OTLP/HTTP routes, ready to be served (or merged into another router).
/// With `auth`, every call needs an ingest token (refused before its body
/// is read).
pub fn http_router<S: IngestSink>(sink: Arc<S>, limits: ReceiverLimits, auth: Option<AuthLayer<Body>>) -> Router {
    let buffered = Arc::new(Semaphore::new(body_budget_kib(&limits)));
    let receiver = Arc::new(HttpReceiver { sink, admission: limits.admission(), buffered, limits });
    let router = Router::new()
        .route("/v1/traces", post(export::<Traces, S>))
        .route("/v1/logs", post(export::<Logs, S>))
        .route("/v1/metrics", post(export::<Metrics, S>))
        .with_state(receiver);
    match auth {
        Some(auth) => router.layer(auth),
        None => router,
    }
}

/// A refused caller's answer: 401 or 403 with a `google.rpc.Status` in the
/// request's format (JSON when it names none), as for any refused batch.
pub fn reject_http(denied: &Denied, headers: &HeaderMap) -> Response {
    let format = header_str(headers, CONTENT_TYPE).and_then(Format::from_content_type).unwrap_or(Format::Json);
    let code = denied.code();
    let mut response = Rejection::new(code, denied.to_string(), format).into_response();
    if code == ErrorCode::Unauthenticated {
        response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// State shared by the routes of one HTTP receiver.
struct HttpReceiver<S> {
    /// Where decoded requests go.
    sink: Arc<S>,
    /// Size and concurrency bounds.
    limits: ReceiverLimits,
    /// One permit per request being decoded or ingested; `try_acquire` only, never
    /// waits. Taken once the body is in: a client that stalls its body holds none.
    admission: Arc<Semaphore>,
    /// Bodies being read, in KiB actually received ([`body_budget_kib`]):
    /// a stalled body holds only what it sent.
    buffered: Arc<Semaphore>,
}

async fn export<G: Signal, S: IngestSink>(
    State(receiver): State<Arc<HttpReceiver<S>>>,
    pin: Option<Extension<PinTenant>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match export_request::<G, S>(&receiver, pin.map(|p| p.0), &headers, body).await {
        Ok(response) => response,
        Err(rejection) => rejection.into_response(),
    }
}

async fn export_request<G: Signal, S: IngestSink>(
    receiver: &HttpReceiver<S>,
    pin: Option<PinTenant>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Rejection> {
    let format = header_str(headers, CONTENT_TYPE).and_then(Format::from_content_type).ok_or_else(Rejection::unsupported_content_type)?;
    let encoding =
        Encoding::from_header(header_str(headers, CONTENT_ENCODING)).ok_or_else(|| Rejection::unsupported_content_encoding(format))?;
    let limit_bytes = receiver.limits.max_request_bytes;
    let content_length = header_str(headers, CONTENT_LENGTH).and_then(|v| v.parse().ok());
    let reading = read_body_bounded(body, content_length, limit_bytes, &receiver.buffered);
    let (raw, _buffered) = match tokio::time::timeout(BODY_READ_TIMEOUT, reading).await {
        Ok(Ok(read)) => read,
        Ok(Err(BodyError::Decode(err))) => return Err(Rejection::decode(&err, format)),
        Ok(Err(BodyError::Full)) => return Err(Rejection::shed(format, receiver.limits.max_concurrent_requests)),
        Err(_) => return Err(Rejection::body_timeout(format)),
    };
    // Held until the response is built: bounds decoding and ingest.
    let _permit =
        receiver.admission.clone().try_acquire_owned().map_err(|_| Rejection::shed(format, receiver.limits.max_concurrent_requests))?;
    // A tenant-pinned request is changed before ingest: decoded here.
    let routable = pin.is_none();
    let (taken, _charge) =
        take_off_thread::<G, S>(&receiver.sink, raw, format, encoding, limit_bytes, &receiver.limits.memory, routable).await?;
    let ingested = match taken {
        Taken::Whole(route, body) => match G::KIND {
            Some(kind) => receiver.sink.forward_encoded(kind, route, body).await,
            None => Err(IngestError::Internal(format!("{} routed encoded", G::REQUEST_NAME))),
        },
        Taken::Decoded(mut request) => {
            if let Some(pin) = &pin {
                request.pin_tenant(pin);
            }
            G::ingest(&*receiver.sink, request).await
        }
    };
    let accepted = ingested.map_err(|err| Rejection::ingest(&err, format))?;
    let body = codec::encode_response::<G>(&G::response(&accepted), format)
        .map_err(|err| Rejection::internal(format!("cannot encode response: {err}"), format))?;
    Ok((StatusCode::OK, [(CONTENT_TYPE, format.content_type())], body).into_response())
}

/// A header as text; `None` when absent or not visible ASCII.
fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A request body made ready for the sink.
enum Taken<R> {
    Decoded(R),
    /// Routed whole, undecoded ([`IngestSink::route_encoded`]).
    Whole(WholeRoute, Bytes),
}

/// Routes a plain protobuf body whole when the sink can (and `routable`),
/// else decodes it.
fn take<G: Signal, S: IngestSink>(
    sink: &S,
    plain: Bytes,
    format: Format,
    limit_bytes: usize,
    routable: bool,
) -> Result<Taken<G::Request>, DecodeError> {
    if let (true, Format::Protobuf, Some(kind)) = (routable && plain.len() <= limit_bytes, format, G::KIND) {
        if let Some(route) = sink.route_encoded(kind, &plain) {
            return Ok(Taken::Whole(route, plain));
        }
    }
    codec::decode_request::<G>(&plain, format, Encoding::Identity, limit_bytes).map(Taken::Decoded)
}

/// Decodes (or routes whole, see [`take`]), charging the node's memory
/// budget first ([`RequestMemory`]): a plain body by its size, a compressed
/// one by its inflated size (it is inflated, bounded by the limit, then
/// charged, then decoded). Works on the blocking pool when the work may be
/// large: big bodies, and every compressed body (a small one may inflate up
/// to the limit).
async fn take_off_thread<G: Signal, S: IngestSink>(
    sink: &Arc<S>,
    raw: Bytes,
    format: Format,
    encoding: Encoding,
    limit_bytes: usize,
    memory: &RequestMemory,
    routable: bool,
) -> Result<(Taken<G::Request>, Charge), Rejection> {
    let decoded = if encoding == Encoding::Identity {
        let charge = memory.charge(raw.len()).map_err(|err| Rejection::ingest(&err, format))?;
        let decoded = if raw.len() <= INLINE_DECODE_MAX_BYTES {
            take::<G, S>(sink, raw, format, limit_bytes, routable)
        } else {
            let sink = Arc::clone(sink);
            ollystack_cluster::blocking::unblock(move || take::<G, S>(&sink, raw, format, limit_bytes, routable))
                .await
                .map_err(|err| Rejection::internal(format!("decode task failed: {err}"), format))?
        };
        decoded.map(|taken| (taken, charge))
    } else {
        let memory = memory.clone();
        let sink = Arc::clone(sink);
        let inflated = ollystack_cluster::blocking::unblock(move || {
            let plain = codec::gunzip_bounded(&raw, limit_bytes).map_err(Ok)?;
            let charge = memory.charge(plain.len()).map_err(Err)?;
            take::<G, S>(&sink, Bytes::from(plain), format, limit_bytes, routable).map(|taken| (taken, charge)).map_err(Ok)
        })
        .await
        .map_err(|err| Rejection::internal(format!("decode task failed: {err}"), format))?;
        match inflated {
            Ok(decoded) => Ok(decoded),
            Err(Ok(err)) => Err(err),
            Err(Err(overloaded)) => return Err(Rejection::ingest(&overloaded, format)),
        }
    };
    decoded.map_err(|err| {
        tracing::debug!(signal = G::REQUEST_NAME, error = %err, "otlp http request rejected");
        Rejection::decode(&err, format)
    })
}

/// A request refused as a whole: an HTTP status, a `google.rpc.Status`
/// body in `format`, and maybe a `Retry-After`.
struct Rejection {
    status: StatusCode,
    body: RpcStatus,
    format: Format,
    retry_after_secs: Option<u64>,
}

impl Rejection {
    fn new(code: ErrorCode, message: String, format: Format) -> Self {
        Self { status: code.http_status(), body: RpcStatus::new(code.grpc_code(), message, None), format, retry_after_secs: None }
    }

    /// 415. The body format is unknown, so the answer is JSON (readable).
    fn unsupported_content_type() -> Self {
        let message = "unsupported content type: expected application/x-protobuf or application/json";
        Self::new(ErrorCode::UnsupportedMediaType, message.to_owned(), Format::Json)
    }

    fn unsupported_content_encoding(format: Format) -> Self {
        let message = "unsupported content encoding: expected gzip or none".to_owned();
        Self::new(ErrorCode::UnsupportedMediaType, message, format)
    }

    /// 503 + `Retry-After`: too many requests in flight.
    fn shed(format: Format, max_concurrent_requests: usize) -> Self {
        let message = format!("too many concurrent export requests (limit {max_concurrent_requests})");
        let mut rejection = Self::new(ErrorCode::Unavailable, message, format);
        rejection.retry_after_secs = Some(SHED_RETRY_AFTER_SECS);
        rejection
    }

    /// 413 or 400. The body's code is INVALID_ARGUMENT for both (gRPC
    /// answers OUT_OF_RANGE for a body over the limit, as tonic does).
    fn decode(err: &DecodeError, format: Format) -> Self {
        Self { status: err.code().http_status(), ..Self::new(ErrorCode::BadRequest, err.to_string(), format) }
    }

    /// 408: the body did not arrive in time.
    fn body_timeout(format: Format) -> Self {
        let message = format!("the request body did not arrive within {BODY_READ_TIMEOUT:?}");
        Self::new(ErrorCode::Timeout, message, format)
    }

    fn ingest(err: &IngestError, format: Format) -> Self {
        if matches!(err, IngestError::Internal(_)) {
            tracing::warn!(error = %err, "otlp http export failed");
        }
        Self { status: err.code().http_status(), body: codec::ingest_error_status(err), format, retry_after_secs: err.retry_after_secs() }
    }

    fn internal(message: String, format: Format) -> Self {
        tracing::warn!(error = %message, "otlp http export failed");
        Self::new(ErrorCode::Internal, message, format)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = self.body.encode(self.format);
        let mut response = (self.status, [(CONTENT_TYPE, self.format.content_type())], body).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
