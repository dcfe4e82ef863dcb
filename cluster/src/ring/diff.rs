//! Ownership changes between two rings, as pure functions: which hash ranges
//! move from which node to which. Handoff (state transfer of live sessions)
//! and forwarding are driven by this list.

use super::{KeyHash, Ring};
use crate::NodeId;

/// An inclusive range of ring positions, `start..=end`; never wraps (a range
/// across `u64::MAX` is listed as two).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KeyRange {
    pub start: u64,
    pub end: u64,
}

impl KeyRange {
    pub fn contains(&self, key: KeyHash) -> bool {
        self.start <= key.0 && key.0 <= self.end
    }

    /// Number of positions in the range (up to 2^64, hence `u128`).
    pub fn size(&self) -> u128 {
        u128::from(self.end - self.start) + 1
    }
}

/// Keys in `range` were owned by `from` and are owned by `to`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Move {
    pub range: KeyRange,
    pub from: NodeId,
    pub to: NodeId,
}

/// The ranges whose owner differs between `old` and `new`, sorted by start,
/// disjoint, and merged where adjacent ranges move between the same nodes.
/// Keys outside every listed range have the same owner in both rings.
/// Ignores epochs; [`changes`] checks them.
pub fn diff(old: &Ring, new: &Ring) -> Vec<Move> {
    // Between two consecutive positions of either ring, both owners are
    // constant, so the space splits into segments (previous, boundary] whose
    // owners are those of `boundary`, plus [0, first] and (last, MAX].
    let mut boundaries: Vec<u64> = old.tokens.iter().chain(&new.tokens).map(|t| t.position).collect();
    boundaries.sort_unstable();
    boundaries.dedup();

    let mut moves: Vec<Move> = Vec::new();
    let mut start = 0u64;
    for &boundary in &boundaries {
        push_segment(&mut moves, old, new, KeyRange { start, end: boundary });
        if boundary == u64::MAX {
            return moves;
        }
        start = boundary + 1;
    }
    push_segment(&mut moves, old, new, KeyRange { start, end: u64::MAX });
    moves
}

/// Adds `range` (whose owners in each ring are those of its end) if its owner
/// changes, merging it into the previous move when contiguous and alike.
fn push_segment(moves: &mut Vec<Move>, old: &Ring, new: &Ring, range: KeyRange) {
    let (from, to) = (old.owner(KeyHash(range.end)), new.owner(KeyHash(range.end)));
    if from == to {
        return;
    }
    if let Some(last) = moves.last_mut() {
        if last.from == from && last.to == to && last.range.end.checked_add(1) == Some(range.start) {
            last.range.end = range.end;
            return;
        }
    }
    moves.push(Move { range, from, to });
}

/// The move that covers `key` in a list made by [`diff`], if it moves:
/// "does this key move, and from whom to whom".
pub fn find_move(moves: &[Move], key: KeyHash) -> Option<&Move> {
    let index = moves.partition_point(|m| m.range.end < key.0);
    moves.get(index).filter(|m| m.range.contains(key))
}

/// Why a ring cannot follow the current one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    #[error("ring epoch {proposed} is older than the current epoch {current}")]
    Stale { current: u64, proposed: u64 },
    #[error("two different memberships claim ring epoch {epoch}")]
    Conflict { epoch: u64 },
}

/// The moves from the ring a node routes by (`current`) to a ring it was
/// handed (`next`): the [`diff`] when `next` is newer; nothing when it is
/// the same ring again (a repeated delivery); an error when it is older, or
/// has the same epoch with other members, which would mean two nodes route
/// one epoch differently.
pub fn changes(current: &Ring, next: &Ring) -> Result<Vec<Move>, EpochError> {
    if next.epoch < current.epoch {
        return Err(EpochError::Stale { current: current.epoch, proposed: next.epoch });
    }
    if next.epoch == current.epoch {
        return if next.members == current.members { Ok(Vec::new()) } else { Err(EpochError::Conflict { epoch: next.epoch }) };
    }
    Ok(diff(current, next))
}

#[cfg(test)]
#[path = "diff_test.rs"]
mod diff_test;
