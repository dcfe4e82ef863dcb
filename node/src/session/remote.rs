//! Sessions owned by other nodes. On a cluster, the ring decides which node
//! owns a session; the node that holds signals for a session it does not own
//! (ingest on a non-owner, a trace merged into a session owned elsewhere)
//! ships them to the owner through [`RemoteOwners`], and lets go of its own
//! copy only once the owner has them durably.

use futures::future::BoxFuture;
use ollystack_cluster::NodeId;

use crate::model::SessionKey;

/// The cluster as sessions and ingest see it. `None` in `SessionEnv` means a
/// node that owns everything.
pub trait RemoteOwners: Send + Sync + std::fmt::Debug + 'static {
    /// The session's owner, when that is another node.
    fn remote_owner(&self, key: &SessionKey) -> Option<NodeId>;

    /// Makes `entries` (encoded `WalEntry` records) durable on `owner`:
    /// resolves `Ok` only once the owner synced them to its WAL.
    fn ship(&self, owner: NodeId, entries: Vec<Vec<u8>>) -> BoxFuture<'static, Result<(), String>>;
}
