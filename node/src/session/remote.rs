//! Sessions owned by other nodes. On a cluster, the ring decides which node
//! owns a session; the node that holds signals for a session it does not own
//! (ingest on a non-owner, a trace merged into a session owned elsewhere)
//! ships them to the owner through [`RemoteOwners`], and lets go of its own
//! copy only once the owner has them durably.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use ollystack_cluster::NodeId;

use crate::model::SessionKey;

/// The cluster as sessions and ingest see it (see [`Remote`]).
pub trait RemoteOwners: Send + Sync + std::fmt::Debug + 'static {
    /// The session's owner, when that is another node.
    fn remote_owner(&self, key: &SessionKey) -> Option<NodeId>;

    /// Makes `entries` (encoded `WalEntry` records) durable on `owner`:
    /// resolves `Ok` only once the owner synced them to its WAL. `shipment`
    /// names this shipment for every retry of it (see
    /// `store::shipments`); 0 for none.
    fn ship(&self, owner: NodeId, shipment: u64, entries: Vec<Vec<u8>>) -> BoxFuture<'static, Result<(), ShipError>>;

    /// Whether `node` is still a member of the cluster (a node that left
    /// answers nothing any more).
    fn is_member(&self, _node: NodeId) -> bool {
        true
    }

    /// Whether a node that has left since reported taking this node's
    /// shipment `shipment` before it went (`store::shipments`): its data
    /// went on with that node's hand-over, and must not be sent again.
    fn delivered(&self, _shipment: u64) -> bool {
        false
    }

    /// Why this node must not take data as a session's owner or a trace's
    /// home right now (out of touch with the cluster), if it must not.
    fn fenced(&self, _now_ms: u64) -> Option<String> {
        None
    }
}

/// The cluster's say over this node's sessions: given at the node's
/// construction, heard once the WAL replay is over ([`Remote::open`]).
/// Until then every session is local: replay rebuilds the sessions of the
/// WAL here, and only then are the hand-offs a stop interrupted resumed and
/// sessions owned elsewhere shipped.
#[derive(Debug)]
pub struct Remote {
    owners: Arc<dyn RemoteOwners>,
    open: AtomicBool,
}

impl Remote {
    /// Closed: every session local until [`Self::open`].
    pub fn new(owners: Arc<dyn RemoteOwners>) -> Self {
        Self { owners, open: AtomicBool::new(false) }
    }

    /// From now on the cluster decides which sessions are owned elsewhere
    /// (once, after the WAL replay).
    pub fn open(&self) {
        self.open.store(true, Ordering::Release);
    }

    /// The owners of sessions, once open; `None` before: every session is
    /// local.
    pub fn get(&self) -> Option<&Arc<dyn RemoteOwners>> {
        self.open.load(Ordering::Acquire).then_some(&self.owners)
    }

    /// The session's owner when that is another node (once open).
    pub fn remote_owner(&self, key: &SessionKey) -> Option<(NodeId, Arc<dyn RemoteOwners>)> {
        let remote = self.get()?;
        remote.remote_owner(key).map(|n| (n, remote.clone()))
    }
}

/// Why a shipment did not complete.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ShipError {
    /// The owner answered that it has not taken this shipment and will not
    /// (it is off the ring): the data may go elsewhere. Otherwise the
    /// outcome is unknown (no answer, a lost answer, a retryable refusal):
    /// the owner may hold the data, so only the same shipment may be sent
    /// again, to the same owner.
    pub refused: bool,
    pub message: String,
}

/// The shipment ID of a session's data held under these WAL entries: the
/// same entries always give the same ID (a retry, or the same data
/// rebuilt by a replay after a crash), different entries a different one.
/// 0 (no ID) when there are none. Pure, and stable across builds.
pub fn shipment_id(wal_keys: &[u64]) -> u64 {
    let mut keys: Vec<u64> = wal_keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return 0;
    }
    let id = keys.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, k| mix(h ^ mix(*k)));
    id.max(1)
}

/// splitmix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::shipment_id;

    #[test]
    fn the_same_entries_give_the_same_shipment_id() {
        assert_eq!(shipment_id(&[3, 1, 2]), shipment_id(&[1, 2, 3, 3]));
        assert_ne!(shipment_id(&[1, 2, 3]), shipment_id(&[1, 2]));
        assert_ne!(shipment_id(&[1, 2]), 0);
        assert_eq!(shipment_id(&[]), 0);
    }
}
