//! The Raft types the node codes against: the type config, the requests the
//! log carries and their responses, and the view the node reads.

use std::io::Cursor;
use std::sync::Arc;

use openraft::{LogId, StoredMembership};

use crate::admission::{Command, LimiterConfig, Response};
use crate::ring::{Member, Ring};

/// A Raft node ID: the [`crate::NodeId`]'s number.
pub type RaftId = u64;

/// What the cluster knows about a node: openraft's `Node` type, stored in
/// the membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    /// Where the node's cluster (Raft and forwarding) gRPC service listens.
    pub cluster_addr: String,
    /// Where the node's HTTP API listens, for redirects and `members`.
    pub api_addr: String,
    /// The node's ring weight, 1..=[`crate::ring::MAX_WEIGHT`].
    pub weight: u32,
    /// The name in the node's TLS certificate (see `net::tls`): calls on
    /// the cluster port are served to members by it. Empty without TLS.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity: String,
}

openraft::declare_raft_types!(
    /// The cluster's Raft type config.
    pub TypeConfig:
        D = ClusterRequest,
        R = ClusterResponse,
        NodeId = RaftId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = super::runtime::Runtime,
);

pub type Raft = openraft::Raft<TypeConfig>;

/// A change to the replicated cluster state, carried by the Raft log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClusterRequest {
    /// Ring members (node, weight). Applied: if the member set or a weight
    /// differs from the current ring's, the ring is rebuilt at epoch + 1 (the
    /// first ring has epoch 1); otherwise nothing changes (idempotent). An
    /// empty or invalid list is refused.
    SetRing { members: Vec<Member> },
    /// The cluster's cardinality limits. Applied only when the state has no
    /// limiter config yet, or the same one (idempotent); a different one is
    /// not accepted: changing limits at runtime could exceed N, and is not
    /// supported yet.
    SetLimits { config: LimiterConfig },
    /// A cardinality-limiter command (lease, report, expire), applied by
    /// [`crate::admission::LimiterState::apply`]; refused before `SetLimits`.
    Limiter(Command),
}

/// What applying a log entry did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClusterResponse {
    /// The ring's epoch after a `SetRing` (unchanged when nothing changed).
    Ring {
        epoch: u64,
    },
    /// Whether a `SetLimits` config is the cluster's config now.
    Limits {
        accepted: bool,
    },
    Limiter(Response),
    /// The request changed nothing, and why.
    Refused(String),
    /// The entry carried no request: a blank entry (a new leader's first) or
    /// a membership change.
    Empty,
}

/// What the node reads: published (a `tokio::sync::watch`) after every apply
/// and snapshot install.
#[derive(Clone, Debug)]
pub struct ClusterView {
    pub last_applied: Option<LogId<RaftId>>,
    pub membership: StoredMembership<RaftId, NodeInfo>,
    /// `None` until the first `SetRing`. Shared, so a view is cheap to clone
    /// and publish even when the ring has hundreds of thousands of tokens.
    pub ring: Option<Arc<Ring>>,
    /// `None` until the first `SetLimits`.
    pub limits: Option<LimiterConfig>,
}
