//! [`ClusterError`]: every failure of this node's part in the cluster, and
//! the one place it becomes a gRPC status (through [`ErrorCode`]).

use std::sync::Arc;
use std::time::Duration;

use ollystack_cluster::NodeId;

use crate::error::ErrorCode;
use crate::ingest::IngestError;
use crate::query::QueryError;
use crate::store::StoreError;

/// A cluster operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    // The bare number (`node.0`), not the ID's display, in these texts.
    #[error("node {} is not a cluster member (or its address is unknown)", .0.0)]
    UnknownNode(NodeId),
    #[error("no leader is known yet; retry")]
    NoLeader,
    /// `node` is `NodeId(0)` where the node is not known (a seed address).
    #[error("node {} unreachable: {detail}", .node.0)]
    Unreachable { node: NodeId, detail: String },
    #[error("refused: {0}")]
    Refused(String),
    #[error("raft: {0}")]
    Raft(String),
    /// A peer answered a call with an error status.
    #[error("{node}: {message}")]
    Answered { node: NodeId, message: String },
    /// A peer did not answer within the RPC deadline.
    #[error("{node}: no answer within {after:?}")]
    NoAnswer { node: NodeId, after: Duration },
    /// A peer's answer held no answer (the text is its reason), or one that
    /// could not be read.
    #[error("{0}")]
    BadReply(String),
    /// A handed trace binding with a trace ID that is not 16 bytes.
    #[error("trace ID must be 16 bytes")]
    BadTraceId,
    /// This node's own part of a query failed.
    #[error(transparent)]
    Local(#[from] QueryError),
    /// This node's store failed while `doing`.
    #[error("{doing}: {source}")]
    Store { doing: &'static str, source: Arc<StoreError> },
    /// Ingest (here, or a forward to another node) failed while `doing`.
    #[error("{doing}: {source}")]
    Ingest { doing: String, source: IngestError },
    /// A leaving node's ring still makes it the home of traces: its
    /// bindings would leave with it.
    #[error("{node} is leaving but its ring (epoch {epoch}) still homes traces here; waiting for the newer ring")]
    LeavingHome { node: NodeId, epoch: u64 },
    /// The ring changed while trace bindings were on their way to `home`.
    #[error("the ring changed while sending trace bindings to {home}; sending again")]
    RingMoved { home: NodeId },
    /// A leaving node still owns sessions on the ring it has applied.
    #[error("{0} still owns sessions on its ring; the ring change has not reached it yet")]
    StillOwner(NodeId),
}

impl ClusterError {
    /// A store failure while `doing`.
    pub fn store(doing: &'static str) -> impl FnOnce(StoreError) -> Self {
        move |e| Self::Store { doing, source: Arc::new(e) }
    }

    /// An ingest failure while `doing`.
    pub fn ingest(doing: impl Into<String>) -> impl FnOnce(IngestError) -> Self {
        let doing = doing.into();
        move |source| Self::Ingest { doing, source }
    }

    /// What a peer or client is told went wrong.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Refused(_) => ErrorCode::PermissionDenied,
            Self::UnknownNode(_) => ErrorCode::NotFound,
            Self::BadTraceId => ErrorCode::BadRequest,
            _ => ErrorCode::Unavailable,
        }
    }
}

impl From<ClusterError> for tonic::Status {
    fn from(error: ClusterError) -> Self {
        let message = match &error {
            // The refusal's own words (a joining node shows them).
            ClusterError::Refused(m) => m.clone(),
            other => other.to_string(),
        };
        error.code().grpc_status(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_unreachable_nodes_are_named_by_number() {
        assert_eq!(ClusterError::UnknownNode(NodeId(5)).to_string(), "node 5 is not a cluster member (or its address is unknown)");
        let unreachable = |node| ClusterError::Unreachable { node, detail: "refused".into() }.to_string();
        assert_eq!(unreachable(NodeId(12)), "node 12 unreachable: refused");
        assert_eq!(unreachable(NodeId(0)), "node 0 unreachable: refused");
    }
}
