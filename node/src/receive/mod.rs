//! OTLP receivers: the gRPC and HTTP front ends of a node.
//!
//! Both receivers do the same things, in this order, and nothing else:
//!
//! 1. read the body within bounds (`body`: size, a 30 s deadline, and a
//!    byte budget shared by every body being read);
//! 2. admit the request or shed it (a per-receiver bound on requests in
//!    flight, never a queue: OTLP clients retry 503/UNAVAILABLE), then
//!    charge the node's memory budget for decoding it (`memory`: 429 /
//!    RESOURCE_EXHAUSTED beyond);
//! 3. decode the body with bounded memory (`codec`: size limits also apply
//!    after gzip decompression, so a zip bomb costs at most the limit),
//!    unless the sink routes it whole, as it came, to another node
//!    (`IngestSink::route_encoded`: a cluster node that is not the home of
//!    any of its traces);
//! 4. hand the decoded request to the [`IngestSink`], which resolves once the
//!    accepted part is durable;
//! 5. answer in OTLP terms: `partial_success` when some items were rejected,
//!    otherwise an error status whose code tells the client whether to retry.
//!
//! * `signal`: what differs between traces, logs and metrics (one trait, so
//!   the export path is written once).
//! * `codec`: pure body decoding and response/error encoding.
//! * `grpc`: the tonic server and its admission layer.
//! * `grpc_export`: the export services, taking messages encoded so a
//!   request routed whole to another node is never decoded here.
//! * `http`: axum routes.
//!
//! [`IngestSink`]: crate::ingest::IngestSink

mod body;
mod codec;
mod grpc;
mod grpc_export;
mod http;
pub mod memory;
mod signal;

#[cfg(test)]
mod tests;

pub use grpc::serve_grpc;
pub use http::{http_router, reject_http};
pub use memory::RequestMemory;

/// Limits of the receivers. Every request is bounded in size and in number.
#[derive(Debug, Clone)]
pub struct ReceiverLimits {
    /// Largest request body accepted, both as sent and after decompression.
    /// HTTP answers 413 beyond it; gRPC answers OUT_OF_RANGE (declared message
    /// length) or RESOURCE_EXHAUSTED (decompressed length), as tonic does.
    pub max_request_bytes: usize,
    /// Requests in flight per receiver (decoding or waiting on the sink).
    /// Beyond it HTTP answers 503 + `Retry-After` and gRPC UNAVAILABLE, both
    /// retryable in OTLP. Both take the slot once the body is in (bodies
    /// being read are bounded by bytes received: 16 × `max_request_bytes`
    /// per receiver, and must arrive within 30 s).
    pub max_concurrent_requests: usize,
    /// The node's memory budget, charged before a request is decoded
    /// ([`memory`]).
    pub memory: RequestMemory,
}

impl ReceiverLimits {
    /// Default `max_request_bytes`: 16 MiB, well above what SDK batch
    /// exporters send (512 spans per batch by default).
    pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
    /// Default `max_concurrent_requests`.
    pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;

    /// A semaphore of `max_concurrent_requests` permits. The count is clamped
    /// to what tokio supports (`Semaphore::new` panics beyond it).
    fn admission(&self) -> std::sync::Arc<tokio::sync::Semaphore> {
        let permits = self.max_concurrent_requests.min(tokio::sync::Semaphore::MAX_PERMITS);
        std::sync::Arc::new(tokio::sync::Semaphore::new(permits))
    }
}

impl Default for ReceiverLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: Self::DEFAULT_MAX_REQUEST_BYTES,
            max_concurrent_requests: Self::DEFAULT_MAX_CONCURRENT_REQUESTS,
            memory: RequestMemory::default(),
        }
    }
}

/// A receiver stopped because of a transport failure (not a request error:
/// those are answered to the client and never end the server).
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The gRPC server failed (listener or HTTP/2 transport).
    #[error("otlp grpc server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
}
