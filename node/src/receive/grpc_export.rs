//! The OTLP/gRPC export services, one generic server for the three
//! signals. It does what the servers `opentelemetry-proto` generates do
//! (same paths, gzip both ways, the same size bound, and a body that does
//! not decode answered INTERNAL, as their prost codec answers), with one
//! difference: tonic hands the message over encoded, so a request the sink
//! routes whole to another node ([`IngestSink::route_encoded`]) is sent on
//! as it came, never decoded here.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::codegen::{http, Body, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::codec;
use super::signal::Signal;
use crate::access::layer::PinTenant;
use crate::access::pin::Pinnable;
use crate::ingest::{IngestError, IngestSink};

/// The export service of signal `G` (`…Service/Export`), for any sink.
pub(super) struct ExportServer<G, S> {
    sink: Arc<S>,
    /// Largest message taken, after decompression.
    max_bytes: usize,
    _signal: PhantomData<fn() -> G>,
}

impl<G, S> ExportServer<G, S> {
    pub(super) fn new(sink: Arc<S>, max_bytes: usize) -> Self {
        Self { sink, max_bytes, _signal: PhantomData }
    }
}

impl<G, S> Clone for ExportServer<G, S> {
    fn clone(&self) -> Self {
        Self { sink: Arc::clone(&self.sink), max_bytes: self.max_bytes, _signal: PhantomData }
    }
}

impl<G: Signal, S> NamedService for ExportServer<G, S> {
    const NAME: &'static str = G::SERVICE_NAME;
}

impl<G: Signal, S: IngestSink, B> tower::Service<http::Request<B>> for ExportServer<G, S>
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != G::EXPORT_PATH {
            // As the generated servers answer an unknown method.
            return Box::pin(async { Ok(Status::unimplemented("").into_http()) });
        }
        let this = self.clone();
        Box::pin(async move {
            let gzip = CompressionEncoding::Gzip;
            let mut grpc = Grpc::new(EncodedCodec::<G::Response>(PhantomData))
                .accept_compressed(gzip)
                .send_compressed(gzip)
                .max_decoding_message_size(this.max_bytes);
            Ok(grpc.unary(Export::<G, S> { sink: this.sink, _signal: PhantomData }, request).await)
        })
    }
}

/// One export call, its message still encoded.
struct Export<G, S> {
    sink: Arc<S>,
    _signal: PhantomData<fn() -> G>,
}

impl<G: Signal, S: IngestSink> UnaryService<Bytes> for Export<G, S> {
    type Response = G::Response;
    type Future = BoxFuture<'static, Result<Response<G::Response>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let sink = Arc::clone(&self.sink);
        Box::pin(async move {
            // A tenant-pinned request is changed before ingest: decoded here.
            let routable = request.extensions().get::<PinTenant>().is_none();
            if let (true, Some(kind)) = (routable, G::KIND) {
                if let Some(route) = sink.route_encoded(kind, request.get_ref()) {
                    return match sink.forward_encoded(kind, route, request.into_inner()).await {
                        Ok(accepted) => Ok(Response::new(G::response(&accepted))),
                        Err(err) => Err(ingest_error_status(&err)),
                    };
                }
            }
            let (metadata, extensions, body) = request.into_parts();
            let message = G::Request::decode(body).map_err(|e| Status::internal(e.to_string()))?;
            export::<G, S>(&*sink, Request::from_parts(metadata, extensions, message)).await
        })
    }
}

/// Responses encoded by prost; requests left encoded (the whole message).
struct EncodedCodec<R>(PhantomData<fn() -> R>);

impl<R: Message + Send + 'static> Codec for EncodedCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = tonic_prost::ProstEncoder<R>;
    type Decoder = Encoded;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Encoded
    }
}

/// Takes a message's bytes as they are.
struct Encoded;

impl Decoder for Encoded {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}

/// The export path shared by the three services.
pub(super) async fn export<G: Signal, S: IngestSink>(sink: &S, request: Request<G::Request>) -> Result<Response<G::Response>, Status> {
    let pin = request.extensions().get::<PinTenant>().cloned();
    let mut request = request.into_inner();
    if let Some(pin) = &pin {
        request.pin_tenant(pin);
    }
    match G::ingest(sink, request).await {
        Ok(accepted) => Ok(Response::new(G::response(&accepted))),
        Err(err) => Err(ingest_error_status(&err)),
    }
}

/// The gRPC status of a refused batch; `Overloaded` carries a RetryInfo in
/// the status details so that OTLP clients retry RESOURCE_EXHAUSTED.
pub(super) fn ingest_error_status(err: &IngestError) -> Status {
    if matches!(err, IngestError::Internal(_)) {
        tracing::warn!(error = %err, "otlp grpc export failed");
    }
    let rpc_status = codec::ingest_error_status(err);
    let code = err.code().grpc_code();
    if rpc_status.details.is_empty() {
        err.code().grpc_status(rpc_status.message)
    } else {
        let details = Bytes::from(rpc_status.encode_to_vec());
        Status::with_details(code, rpc_status.message, details)
    }
}
