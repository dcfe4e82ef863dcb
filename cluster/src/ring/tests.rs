//! Placement, balance and epoch tests of the ring. Diff tests are in
//! `diff_test.rs`.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// The balance bound stated in the module docs: every share within ±25% of fair.
pub(super) const BALANCE_TOLERANCE: f64 = 0.25;

pub(super) fn members(ids: &BTreeSet<u64>) -> Vec<Member> {
    ids.iter().map(|&id| Member::new(NodeId(id))).collect()
}

pub(super) fn ring(epoch: u64, ids: &BTreeSet<u64>) -> Ring {
    Ring::new(epoch, &members(ids)).expect("valid membership")
}

fn assert_balanced(ring: &Ring) -> Result<(), TestCaseError> {
    let total_weight: u32 = ring.members().map(|m| m.weight).sum();
    let shares = ring.shares();
    prop_assert!((shares.values().sum::<f64>() - 1.0).abs() < 1e-9);
    for member in ring.members() {
        let fair = f64::from(member.weight) / f64::from(total_weight);
        let share = shares[&member.id];
        prop_assert!((share / fair - 1.0).abs() <= BALANCE_TOLERANCE, "{} owns {share:.4}, fair is {fair:.4}", member.id);
    }
    Ok(())
}

proptest! {
    #[test]
    fn balanced_with_3_nodes(ids in prop::collection::btree_set(any::<u64>(), 3)) {
        assert_balanced(&ring(1, &ids))?;
    }

    #[test]
    fn balanced_with_5_nodes(ids in prop::collection::btree_set(any::<u64>(), 5)) {
        assert_balanced(&ring(1, &ids))?;
    }

    #[test]
    fn balanced_with_10_nodes(ids in prop::collection::btree_set(any::<u64>(), 10)) {
        assert_balanced(&ring(1, &ids))?;
    }

    #[test]
    fn weights_scale_shares(ids in prop::collection::btree_set(any::<u64>(), 4), weights in prop::collection::vec(1..=4u32, 4)) {
        let members: Vec<Member> = ids.iter().zip(&weights).map(|(&id, &weight)| Member { id: NodeId(id), weight }).collect();
        assert_balanced(&Ring::new(1, &members).expect("valid membership"))?;
    }

    #[test]
    fn same_members_in_any_order_make_the_same_ring(
        members in prop::collection::btree_set(any::<u64>(), 1..8)
            .prop_flat_map(|ids| Just(ids.into_iter().map(|id| Member { id: NodeId(id), weight: 1 + (id % 3) as u32 }).collect::<Vec<_>>()))
            .prop_flat_map(|members| (Just(members.clone()), Just(members).prop_shuffle())),
    ) {
        let (sorted, shuffled) = members;
        prop_assert_eq!(Ring::new(5, &sorted).expect("valid"), Ring::new(5, &shuffled).expect("valid"));
    }

    #[test]
    fn owners_are_distinct_and_start_with_the_owner(ids in prop::collection::btree_set(any::<u64>(), 1..8), key: u64, n in 0..10usize) {
        let ring = ring(1, &ids);
        let owners = ring.owners(KeyHash(key), n);
        prop_assert_eq!(owners.len(), n.min(ids.len()));
        prop_assert_eq!(owners.iter().collect::<BTreeSet<_>>().len(), owners.len());
        if n > 0 {
            prop_assert_eq!(owners[0], ring.owner(KeyHash(key)));
        }
        let everyone: BTreeSet<u64> = ring.owners(KeyHash(key), usize::MAX).iter().map(|n| n.0).collect();
        prop_assert_eq!(everyone, ids);
    }

    #[test]
    fn every_ring_built_holds_its_invariants(ids in prop::collection::btree_set(any::<u64>(), 1..12), weights in prop::collection::vec(1..=MAX_WEIGHT, 12)) {
        let members: Vec<Member> = ids.iter().zip(&weights).map(|(&id, &weight)| Member { id: NodeId(id), weight }).collect();
        prop_assert_eq!(Ring::new(1, &members).expect("valid membership").check_invariants(), Ok(()));
    }

    #[test]
    fn placement_ignores_the_epoch(ids in prop::collection::btree_set(any::<u64>(), 1..8), keys in prop::collection::vec(any::<u64>(), 64)) {
        let (early, late) = (ring(1, &ids), ring(9, &ids));
        for key in keys {
            prop_assert_eq!(early.owner(KeyHash(key)), late.owner(KeyHash(key)));
        }
        prop_assert!(diff::diff(&early, &late).is_empty());
    }
}

#[test]
fn fixed_clusters_are_balanced() {
    // Node IDs 1..=n, as a freshly bootstrapped cluster numbers them.
    for n in [3u64, 5, 10] {
        let ids: BTreeSet<u64> = (1..=n).collect();
        let fair = 1.0 / n as f64;
        for (id, share) in ring(1, &ids).shares() {
            assert!((share / fair - 1.0).abs() <= BALANCE_TOLERANCE, "{id} owns {share:.4} of {n}");
        }
    }
}

#[test]
fn a_single_member_owns_everything() {
    let ring = Ring::new(1, &[Member::new(NodeId(7))]).expect("valid");
    assert_eq!(ring.shares()[&NodeId(7)], 1.0);
    for key in [0, 1, u64::MAX / 2, u64::MAX] {
        assert_eq!(ring.owner(KeyHash(key)), NodeId(7));
        assert_eq!(ring.owners(KeyHash(key), 3), vec![NodeId(7)]);
    }
}

#[test]
fn invalid_memberships_are_refused() {
    let one = Member::new(NodeId(1));
    assert_eq!(Ring::new(1, &[]), Err(RingError::NoMembers));
    assert_eq!(Ring::new(1, &[one, one]), Err(RingError::DuplicateMember { node: NodeId(1) }));
    assert_eq!(Ring::new(1, &[Member { weight: 0, ..one }]), Err(RingError::BadWeight { node: NodeId(1), weight: 0 }));
    let heavy = Member { weight: MAX_WEIGHT + 1, ..one };
    assert_eq!(Ring::new(1, &[heavy]), Err(RingError::BadWeight { node: NodeId(1), weight: MAX_WEIGHT + 1 }));
    let crowd: Vec<Member> = (0..=MAX_MEMBERS as u64).map(|id| Member::new(NodeId(id))).collect();
    assert_eq!(Ring::new(1, &crowd), Err(RingError::TooManyMembers { count: MAX_MEMBERS + 1 }));
}

#[test]
fn a_broken_ring_is_reported() {
    let mut ring = ring(4, &BTreeSet::from([1, 2, 3]));
    ring.tokens.swap(0, 1);
    assert_eq!(ring.check_invariants(), Err(RingViolation { epoch: 4, what: "token positions are not strictly increasing" }));
    let mut ring = super::tests::ring(4, &BTreeSet::from([1, 2]));
    ring.owned.insert(NodeId(1), 0);
    assert!(ring.check_invariants().is_err());
}

#[test]
fn successor_bumps_the_epoch() {
    let first = ring(3, &[1, 2].into());
    let next = first.successor(&members(&[1, 2, 3].into())).expect("valid");
    assert_eq!(next.epoch(), 4);
    assert!(next.contains(NodeId(3)) && !first.contains(NodeId(3)));
}

#[test]
fn changes_checks_epochs() {
    let current = ring(5, &[1, 2].into());
    assert_eq!(changes(&current, &ring(4, &[1, 2].into())), Err(EpochError::Stale { current: 5, proposed: 4 }));
    assert_eq!(changes(&current, &ring(5, &[1, 2, 3].into())), Err(EpochError::Conflict { epoch: 5 }));
    assert_eq!(changes(&current, &current.clone()), Ok(Vec::new()));
    let grown = ring(6, &[1, 2, 3].into());
    let moves = changes(&current, &grown).expect("newer epoch");
    assert!(!moves.is_empty());
    assert_eq!(moves, diff(&current, &grown));
}

/// The key encoding is a stored format: these positions must never change.
/// Expected values computed with the reference `xxhash` library.
#[test]
fn key_hash_is_stable() {
    assert_eq!(KeyHash::of("default", "olly-abc123-0123abcd"), KeyHash(0xF138_BDAE_898D_943F));
    assert_eq!(KeyHash::of("", ""), KeyHash(0x9563_4172_A60B_7544));
    assert_ne!(KeyHash::of("a", "bc"), KeyHash::of("ab", "c"));
    assert_eq!(token_position(NodeId(1), 0), 0x1A61_96C3_9FCD_2573);
}
