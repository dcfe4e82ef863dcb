//! Failure detection and the ring the leader should propose, as pure
//! decisions. The leader probes every member each heartbeat interval and
//! records answers here ([`FailureDetector::heard`]); [`desired_ring`] then
//! says which members belong on the ring: every member that is not leaving
//! and has not been silent for the failure timeout. The leader proposes that
//! ring through Raft (an epoch bump) whenever it differs from the current
//! one, so a dead node leaves the ring, and a returning one comes back, by a
//! Raft decision.

use std::collections::BTreeMap;

use crate::ring::{Member, Ring};
use crate::NodeId;

/// What the detector knows of one node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Health {
    /// Answered within the failure timeout.
    Up,
    /// Silent for at least the failure timeout.
    Down,
    /// Not heard from yet, and the detector has run for less than the
    /// failure timeout (a new leader gives every node that long).
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
            Health::Unknown => "unknown",
        }
    }
}

/// Last time each node answered a probe, on the caller's clock.
#[derive(Clone, Debug)]
pub struct FailureDetector {
    failure_timeout_ms: u64,
    /// When the detector started: nodes never heard from count from here.
    started_ms: u64,
    /// Bounded by the membership (at most [`crate::ring::MAX_MEMBERS`]
    /// entries are useful; [`FailureDetector::retain`] drops the rest).
    last_ok_ms: BTreeMap<NodeId, u64>,
}

impl FailureDetector {
    pub fn new(failure_timeout_ms: u64, now_ms: u64) -> Self {
        Self { failure_timeout_ms, started_ms: now_ms, last_ok_ms: BTreeMap::new() }
    }

    /// `node` answered at `now_ms`.
    pub fn heard(&mut self, node: NodeId, now_ms: u64) {
        let t = self.last_ok_ms.entry(node).or_insert(now_ms);
        *t = (*t).max(now_ms);
    }

    /// Forget nodes that are no longer members.
    pub fn retain(&mut self, members: impl Fn(NodeId) -> bool) {
        self.last_ok_ms.retain(|n, _| members(*n));
    }

    pub fn health(&self, node: NodeId, now_ms: u64) -> Health {
        let since = now_ms.saturating_sub(self.last_ok_ms.get(&node).copied().unwrap_or(self.started_ms));
        match (self.last_ok_ms.contains_key(&node), since < self.failure_timeout_ms) {
            (_, false) => Health::Down,
            (true, true) => Health::Up,
            (false, true) => Health::Unknown,
        }
    }
}

/// A cluster member as the leader sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Candidate {
    pub member: Member,
    pub health: Health,
    /// Asked to leave: drained off the ring whatever its health.
    pub leaving: bool,
}

/// The ring members the cluster should have, or `None` when the current
/// ring already has exactly them. Never empty: if every candidate is down
/// or leaving, the current ring stays (a cluster with no owner would refuse
/// all data; better to keep routing to the last owners and wait).
pub fn desired_ring(candidates: &[Candidate], current: Option<&Ring>) -> Option<Vec<Member>> {
    let mut want: Vec<Member> = candidates.iter().filter(|c| !c.leaving && c.health != Health::Down).map(|c| c.member).collect();
    want.sort_by_key(|m| m.id);
    if want.is_empty() {
        return None;
    }
    let have: Vec<Member> = current.map(|r| r.members().collect()).unwrap_or_default();
    (have != want).then_some(want)
}

/// What a node knows of its own standing, for [`lease_lapsed`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Standing {
    /// The membership has one voter: this node decides alone.
    pub sole_voter: bool,
    pub is_leader: bool,
    /// On the leader: how long ago a quorum last acknowledged it (Raft's
    /// own measure; `None` before the first).
    pub since_quorum_ack_ms: Option<u64>,
    /// On a follower: when (its clock) it last had proof the leader was
    /// alive: the send time of a probe the leader answered.
    pub leader_contact_ms: Option<u64>,
}

/// How long this node has been out of touch with the cluster, when that is long
/// enough that the leader may have taken it off the ring without it knowing:
/// half the failure timeout. Such a node must not take data as a session's
/// owner or a trace's home. A request held by a stalled link and delivered
/// after its sender gave up and sent the data elsewhere would otherwise store
/// it a second time. Both sides measure durations on their own clocks, so clock
/// offsets do not matter. Pure.
pub fn lease_lapsed(standing: Standing, now_ms: u64, failure_timeout_ms: u64) -> Option<u64> {
    let lease = failure_timeout_ms / 2;
    if standing.sole_voter {
        return None;
    }
    let out_of_touch = if standing.is_leader {
        standing.since_quorum_ack_ms.unwrap_or(u64::MAX)
    } else {
        standing.leader_contact_ms.map_or(u64::MAX, |at| now_ms.saturating_sub(at))
    };
    (out_of_touch > lease).then_some(out_of_touch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: u64, health: Health, leaving: bool) -> Candidate {
        Candidate { member: Member::new(NodeId(id)), health, leaving }
    }

    #[test]
    fn a_node_is_unknown_then_up_then_down_after_the_timeout() {
        let mut d = FailureDetector::new(1_000, 10_000);
        assert_eq!(d.health(NodeId(1), 10_500), Health::Unknown);
        assert_eq!(d.health(NodeId(1), 11_000), Health::Down, "never heard within the timeout");
        d.heard(NodeId(1), 11_000);
        assert_eq!(d.health(NodeId(1), 11_999), Health::Up);
        assert_eq!(d.health(NodeId(1), 12_000), Health::Down);
        d.heard(NodeId(1), 12_100);
        assert_eq!(d.health(NodeId(1), 12_200), Health::Up, "a returning node is up again");
    }

    #[test]
    fn a_node_out_of_touch_for_half_the_failure_timeout_is_fenced() {
        let follower = |contact| Standing { sole_voter: false, is_leader: false, since_quorum_ack_ms: None, leader_contact_ms: contact };
        assert_eq!(lease_lapsed(follower(Some(9_000)), 10_000, 5_000), None);
        assert_eq!(lease_lapsed(follower(Some(7_000)), 10_000, 5_000), Some(3_000));
        assert_eq!(lease_lapsed(follower(None), 10_000, 5_000), Some(u64::MAX), "never heard from a leader");
        let leader = |ack| Standing { sole_voter: false, is_leader: true, since_quorum_ack_ms: ack, leader_contact_ms: None };
        assert_eq!(lease_lapsed(leader(Some(100)), 10_000, 5_000), None);
        assert_eq!(lease_lapsed(leader(Some(2_600)), 10_000, 5_000), Some(2_600));
        assert_eq!(lease_lapsed(leader(None), 10_000, 5_000), Some(u64::MAX));
        let alone = Standing { sole_voter: true, ..leader(None) };
        assert_eq!(lease_lapsed(alone, 10_000, 5_000), None, "a one-voter cluster decides alone");
    }

    #[test]
    fn an_older_answer_never_moves_last_heard_back() {
        let mut d = FailureDetector::new(1_000, 0);
        d.heard(NodeId(1), 5_000);
        d.heard(NodeId(1), 4_000);
        assert_eq!(d.health(NodeId(1), 5_900), Health::Up);
    }

    #[test]
    fn down_and_leaving_nodes_leave_the_ring_and_unknown_ones_stay() {
        let current = Ring::new(3, &[Member::new(NodeId(1)), Member::new(NodeId(2)), Member::new(NodeId(3))]).expect("ring");
        let all_up = [cand(1, Health::Up, false), cand(2, Health::Unknown, false), cand(3, Health::Up, false)];
        assert_eq!(desired_ring(&all_up, Some(&current)), None, "no change, no proposal");
        let one_down = [cand(1, Health::Up, false), cand(2, Health::Down, false), cand(3, Health::Up, false)];
        assert_eq!(desired_ring(&one_down, Some(&current)), Some(vec![Member::new(NodeId(1)), Member::new(NodeId(3))]));
        let leaving = [cand(1, Health::Up, false), cand(2, Health::Up, false), cand(3, Health::Up, true)];
        assert_eq!(desired_ring(&leaving, Some(&current)), Some(vec![Member::new(NodeId(1)), Member::new(NodeId(2))]));
    }

    #[test]
    fn a_joining_node_enters_the_ring_and_the_ring_is_never_emptied() {
        let current = Ring::new(1, &[Member::new(NodeId(1))]).expect("ring");
        let joined = [cand(1, Health::Up, false), cand(4, Health::Unknown, false)];
        assert_eq!(desired_ring(&joined, Some(&current)), Some(vec![Member::new(NodeId(1)), Member::new(NodeId(4))]));
        assert_eq!(desired_ring(&[cand(1, Health::Down, false)], Some(&current)), None);
        assert_eq!(desired_ring(&[cand(1, Health::Up, false)], None), Some(vec![Member::new(NodeId(1))]), "first ring");
    }
}
