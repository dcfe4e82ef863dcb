//! Diff tests: the moves `diff` predicts are exactly the owner changes that
//! lookups in both rings observe, and joins/leaves move the minimum.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::super::tests::{ring, BALANCE_TOLERANCE};
use super::super::{KeyHash, Member, Ring};
use super::*;

fn moved_fraction(moves: &[Move]) -> f64 {
    moves.iter().map(|m| m.range.size()).sum::<u128>() as f64 / 2f64.powi(64)
}

/// Keys worth probing: random ones, and both sides of every range edge.
fn probes(moves: &[Move], random: &[u64]) -> Vec<u64> {
    let edges = moves.iter().flat_map(|m| [m.range.start, m.range.end]);
    let around = edges.flat_map(|e| [e.wrapping_sub(1), e, e.wrapping_add(1)]);
    around.chain(random.iter().copied()).chain([0, u64::MAX]).collect()
}

fn assert_well_formed(moves: &[Move]) -> Result<(), TestCaseError> {
    for pair in moves.windows(2) {
        prop_assert!(pair[0].range.end < pair[1].range.start, "sorted and disjoint: {pair:?}");
        let adjacent = pair[0].range.end + 1 == pair[1].range.start;
        prop_assert!(!(adjacent && pair[0].from == pair[1].from && pair[0].to == pair[1].to), "merged: {pair:?}");
    }
    for m in moves {
        prop_assert!(m.range.start <= m.range.end && m.from != m.to);
    }
    Ok(())
}

fn membership() -> impl Strategy<Value = Vec<Member>> {
    prop::collection::btree_map(0..12u64, 1..=3u32, 1..8)
        .prop_map(|m| m.into_iter().map(|(id, weight)| Member { id: NodeId(id), weight }).collect())
}

proptest! {
    #[test]
    fn diff_predicts_every_owner_change(old in membership(), new in membership(), random in prop::collection::vec(any::<u64>(), 200)) {
        let (old, new) = (Ring::new(1, &old).expect("valid"), Ring::new(2, &new).expect("valid"));
        let moves = diff(&old, &new);
        assert_well_formed(&moves)?;
        for key in probes(&moves, &random).into_iter().map(KeyHash) {
            let observed = (old.owner(key), new.owner(key));
            let predicted = find_move(&moves, key).map(|m| (m.from, m.to));
            if observed.0 == observed.1 {
                prop_assert_eq!(predicted, None, "{:?} does not move", key);
            } else {
                prop_assert_eq!(predicted, Some(observed), "{:?} moves", key);
            }
        }
    }

    #[test]
    fn join_moves_only_keys_to_the_new_node(ids in prop::collection::btree_set(any::<u64>(), 3..=10), joiner: u64, random in prop::collection::vec(any::<u64>(), 200)) {
        prop_assume!(!ids.contains(&joiner));
        let old = ring(1, &ids);
        let mut grown = ids.clone();
        grown.insert(joiner);
        let new = ring(2, &grown);
        let moves = diff(&old, &new);
        prop_assert!(moves.iter().all(|m| m.to == NodeId(joiner)));
        for key in random.into_iter().map(KeyHash) {
            let (before, after) = (old.owner(key), new.owner(key));
            prop_assert!(before == after || after == NodeId(joiner));
            if after == NodeId(joiner) {
                // The owner before the join is the next node after the joiner.
                prop_assert_eq!(new.owners(key, 2)[1], before);
            }
        }
        // Exactly the joiner's share moves, and that is about 1/(n+1).
        let fraction = moved_fraction(&moves);
        prop_assert!((fraction - new.shares()[&NodeId(joiner)]).abs() < 1e-9);
        let fair = 1.0 / grown.len() as f64;
        prop_assert!((fraction / fair - 1.0).abs() <= BALANCE_TOLERANCE, "moved {fraction:.4}, fair {fair:.4}");
    }

    #[test]
    fn leave_moves_only_the_leavers_keys(ids in prop::collection::btree_set(any::<u64>(), 4..=11), pick: prop::sample::Index, random in prop::collection::vec(any::<u64>(), 200)) {
        let leaver = *pick.get(&ids.iter().copied().collect::<Vec<u64>>());
        let old = ring(1, &ids);
        let shrunk: BTreeSet<u64> = ids.iter().copied().filter(|&id| id != leaver).collect();
        let new = ring(2, &shrunk);
        let moves = diff(&old, &new);
        prop_assert!(moves.iter().all(|m| m.from == NodeId(leaver)));
        for key in random.into_iter().map(KeyHash) {
            let (before, after) = (old.owner(key), new.owner(key));
            prop_assert!(before == after || before == NodeId(leaver));
            if before == NodeId(leaver) {
                // The new owner is the one the old ring lists after the leaver.
                prop_assert_eq!(old.owners(key, 2)[1], after);
            }
        }
        let fraction = moved_fraction(&moves);
        prop_assert!((fraction - old.shares()[&NodeId(leaver)]).abs() < 1e-9);
    }
}

#[test]
fn identical_rings_have_no_moves() {
    let ring = ring(1, &[1, 2, 3].into());
    assert!(diff(&ring, &ring).is_empty());
    assert!(find_move(&[], KeyHash(42)).is_none());
}

#[test]
fn replacing_the_only_member_moves_everything() {
    let (old, new) = (ring(1, &[1].into()), ring(2, &[2].into()));
    let moves = diff(&old, &new);
    assert_eq!(moves, vec![Move { range: KeyRange { start: 0, end: u64::MAX }, from: NodeId(1), to: NodeId(2) }]);
    assert_eq!(moved_fraction(&moves), 1.0);
}
