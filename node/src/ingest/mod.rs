//! Ingest: turn an OTLP export request into durable, correlated session
//! input.
//!
//! * `prepare`: OTLP request → signals with their correlation-ID
//!   candidates, attributes migrated, bounded as the OTel SDKs bound them
//!   (`attr_limits`: counts, value lengths) and cardinality-limited
//!   (`limit`).
//! * `assign` (pure): signals → per-session groups, every correlation ID
//!   resolved.
//! * `pipeline`: the [`Ingestor`] that checks the memory budget, writes the
//!   groups to the WAL, and only then hands them to the session actors.
//! * `pipeline/bindings`: trace bindings other nodes send (they follow
//!   their trace's home), applied and merged
//!   ([`Ingestor::receive_bindings`]).
//!
//! Receivers (`receive/`) only see the [`IngestSink`] trait.

use std::future::Future;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::error::ErrorCode;

/// A batch was accepted (durable in the WAL). Some items may still have been
/// rejected individually: OTLP reports those as `partial_success`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Items (spans, log records or data points) rejected; 0 when all passed.
    pub rejected_items: u64,
    /// Why items were rejected (empty when none were).
    pub error_message: String,
}

/// The whole batch was refused; nothing of it was kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// Over the memory budget or a bound, or waiting for quota. OTLP
    /// clients retry.
    #[error("{reason}; retry in {retry_after_ms} ms")]
    Overloaded { reason: Overload, retry_after_ms: u64 },
    /// The batch cannot be decoded or is invalid as a whole.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Not serving (shutting down, WAL unavailable).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Storage failed while writing the batch.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a batch was refused as [`IngestError::Overloaded`]: what an operator
/// reads in the client's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Overload {
    #[error("node over its memory budget")]
    MemoryBudget,
    /// Unsettled WAL bytes past `storage.wal_max_bytes`: the store is behind.
    #[error("write-ahead log over its bound (storage is behind)")]
    WalBacklog,
    /// As many live sessions as `session.max_live_sessions` allows.
    #[error("node at its bound of {max} live sessions")]
    LiveSessions { max: u64 },
    /// A new value of a limited attribute, and no quota leased yet.
    #[error("no cardinality-limit quota for a new `{attribute}` value yet")]
    LimitQuota { attribute: String },
    /// The session owner refused the forwarded batch; its reason.
    #[error("session owner overloaded: {0}")]
    Owner(String),
}

impl IngestError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Overloaded { .. } => ErrorCode::ResourceExhausted,
            Self::Invalid(_) => ErrorCode::BadRequest,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Seconds an HTTP client should wait (`Retry-After`), when retryable.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Overloaded { retry_after_ms, .. } => Some(retry_after_ms.div_ceil(1000).max(1)),
            Self::Unavailable(_) => Some(1),
            _ => None,
        }
    }
}

/// Where receivers hand decoded OTLP requests. The future resolves only when
/// the accepted part is durable (WAL) — that is when the sender may be
/// acknowledged.
pub trait IngestSink: Send + Sync + 'static {
    fn traces(&self, request: ExportTraceServiceRequest) -> impl Future<Output = Result<Accepted, IngestError>> + Send;
    fn logs(&self, request: ExportLogsServiceRequest) -> impl Future<Output = Result<Accepted, IngestError>> + Send;
    fn metrics(&self, request: ExportMetricsServiceRequest) -> impl Future<Output = Result<Accepted, IngestError>> + Send;

    /// Where this sink would send an encoded (protobuf) request whole,
    /// without decoding it here: `Some` only when all of it belongs on one
    /// other node (a cluster node that is not the request's trace home).
    /// CPU work on the body: receivers run it where they would decode it.
    /// `None`: decode the request and hand it to the signal's method.
    fn route_encoded(&self, _signal: SignalKind, _body: &[u8]) -> Option<WholeRoute> {
        None
    }

    /// Sends an encoded request where [`Self::route_encoded`] said. The node
    /// there decodes it, and refuses a body it cannot decode as invalid,
    /// whole. Only a sink that routes can be asked (it alone makes routes).
    fn forward_encoded(
        &self,
        signal: SignalKind,
        route: WholeRoute,
        body: bytes::Bytes,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        let message = format!("this sink routes nothing encoded ({signal:?} of {} bytes for {})", body.len(), route.node);
        async move { Err(IngestError::Internal(message)) }
    }
}

/// The OTLP signals whose encoded requests a sink may route undecoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    Traces,
    Logs,
}

/// Where an encoded request goes whole ([`IngestSink::route_encoded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeRoute {
    /// The node every item of the request belongs on.
    pub node: ollystack_cluster::NodeId,
    /// The ring epoch the node was chosen under (the forward names it).
    pub ring_epoch: u64,
}

mod assign;
pub mod attr_limits;
pub mod limit;
mod pipeline;
pub mod prepare;
mod replay;

pub use attr_limits::{AttrLimits, Trimmed};
pub use limit::{AttributeLimiter, NoLimits, Verdict};
pub use pipeline::{IngestHandle, Ingestor, SentBinding};
pub use replay::{replay_wal, ResumedHandOffs};
