//! Cluster-state invariants checked while the run goes on, from what every
//! node's Raft and ring report (invariants 2 and 6), and the agreement that
//! must hold after convergence (invariant 3). Pure: fed observations.

use std::collections::{BTreeMap, BTreeSet};

/// (term, leader, index): an applied entry's log ID, whose leader ID is
/// (term, leader).
pub type AppliedId = (u64, u64, u64);

/// One node's state at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub node: u64,
    /// Counts restarts: state may only move forward within one incarnation.
    pub incarnation: u64,
    pub term: u64,
    pub is_leader: bool,
    /// The last applied entry.
    pub last_applied: Option<AppliedId>,
    pub ring_epoch: u64,
    /// (node, weight) of the applied ring.
    pub ring: Vec<(u64, u32)>,
    /// Voters and learners of the applied membership.
    pub membership: Vec<u64>,
}

#[derive(Debug, Default)]
pub struct Observer {
    /// Terms in which some node led.
    leader_terms: BTreeSet<u64>,
    /// The leader whose entries were applied in each term.
    committing: BTreeMap<u64, u64>,
    /// The leader ID (term, leader) each applied index has.
    applied_ids: BTreeMap<u64, (u64, u64)>,
    last: BTreeMap<u64, (u64, Option<AppliedId>)>,
    rings: BTreeMap<u64, Vec<(u64, u32)>>,
}

impl Observer {
    /// Records an observation; returns the violations it reveals.
    pub fn observe(&mut self, o: &Observation) -> Vec<String> {
        let mut out = Vec::new();
        // openraft (its default, "advanced" leader IDs) may elect more than
        // one leader in a term; a leader is (term, node), and only the last
        // of a term can commit. So: entries applied in one term all come
        // from one leader, and an applied index never changes its leader ID.
        if o.is_leader {
            self.leader_terms.insert(o.term);
        }
        if let Some((term, leader, index)) = o.last_applied {
            match self.committing.insert(term, leader) {
                Some(other) if other != leader => out.push(format!(
                    "raft: entries of two leaders committed in term {term}: {other:x} and {leader:x} (seen on {:x})",
                    o.node
                )),
                _ => {}
            }
            match self.applied_ids.insert(index, (term, leader)) {
                Some(id) if id != (term, leader) => out.push(format!(
                    "raft: entry {index} applied with leader ID {id:x?} on one node and {:x?} on {:x}",
                    (term, leader),
                    o.node
                )),
                _ => {}
            }
        }
        if let Some((incarnation, prev)) = self.last.get(&o.node) {
            if *incarnation == o.incarnation && o.last_applied < *prev {
                out.push(format!("raft: node {:x} went back from applied {prev:?} to {:?}", o.node, o.last_applied));
            }
        }
        self.last.insert(o.node, (o.incarnation, o.last_applied));
        if o.ring_epoch > 0 {
            match self.rings.get(&o.ring_epoch) {
                Some(ring) if *ring != o.ring => out.push(format!(
                    "ring: epoch {} is {:?} on one node and {:?} on {:x} (two owners per session possible)",
                    o.ring_epoch, ring, o.ring, o.node
                )),
                Some(_) => {}
                None => {
                    self.rings.insert(o.ring_epoch, o.ring.clone());
                }
            }
        }
        out
    }

    pub fn terms_seen(&self) -> usize {
        self.leader_terms.len()
    }

    pub fn epochs_seen(&self) -> usize {
        self.rings.len()
    }
}

/// After convergence: every node applied the same membership and ring, and
/// the ring holds every node. `None` when they agree.
pub fn disagreement(observations: &[Observation], expected_nodes: usize) -> Option<String> {
    let first = observations.first()?;
    for o in observations {
        if o.ring_epoch != first.ring_epoch || o.ring != first.ring || o.membership != first.membership {
            return Some(format!(
                "nodes disagree: {:x} has epoch {} ring {:?} members {:x?}; {:x} has epoch {} ring {:?} members {:x?}",
                first.node, first.ring_epoch, first.ring, first.membership, o.node, o.ring_epoch, o.ring, o.membership
            ));
        }
    }
    if first.ring.len() != expected_nodes || first.membership.len() != expected_nodes {
        return Some(format!("ring has {} of {expected_nodes} nodes, membership {}", first.ring.len(), first.membership.len()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `applied`: (term, leader, index) of the last applied entry.
    fn obs(node: u64, term: u64, leader: bool, applied: (u64, u64, u64), epoch: u64, ring: &[u64]) -> Observation {
        Observation {
            node,
            incarnation: 0,
            term,
            is_leader: leader,
            last_applied: Some(applied),
            ring_epoch: epoch,
            ring: ring.iter().map(|n| (*n, 1)).collect(),
            membership: ring.to_vec(),
        }
    }

    #[test]
    fn a_healthy_history_has_no_violation() {
        let mut o = Observer::default();
        assert!(o.observe(&obs(1, 1, true, (1, 1, 5), 1, &[1, 2])).is_empty());
        assert!(o.observe(&obs(2, 1, false, (1, 1, 5), 1, &[1, 2])).is_empty());
        assert!(o.observe(&obs(2, 2, true, (2, 2, 6), 2, &[2])).is_empty());
        // A second leader elected in term 2 (openraft allows it) that has
        // not committed anything is not a violation.
        assert!(o.observe(&obs(1, 2, true, (2, 2, 6), 2, &[2])).is_empty());
    }

    #[test]
    fn two_committing_leaders_in_a_term_a_rewritten_entry_and_a_forked_ring_are_caught() {
        let mut o = Observer::default();
        o.observe(&obs(1, 3, true, (3, 1, 9), 4, &[1, 2]));
        assert_eq!(o.observe(&obs(2, 3, true, (3, 2, 10), 4, &[1, 2])).len(), 1);
        assert_eq!(o.observe(&obs(3, 4, false, (4, 3, 9), 4, &[1, 2])).len(), 1);
        assert_eq!(o.observe(&obs(3, 4, false, (4, 3, 11), 4, &[1, 3])).len(), 1);
    }

    #[test]
    fn going_back_is_a_violation_only_within_one_incarnation() {
        let mut o = Observer::default();
        o.observe(&obs(1, 1, false, (1, 1, 9), 1, &[1]));
        assert_eq!(o.observe(&obs(1, 1, false, (1, 1, 8), 1, &[1])).len(), 1);
        let restarted = Observation { incarnation: 1, ..obs(1, 1, false, (1, 1, 7), 1, &[1]) };
        assert!(o.observe(&restarted).is_empty());
    }

    #[test]
    fn agreement_needs_the_same_ring_and_every_node() {
        let a = obs(1, 1, true, (1, 1, 1), 3, &[1, 2]);
        let b = obs(2, 1, false, (1, 1, 1), 3, &[1, 2]);
        assert_eq!(disagreement(&[a.clone(), b.clone()], 2), None);
        assert!(disagreement(&[a.clone(), b], 3).is_some());
        let c = obs(2, 1, false, (1, 1, 1), 2, &[1]);
        assert!(disagreement(&[a, c], 2).is_some());
    }
}
