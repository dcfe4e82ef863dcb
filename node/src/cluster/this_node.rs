//! [`Cluster`]: what the rest of the node asks of the cluster — the ring
//! (owner of a session), this node's identity, channels to peers, and
//! proposals through the leader.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ollystack_cluster::net::{auth, SharedTransport, Trust};
use ollystack_cluster::raft::{ClusterRequest, ClusterResponse, ClusterView, NodeInfo, Raft, RaftId};
use ollystack_cluster::ring::{KeyHash, Ring};
use ollystack_cluster::NodeId;
use ollystack_proto::cluster::cluster_client::ClusterClient;
use ollystack_proto::cluster::ProposeRequest;
use parking_lot::Mutex;
use tokio::sync::watch;
use tonic::transport::Channel;

use super::ClusterError;
use crate::config::ClusterSettings;
use crate::model::{CorrelationId, TenantId};

/// This node's view of the cluster. Cheap to share (`Arc`).
pub struct Cluster {
    pub id: NodeId,
    pub raft: Raft,
    pub settings: ClusterSettings,
    /// This node's entry in the membership.
    pub info: NodeInfo,
    view: watch::Receiver<Arc<ClusterView>>,
    /// Channels to peers by ID, with the address they were made for. At
    /// most one per member.
    channels: Mutex<BTreeMap<NodeId, (String, Channel)>>,
    /// How this node reaches its peers.
    pub transport: SharedTransport,
    /// Set once this node completed `leave` (a removed node may never
    /// apply the entry that removed it, so it is told here).
    left: watch::Sender<bool>,
    /// Latched once this process has heard from a leader and applied its
    /// whole log (see [`Cluster::caught_up`]).
    synced: std::sync::atomic::AtomicBool,
    /// Trace bindings this node holds for traces homed elsewhere may not
    /// have reached their homes yet (set by `binding_sync::follow_ring`): a
    /// signal sent by trace alone to its home meanwhile sits in a derived
    /// session apart from its request's, so session answers say partial.
    bindings_pending: std::sync::atomic::AtomicBool,
    /// When (this node's clock, ms) it last had proof the leader was alive;
    /// 0: never. See [`Cluster::fenced`].
    leader_contact_ms: std::sync::atomic::AtomicU64,
    /// Set once this node began to leave: from then on it takes no data (a new
    /// leader may not know of the leave and put it back on the ring; data taken
    /// after the leave drained went with the node).
    leaving: std::sync::atomic::AtomicBool,
    /// Woken when trace bindings may sit here for traces homed elsewhere
    /// (sent by a node on another ring epoch, or made for a signal routed
    /// under one): `binding_sync::follow_ring` then runs a pass.
    pub(super) astray: tokio::sync::Notify,
    /// How many times [`Self::bindings_astray`] was called: a pass that
    /// began before the last call does not clear `bindings_pending`.
    astray_notices: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Cluster {
    pub fn new(
        id: NodeId,
        raft: Raft,
        settings: ClusterSettings,
        info: NodeInfo,
        view: watch::Receiver<Arc<ClusterView>>,
        transport: SharedTransport,
    ) -> Self {
        Self {
            id,
            raft,
            settings,
            info,
            view,
            transport,
            channels: Mutex::new(BTreeMap::new()),
            left: watch::Sender::new(false),
            synced: std::sync::atomic::AtomicBool::new(false),
            bindings_pending: std::sync::atomic::AtomicBool::new(false),
            leader_contact_ms: std::sync::atomic::AtomicU64::new(0),
            leaving: std::sync::atomic::AtomicBool::new(false),
            astray: tokio::sync::Notify::new(),
            astray_notices: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The applied cluster state.
    pub fn view(&self) -> Arc<ClusterView> {
        self.view.borrow().clone()
    }

    /// A receiver that changes with every applied entry.
    pub fn watch(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.view.clone()
    }

    /// Records that this node began to leave (see [`Self::fenced`]).
    pub fn mark_leaving(&self) {
        self.leaving.store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_leaving(&self) -> bool {
        self.leaving.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records that this node left the cluster.
    pub fn mark_left(&self) {
        self.left.send_replace(true);
    }

    /// Resolves once this node left the cluster (`leave`).
    pub async fn has_left(&self) {
        let mut rx = self.left.subscribe();
        if rx.wait_for(|left| *left).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The current ring (`None` before the first one is applied).
    pub fn ring(&self) -> Option<Arc<Ring>> {
        self.view.borrow().ring.clone()
    }

    pub fn ring_epoch(&self) -> u64 {
        self.ring().map_or(0, |r| r.epoch())
    }

    /// The node that owns a session; this node while no ring exists yet.
    pub fn owner(&self, tenant: &TenantId, id: &CorrelationId) -> NodeId {
        self.ring().map_or(self.id, |r| r.owner(KeyHash::of(tenant.as_str(), id.as_str())))
    }

    /// Whether this node is on its applied ring (true before the first
    /// ring: a lone node owns everything).
    pub fn on_ring(&self) -> bool {
        self.ring().is_none_or(|r| r.members().any(|m| m.id == self.id))
    }

    /// Every ring member (this node included).
    pub fn ring_members(&self) -> Vec<NodeId> {
        self.ring().map(|r| r.members().map(|m| m.id).collect()).unwrap_or_else(|| vec![self.id])
    }

    /// Whether this node's view of who holds what can be trusted for answers: it
    /// has applied the membership that includes it, and since this process started
    /// it has heard from a leader and applied its whole log. A node that just
    /// joined serves before the first; a node that restarted re-applies only what
    /// it had persisted as committed, a view that may be minutes old, until a
    /// leader brings it up to date.
    pub fn caught_up(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.view.borrow().membership.membership().get_node(&self.id.0).is_none() {
            return false;
        }
        self.synced.load(Ordering::Acquire)
    }

    /// Watches Raft until this node has heard from a leader and applied its
    /// whole log, then latches [`Self::caught_up`]. Runs once per process,
    /// until then or until `stop`.
    pub async fn track_sync(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut metrics = self.raft.metrics();
        loop {
            let synced = {
                let m = metrics.borrow_and_update();
                synced_with_leader(m.current_leader, m.last_applied.map(|l| l.index), m.last_log_index)
            };
            if synced {
                self.synced.store(true, std::sync::atomic::Ordering::Release);
                return;
            }
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// `node` answered a probe sent at `sent_ms`: if it leads, this node
    /// was in touch with the cluster then.
    pub fn note_contact(&self, node: NodeId, sent_ms: u64) {
        if self.leader() == Some(node) {
            self.leader_contact_ms.fetch_max(sent_ms, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// Why this node must not take data as an owner or a trace home right
    /// now, if it must not: it has been out of touch with the leader (or,
    /// leading, with a quorum) long enough that it may be off the ring
    /// without knowing (`ollystack_cluster::health::lease_lapsed`).
    pub fn fenced(&self, now_ms: u64) -> Option<String> {
        if self.is_leaving() {
            return Some(format!("{} is leaving the cluster; send to another node", self.id));
        }
        let (is_leader, since_quorum_ack_ms, sole_voter) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let voters = m.membership_config.membership().voter_ids().count();
            (m.current_leader == Some(self.id.0) && m.state.is_leader(), m.millis_since_quorum_ack, voters <= 1)
        };
        let contact = self.leader_contact_ms.load(std::sync::atomic::Ordering::Acquire);
        let standing = ollystack_cluster::health::Standing {
            sole_voter,
            is_leader,
            since_quorum_ack_ms,
            leader_contact_ms: (contact > 0).then_some(contact),
        };
        let lapsed = ollystack_cluster::health::lease_lapsed(standing, now_ms, self.settings.failure_timeout_ms)?;
        Some(match lapsed {
            u64::MAX => format!("{} has not been in touch with the cluster's leader yet; retry", self.id),
            ms => format!("{} has been out of touch with the cluster for {ms} ms and may no longer own this data; retry", self.id),
        })
    }

    /// Bindings may have been made here for traces homed elsewhere (a
    /// signal routed under another ring): answers say partial from now on,
    /// until `follow_ring` has sent them home.
    pub fn bindings_astray(&self) {
        self.astray_notices.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.set_bindings_pending(true);
        self.astray.notify_one();
    }

    /// Astray notices so far (see [`Self::bindings_astray`]).
    pub fn astray_notices(&self) -> u64 {
        self.astray_notices.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records whether trace bindings held here may still be on their way
    /// to their homes.
    pub fn set_bindings_pending(&self, pending: bool) {
        self.bindings_pending.store(pending, std::sync::atomic::Ordering::Release);
    }

    /// Why a session answer from this node may miss signals sent by trace
    /// alone, if it may: trace bindings still moving to their homes.
    pub fn bindings_in_flight(&self) -> Option<String> {
        self.bindings_pending
            .load(std::sync::atomic::Ordering::Acquire)
            .then(|| format!("{} is still sending trace bindings to their homes (ring epoch {})", self.id, self.ring_epoch()))
    }

    /// Log index of the membership this node has applied (the one
    /// [`Self::all_members`] reads).
    pub fn applied_membership_index(&self) -> u64 {
        self.view.borrow().membership.log_id().map_or(0, |l| l.index)
    }

    /// Log index of the newest membership in this node's log, applied or
    /// not.
    pub fn known_membership_index(&self) -> u64 {
        self.raft.metrics().borrow().membership_config.log_id().map_or(0, |l| l.index)
    }

    /// Every node of the Raft membership, on the ring or not: a node the
    /// failure detector took off the ring may still hold sessions.
    pub fn all_members(&self) -> Vec<NodeId> {
        let view = self.view.borrow();
        let nodes: Vec<NodeId> = view.membership.membership().nodes().map(|(id, _)| NodeId(*id)).collect();
        if nodes.is_empty() {
            vec![self.id]
        } else {
            nodes
        }
    }

    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.rpc_timeout_ms)
    }

    /// Where a member listens, from the membership.
    pub fn node_info(&self, node: NodeId) -> Option<NodeInfo> {
        self.view.borrow().membership.membership().get_node(&node.0).cloned()
    }

    /// A client for a peer's cluster service.
    pub fn client(&self, node: NodeId) -> Result<ClusterClient<Channel>, ClusterError> {
        let info = self.node_info(node).ok_or(ClusterError::UnknownNode(node))?;
        let mut channels = self.channels.lock();
        if let Some((addr, ch)) = channels.get(&node) {
            if *addr == info.cluster_addr {
                return Ok(client(ch.clone()));
            }
        }
        let ch = ollystack_cluster::net::channel(&info.cluster_addr, &self.transport)
            .map_err(|e| ClusterError::Unreachable { node, detail: e.to_string() })?;
        channels.insert(node, (info.cluster_addr.clone(), ch.clone()));
        Ok(client(ch))
    }

    /// The leader, as this node last heard.
    pub fn leader(&self) -> Option<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        match m.current_leader {
            // openraft names this node leader after a restart that found its own committed
            // vote, before it knows whether it still leads: a leaving leader that crashed,
            // was removed by the others meanwhile and came back as a learner took leave
            // steps as leader forever.
            Some(leader) if leader == self.id.0 && m.state != openraft::ServerState::Leader => None,
            leader => leader.map(NodeId),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.id)
    }

    /// How the cluster port authorizes callers: by certificate with TLS.
    pub fn trust(&self) -> Trust {
        if self.settings.tls.is_some() {
            Trust::Tls
        } else {
            Trust::Insecure
        }
    }

    /// Refuses a members-only call from anyone else (see
    /// `ollystack_cluster::net::auth`).
    pub fn require_member<T>(&self, request: &tonic::Request<T>) -> Result<(), tonic::Status> {
        let view = self.view();
        let identities: Vec<&str> = view.membership.membership().nodes().map(|(_, n)| n.identity.as_str()).collect();
        auth::require_member(self.trust(), request, (!identities.is_empty()).then_some(identities.as_slice()))
    }

    /// Whether the caller of `request` is a member (always, without TLS).
    pub fn caller_is_member<T>(&self, request: &tonic::Request<T>) -> bool {
        self.require_member(request).is_ok()
    }

    /// Proposes a state-machine command: applied here when this node leads,
    /// else passed to the leader. Resolves once the entry is committed and
    /// applied (on the leader).
    pub async fn propose(&self, request: ClusterRequest) -> Result<ClusterResponse, ClusterError> {
        match self.leader() {
            None => Err(ClusterError::NoLeader),
            Some(leader) if leader == self.id => {
                self.raft.client_write(request).await.map(|r| r.data).map_err(|e| ClusterError::Raft(e.to_string()))
            }
            Some(leader) => {
                let json = serde_json::to_vec(&request).map_err(|e| ClusterError::Raft(e.to_string()))?;
                let mut req = tonic::Request::new(ProposeRequest { json });
                req.set_timeout(self.rpc_timeout());
                let reply = self
                    .client(leader)?
                    .propose(req)
                    .await
                    .map_err(|s| ClusterError::Unreachable { node: leader, detail: s.message().to_owned() })?;
                serde_json::from_slice(&reply.into_inner().json).map_err(|e| ClusterError::Raft(e.to_string()))
            }
        }
    }
}

/// Message size limit of node-to-node calls (forwarded batches, session
/// data); the OTLP receivers accept at most 16 MiB by default.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

pub fn client(channel: Channel) -> ClusterClient<Channel> {
    ClusterClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Whether a node has caught up with the cluster: it knows a leader and has
/// applied every entry of its log (which a leader's first heartbeat commits
/// or truncates).
fn synced_with_leader(leader: Option<RaftId>, last_applied: Option<u64>, last_log: Option<u64>) -> bool {
    leader.is_some() && last_applied >= last_log
}

#[cfg(test)]
mod sync_tests {
    use super::synced_with_leader;

    #[test]
    fn caught_up_needs_a_leader_and_the_whole_log_applied() {
        assert!(!synced_with_leader(None, Some(9), Some(9)), "no leader heard yet");
        assert!(!synced_with_leader(Some(1), Some(7), Some(9)), "entries left to apply");
        assert!(synced_with_leader(Some(1), Some(9), Some(9)));
        assert!(synced_with_leader(Some(1), None, None), "an empty log");
    }
}
