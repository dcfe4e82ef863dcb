//! Membership: join, leave and `members`, the leader's ring upkeep, and
//! the probes that feed failure detection.
//!
//! * Join: any member may receive it; it checks the join token and passes
//!   the request to the leader, which adds the node as a learner (waiting
//!   until it caught up), promotes it to voter, then proposes the ring with
//!   it (an epoch bump).
//! * Leave: run by the leaving node. The leader takes it off the ring (an
//!   epoch bump, so its sessions get new owners); the node waits until its
//!   handoff sweep shipped every live session; then the leader removes it
//!   from the voters and the membership, and the node stops.
//! * Upkeep (every heartbeat interval, on every node): probe every member
//!   with a `Members` call under the RPC deadline and record answers in the
//!   [`FailureDetector`]; on the leader, propose [`desired_ring`] when it
//!   differs from the applied ring. So a node silent for the failure timeout
//!   leaves the ring by a Raft decision and comes back when it answers again.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ollystack_cluster::health::{desired_ring, Candidate, FailureDetector, Health};
use ollystack_cluster::net::SharedTransport;
use ollystack_cluster::raft::{ClusterRequest, ClusterResponse, NodeInfo};
use ollystack_cluster::ring::Member;
use ollystack_cluster::NodeId;
use ollystack_proto::cluster as pb;
use openraft::ChangeMembers;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::this_node::client;
use super::{Cluster, ClusterError};
use crate::clock::SharedClock;

/// Join, leave, members and upkeep for one node.
pub struct Membership {
    pub cluster: Arc<Cluster>,
    clock: SharedClock,
    detector: Mutex<FailureDetector>,
    /// Nodes being drained by a leave on this (leading) node; kept off the
    /// ring by upkeep meanwhile.
    leaving: Mutex<BTreeSet<NodeId>>,
    /// Serializes membership changes made by this node.
    changes: tokio::sync::Mutex<()>,
    /// True once this node holds no live session (see `leave`).
    drained: DrainedCheck,
    /// Moves the finished segments only this node holds (see `leave`);
    /// `None`: a leave moves none (a simulation's deliberate bug).
    hand_over: Option<HandOver>,
}

/// Moves the finished segments only this node holds to their owners;
/// resolves to how many moved.
pub type HandOver = Box<dyn Fn() -> futures::future::BoxFuture<'static, Result<u64, ClusterError>> + Send + Sync>;

/// Resolves to true when the node holds no live session.
pub type DrainedCheck = Box<dyn Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// Leave steps run by the leader (`LeaveRequest.phase`).
const LEAVE_OFF_RING: u32 = 1;
const LEAVE_REMOVE: u32 = 2;
/// How long a leaving node waits for its live sessions to move.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);
/// Failed hand-over runs in a row (1 s apart) before a leave gives up.
const HAND_OVER_ATTEMPTS: u32 = 20;

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membership").field("node", &self.cluster.id).finish_non_exhaustive()
    }
}

/// Constant-time comparison, so a wrong token's timing tells nothing.
fn token_matches(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

impl Membership {
    /// `drained` and `hand_over` are how a leave of this node waits for its
    /// live sessions to move and moves its finished segments.
    pub fn new(cluster: Arc<Cluster>, clock: SharedClock, drained: DrainedCheck, hand_over: Option<HandOver>) -> Self {
        let now = clock.now_unix_ms();
        let detector = FailureDetector::new(cluster.settings.failure_timeout_ms, now);
        Self {
            cluster,
            clock,
            detector: Mutex::new(detector),
            leaving: Mutex::new(BTreeSet::new()),
            changes: tokio::sync::Mutex::new(()),
            drained,
            hand_over,
        }
    }

    fn check_token(&self, token: &str) -> Result<(), ClusterError> {
        let expected = &self.cluster.settings.join_token;
        if expected.is_empty() {
            return Err(ClusterError::Refused(format!(
                "{} accepts no joins: no cluster.join_token is configured (set --cluster-join-token on every node)",
                self.cluster.id
            )));
        }
        if !token_matches(token, expected.expose()) {
            return Err(ClusterError::Refused("wrong join token: the token must equal the cluster's cluster.join_token".into()));
        }
        Ok(())
    }

    fn leader_client(&self) -> Result<(NodeId, pb::cluster_client::ClusterClient<tonic::transport::Channel>), ClusterError> {
        let leader = self.cluster.leader().ok_or(ClusterError::NoLeader)?;
        Ok((leader, self.cluster.client(leader)?))
    }

    /// Adds a node (learner, then voter, then on the ring). Idempotent.
    pub async fn join(&self, req: pb::JoinRequest) -> Result<pb::JoinReply, ClusterError> {
        self.check_token(&req.token)?;
        if !self.cluster.is_leader() {
            let (leader, mut c) = self.leader_client()?;
            let mut r = tonic::Request::new(req);
            r.set_timeout(self.cluster.rpc_timeout() * 10);
            return c.join(r).await.map(|r| r.into_inner()).map_err(|s| status_error(leader, s));
        }
        let node = NodeId(req.node_id);
        let info = NodeInfo { cluster_addr: req.cluster_addr, api_addr: req.api_addr, weight: req.weight.max(1), identity: req.identity };
        let _guard = self.changes.lock().await;
        let view = self.cluster.view();
        let membership = view.membership.membership();
        let known = membership.get_node(&node.0) == Some(&info);
        let voter = membership.voter_ids().any(|v| v == node.0);
        if !known {
            self.cluster.raft.add_learner(node.0, info, true).await.map_err(|e| ClusterError::Raft(e.to_string()))?;
        }
        if !voter {
            self.cluster
                .raft
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node.0])), false)
                .await
                .map_err(|e| ClusterError::Raft(e.to_string()))?;
        }
        self.detector.lock().heard(node, self.clock.now_unix_ms());
        let epoch = self.reconcile_ring().await?;
        tracing::info!(%node, ring_epoch = epoch, "node joined");
        Ok(pb::JoinReply { leader_id: self.cluster.id.0, ring_epoch: epoch })
    }

    /// Leaves the cluster: the leaving node asks the leader to take it off
    /// the ring, waits (bounded) until its live sessions were handed to
    /// their new owners, then asks to be removed from the membership.
    pub async fn leave(&self, req: pb::LeaveRequest) -> Result<pb::LeaveReply, ClusterError> {
        self.check_token(&req.token)?;
        let node = if req.node_id == 0 { self.cluster.id } else { NodeId(req.node_id) };
        match req.phase {
            0 if node == self.cluster.id => self.drain_and_leave(&req.token).await,
            0 => Err(ClusterError::Refused(format!("ask {node} itself to leave; {} cannot drain it", self.cluster.id))),
            phase => self.leader_step(node, phase, &req.token).await,
        }
    }

    async fn drain_and_leave(&self, token: &str) -> Result<pb::LeaveReply, ClusterError> {
        let me = self.cluster.id;
        let off = self.leader_step(me, LEAVE_OFF_RING, token).await?;
        self.cluster.mark_leaving();
        tracing::info!(ring_epoch = off.ring_epoch, "off the ring; handing live sessions to their owners");
        let deadline = tokio::time::Instant::now() + DRAIN_DEADLINE;
        loop {
            if (self.drained)().await {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::Raft(format!("live sessions were not handed off within {DRAIN_DEADLINE:?}; still a member")));
            }
            self.clock.sleep(Duration::from_millis(100)).await;
        }
        self.hand_over_archive().await?;
        self.leader_step(me, LEAVE_REMOVE, token).await?;
        self.cluster.mark_left();
        Ok(off)
    }

    /// Runs the hand-over until it completes; a run that moved something
    /// before failing does not count against the attempts.
    async fn hand_over_archive(&self) -> Result<(), ClusterError> {
        let Some(hand_over) = &self.hand_over else { return Ok(()) };
        let mut failures = 0;
        loop {
            match hand_over().await {
                Ok(moved) => {
                    tracing::info!(segments = moved, "finished segments handed to their owners");
                    return Ok(());
                }
                Err(e) if failures + 1 >= HAND_OVER_ATTEMPTS => {
                    return Err(ClusterError::Raft(format!(
                        "finished segments were not all handed over ({e}); still a member, run leave again"
                    )));
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, attempt = failures, "handing over finished segments failed; retrying");
                    self.clock.sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One leave step on the leader (passed to it from a follower).
    async fn leader_step(&self, node: NodeId, phase: u32, token: &str) -> Result<pb::LeaveReply, ClusterError> {
        if !self.cluster.is_leader() {
            let request = || {
                let mut r = tonic::Request::new(pb::LeaveRequest { token: token.to_owned(), node_id: node.0, phase });
                r.set_timeout(self.cluster.rpc_timeout() * 10);
                r
            };
            let no_leader = match self.leader_client() {
                Ok((leader, mut c)) => return c.leave(request()).await.map(|r| r.into_inner()).map_err(|s| status_error(leader, s)),
                Err(e) => e,
            };
            // A leave retried after the leader already removed this node:
            // a removed node hears from no leader any more. Any member
            // passes the step on to its leader (both steps are idempotent).
            // Only the leaving node itself does this, so two leaderless
            // nodes cannot pass a request back and forth.
            if node != self.cluster.id {
                return Err(no_leader);
            }
            for peer in self.cluster.all_members().into_iter().filter(|p| *p != node) {
                let Ok(mut c) = self.cluster.client(peer) else { continue };
                match c.leave(request()).await {
                    Ok(reply) => return Ok(reply.into_inner()),
                    Err(status) => {
                        tracing::warn!(%peer, error = %status.message(), "passing a leave step on failed; trying the next member")
                    }
                }
            }
            return Err(no_leader);
        }
        let _guard = self.changes.lock().await;
        match phase {
            LEAVE_OFF_RING => {
                self.leaving.lock().insert(node);
                let epoch = self.reconcile_ring().await?;
                tracing::info!(%node, ring_epoch = epoch, "node leaving: off the ring");
                Ok(pb::LeaveReply { ring_epoch: epoch })
            }
            LEAVE_REMOVE => {
                let raft = &self.cluster.raft;
                let set = BTreeSet::from([node.0]);
                if self.cluster.view().membership.membership().voter_ids().any(|v| v == node.0) {
                    raft.change_membership(ChangeMembers::RemoveVoters(set.clone()), false)
                        .await
                        .map_err(|e| ClusterError::Raft(e.to_string()))?;
                }
                if self.cluster.view().membership.membership().get_node(&node.0).is_some() {
                    raft.change_membership(ChangeMembers::RemoveNodes(set), false).await.map_err(|e| ClusterError::Raft(e.to_string()))?;
                }
                self.leaving.lock().remove(&node);
                tracing::info!(%node, "node left");
                Ok(pb::LeaveReply { ring_epoch: self.cluster.ring_epoch() })
            }
            other => Err(ClusterError::Refused(format!("unknown leave phase {other}"))),
        }
    }

    /// Proposes the ring the membership and failure detection call for, if
    /// it differs from the applied one. Returns the ring epoch after.
    async fn reconcile_ring(&self) -> Result<u64, ClusterError> {
        let view = self.cluster.view();
        let now = self.clock.now_unix_ms();
        let candidates: Vec<Candidate> = {
            let detector = self.detector.lock();
            let leaving = self.leaving.lock();
            view.membership
                .membership()
                .nodes()
                .map(|(id, info)| {
                    let id = NodeId(*id);
                    let health = if id == self.cluster.id { Health::Up } else { detector.health(id, now) };
                    Candidate { member: Member { id, weight: info.weight.max(1) }, health, leaving: leaving.contains(&id) }
                })
                .collect()
        };
        let Some(members) = desired_ring(&candidates, view.ring.as_deref()) else {
            return Ok(self.cluster.ring_epoch());
        };
        match self.cluster.propose(ClusterRequest::SetRing { members: members.clone() }).await? {
            ClusterResponse::Ring { epoch } => {
                tracing::info!(ring_epoch = epoch, members = ?members.iter().map(|m| m.id.0).collect::<Vec<_>>(), "ring changed");
                Ok(epoch)
            }
            other => Err(ClusterError::Raft(format!("unexpected answer to SetRing: {other:?}"))),
        }
    }

    /// The cluster as this node sees it.
    pub fn members(&self) -> pb::MembersReply {
        let view = self.cluster.view();
        let metrics = self.cluster.raft.metrics().borrow().clone();
        let now = self.clock.now_unix_ms();
        let shares = view.ring.as_ref().map(|r| r.shares()).unwrap_or_default();
        let membership = view.membership.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().map(NodeId).collect();
        let detector = self.detector.lock();
        let members = membership
            .nodes()
            .map(|(id, info)| {
                let node = NodeId(*id);
                let role = if metrics.current_leader.map(NodeId) == Some(node) {
                    "leader"
                } else if voters.contains(&node) {
                    "voter"
                } else {
                    "learner"
                };
                let health = if node == self.cluster.id { Health::Up } else { detector.health(node, now) };
                pb::Member {
                    node_id: *id,
                    cluster_addr: info.cluster_addr.clone(),
                    api_addr: info.api_addr.clone(),
                    role: role.into(),
                    health: health.as_str().into(),
                    in_ring: view.ring.as_ref().is_some_and(|r| r.contains(node)),
                    ring_share: shares.get(&node).copied().unwrap_or(0.0),
                    weight: info.weight,
                }
            })
            .collect();
        pb::MembersReply {
            leader_id: metrics.current_leader.unwrap_or(0),
            term: metrics.current_term,
            ring_epoch: view.ring.as_ref().map_or(0, |r| r.epoch()),
            members,
            node_id: self.cluster.id.0,
        }
    }

    /// Probes every member once, concurrently, each under the RPC deadline.
    async fn probe_all(&self) {
        let view = self.cluster.view();
        let peers: Vec<NodeId> =
            view.membership.membership().nodes().map(|(id, _)| NodeId(*id)).filter(|id| *id != self.cluster.id).collect();
        let sent = self.clock.now_unix_ms();
        let probes = peers.into_iter().map(|node| async move {
            let Ok(mut c) = self.cluster.client(node) else { return (node, false) };
            let mut r = tonic::Request::new(pb::MembersRequest {});
            r.set_timeout(self.cluster.rpc_timeout());
            let ok = tokio::time::timeout(self.cluster.rpc_timeout(), c.members(r)).await.is_ok_and(|r| r.is_ok());
            (node, ok)
        });
        let results = futures::future::join_all(probes).await;
        let now = self.clock.now_unix_ms();
        let mut detector = self.detector.lock();
        for (node, ok) in results {
            if ok {
                detector.heard(node, now);
                self.cluster.note_contact(node, sent);
            }
        }
        detector.retain(|n| view.membership.membership().get_node(&n.0).is_some());
    }

    /// Probes and (on the leader) keeps the ring in step, until `stop`.
    pub async fn upkeep(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let interval = Duration::from_millis(self.cluster.settings.heartbeat_interval_ms);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = self.clock.sleep(interval) => {}
            }
            self.probe_all().await;
            if self.cluster.is_leader() {
                if let Ok(_guard) = self.changes.try_lock() {
                    if let Err(e) = self.reconcile_ring().await {
                        tracing::warn!(error = %e, "ring upkeep failed");
                    }
                }
            }
        }
    }
}

fn status_error(node: NodeId, s: tonic::Status) -> ClusterError {
    match s.code() {
        tonic::Code::PermissionDenied => ClusterError::Refused(s.message().to_owned()),
        _ => ClusterError::Unreachable { node, detail: s.message().to_owned() },
    }
}

fn seed_client(
    addr: &str,
    transport: &SharedTransport,
) -> Result<pb::cluster_client::ClusterClient<tonic::transport::Channel>, ClusterError> {
    let ch = ollystack_cluster::net::channel(addr, transport)
        .map_err(|e| ClusterError::Unreachable { node: NodeId(0), detail: format!("{addr}: {e}") })?;
    Ok(client(ch))
}

/// Asks the cluster, through `seed` (`host:port` of any member's cluster
/// listener), to add this node. Returns the ring epoch that includes it.
pub async fn join_via_seed(
    transport: &SharedTransport,
    seed: &str,
    token: &str,
    id: NodeId,
    info: &NodeInfo,
    timeout: Duration,
) -> Result<u64, ClusterError> {
    let mut c = seed_client(seed, transport)?;
    let mut r = tonic::Request::new(pb::JoinRequest {
        token: token.to_owned(),
        node_id: id.0,
        cluster_addr: info.cluster_addr.clone(),
        api_addr: info.api_addr.clone(),
        weight: info.weight,
        // Taken from the TLS connection by the node that receives it.
        identity: String::new(),
    });
    r.set_timeout(timeout);
    c.join(r).await.map(|r| r.into_inner().ring_epoch).map_err(|s| match s.code() {
        tonic::Code::PermissionDenied => ClusterError::Refused(s.message().to_owned()),
        _ => ClusterError::Unreachable { node: NodeId(0), detail: format!("{seed}: {}", s.message()) },
    })
}

/// Asks the node at `addr` to drain itself and leave the cluster.
pub async fn leave_via(transport: &SharedTransport, addr: &str, token: &str, timeout: Duration) -> Result<u64, ClusterError> {
    let mut c = seed_client(addr, transport)?;
    let mut r = tonic::Request::new(pb::LeaveRequest { token: token.to_owned(), node_id: 0, phase: 0 });
    r.set_timeout(timeout);
    c.leave(r).await.map(|r| r.into_inner().ring_epoch).map_err(|s| status_error(NodeId(0), s))
}

/// The members table of the node at `addr`.
pub async fn members_via(transport: &SharedTransport, addr: &str, timeout: Duration) -> Result<MembersTable, ClusterError> {
    let mut c = seed_client(addr, transport)?;
    let mut r = tonic::Request::new(pb::MembersRequest {});
    r.set_timeout(timeout);
    c.members(r).await.map(|r| MembersTable(r.into_inner())).map_err(|s| status_error(NodeId(0), s))
}

/// `ollystack-node members` output.
#[derive(Debug, Clone)]
pub struct MembersTable(pub pb::MembersReply);

impl fmt::Display for MembersTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.0;
        writeln!(
            f,
            "ring epoch {}  raft term {}  leader {}  (answered by {})",
            r.ring_epoch,
            r.term,
            NodeId(r.leader_id),
            NodeId(r.node_id)
        )?;
        writeln!(f, "{:<26} {:<8} {:<8} {:<5} {:>7} {:<22} {:<22}", "NODE", "ROLE", "HEALTH", "RING", "SHARE", "CLUSTER", "API")?;
        let by_id: BTreeMap<NodeId, &pb::Member> = r.members.iter().map(|m| (NodeId(m.node_id), m)).collect();
        for (id, m) in &by_id {
            writeln!(
                f,
                "{:<26} {:<8} {:<8} {:<5} {:>6.1}% {:<22} {:<22}",
                id.to_string(),
                m.role,
                m.health,
                if m.in_ring { "yes" } else { "no" },
                m.ring_share * 100.0,
                m.cluster_addr,
                m.api_addr
            )?;
        }
        Ok(())
    }
}
