//! The identity of a cluster node.

use std::fmt;

/// A node's identity in the cluster: the Raft node ID, fixed when the node
/// first joins and kept in its data dir, so it survives restarts and address
/// changes. Ring placement is derived from it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node-{}", self.0)
    }
}
