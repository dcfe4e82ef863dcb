//! The consistent-hash ring that decides which node owns a correlation
//! session, and [`diff`], the pure function that lists the hash ranges whose
//! owner changes between two rings.
//!
//! # Placement
//!
//! * A key is the pair (tenant, correlation ID); its position is
//!   [`KeyHash::of`]: XXH64 with seed 0 over the tenant's UTF-8 bytes, one
//!   `0xFF` byte (never part of UTF-8, so the split is unambiguous), then the
//!   correlation ID's bytes.
//! * A member with weight `w` has `w * VNODES_PER_WEIGHT` virtual nodes; the
//!   position of virtual node `i` of node `id` is XXH64 with seed
//!   [`TOKEN_SEED`] over `id` (u64, little-endian) followed by `i` (u32,
//!   little-endian).
//! * A position `h` belongs to the first virtual node at or after `h`,
//!   wrapping past `u64::MAX` to the first one. Two nodes' virtual nodes on the
//!   same position (a 64-bit collision) keep the lower node ID.
//!
//! XXH64 is implemented in the private `hash` module and checked against the
//! reference vectors, so placement is the same in every process, on every
//! platform and in every release; changing any of the above is a data-format
//! change.
//!
//! # Balance
//!
//! With [`VNODES_PER_WEIGHT`] = 512, every node's share of the hash space is
//! within ±25% of its fair share (weight / total weight) for 3, 5 and 10
//! equal-weight nodes with arbitrary IDs; the property tests check this bound
//! and the crate README records measured figures.
//!
//! # Epochs
//!
//! A ring carries the epoch of the membership it was built from. Placement
//! ignores the epoch (same members, same owners), but every node routes by
//! the same ring for the same epoch, so two rings with one epoch and
//! different members are an error ([`changes`]).

mod diff;
mod hash;

use std::collections::BTreeMap;

pub use diff::{changes, diff, find_move, EpochError, KeyRange, Move};

use crate::NodeId;

/// Virtual nodes per unit of weight. Chosen by measurement: see the module
/// docs for the balance bound it buys. Changing it moves keys.
pub const VNODES_PER_WEIGHT: u32 = 512;
/// Seed of the virtual-node positions (the 64-bit golden ratio), so that
/// token and key hashing are distinct functions.
pub const TOKEN_SEED: u64 = 0x9E37_79B9_7F4A_7C15;
/// At most this many members: bounds the ring's memory
/// (`MAX_MEMBERS * MAX_WEIGHT * VNODES_PER_WEIGHT` tokens of 16 bytes, 8 MiB).
pub const MAX_MEMBERS: usize = 128;
/// At most this weight per member.
pub const MAX_WEIGHT: u32 = 8;

/// A member of the ring: a node and its relative capacity. Deserializing
/// does not check the weight: [`Ring::new`] does.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: NodeId,
    /// Relative capacity, 1..=[`MAX_WEIGHT`]: a node with weight 2 owns about
    /// twice the keys of a node with weight 1.
    pub weight: u32,
}

impl Member {
    /// A member of weight 1.
    pub fn new(id: NodeId) -> Self {
        Self { id, weight: 1 }
    }
}

/// A key's position on the ring.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct KeyHash(pub u64);

impl KeyHash {
    /// The position of a correlation session; see the module docs for the
    /// exact, stable encoding. Without tenancy the tenant is the default one.
    pub fn of(tenant: &str, correlation_id: &str) -> Self {
        let mut bytes = Vec::with_capacity(tenant.len() + 1 + correlation_id.len());
        bytes.extend_from_slice(tenant.as_bytes());
        bytes.push(0xFF);
        bytes.extend_from_slice(correlation_id.as_bytes());
        Self(hash::xxh64(&bytes, 0))
    }
}

/// Why a membership cannot make a ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("a ring needs at least one member")]
    NoMembers,
    #[error("{count} members, at most {MAX_MEMBERS} are supported")]
    TooManyMembers { count: usize },
    #[error("{node} is listed twice")]
    DuplicateMember { node: NodeId },
    #[error("{node} has weight {weight}, it must be 1..={MAX_WEIGHT}")]
    BadWeight { node: NodeId, weight: u32 },
}

/// A broken invariant of a [`Ring`] (see [`Ring::check_invariants`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ring of epoch {epoch}: {what}")]
pub struct RingViolation {
    pub epoch: u64,
    pub what: &'static str,
}

/// One virtual node: a position and the node it stands for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Token {
    position: u64,
    node: NodeId,
}

/// An immutable ring: members, their virtual nodes sorted by position, and
/// the epoch of the membership it was built from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Ring {
    epoch: u64,
    /// Members by ID, so the ring does not depend on the order they came in.
    members: BTreeMap<NodeId, u32>,
    /// Strictly increasing positions; never empty.
    tokens: Vec<Token>,
    /// How much of the 2^64 hash space each member owns (computed once:
    /// every membership probe reports it).
    owned: BTreeMap<NodeId, u128>,
}

impl Ring {
    /// Builds the ring of a membership. The same members (in any order) and
    /// epoch always give the same ring.
    pub fn new(epoch: u64, members: &[Member]) -> Result<Self, RingError> {
        if members.is_empty() {
            return Err(RingError::NoMembers);
        }
        if members.len() > MAX_MEMBERS {
            return Err(RingError::TooManyMembers { count: members.len() });
        }
        let mut by_id = BTreeMap::new();
        for member in members {
            if member.weight == 0 || member.weight > MAX_WEIGHT {
                return Err(RingError::BadWeight { node: member.id, weight: member.weight });
            }
            if by_id.insert(member.id, member.weight).is_some() {
                return Err(RingError::DuplicateMember { node: member.id });
            }
        }
        let mut tokens: Vec<Token> = by_id
            .iter()
            .flat_map(|(&node, &weight)| (0..weight * VNODES_PER_WEIGHT).map(move |i| Token { position: token_position(node, i), node }))
            .collect();
        tokens.sort_unstable_by_key(|t| (t.position, t.node));
        tokens.dedup_by_key(|t| t.position);
        let owned = owned_space(&by_id, &tokens);
        let ring = Self { epoch, members: by_id, tokens, owned };
        debug_assert_eq!(ring.check_invariants(), Ok(()));
        Ok(ring)
    }

    /// What placement relies on: tokens never empty and strictly
    /// increasing, each standing for a member; the members' owned parts of
    /// the hash space covering it exactly once.
    pub fn check_invariants(&self) -> Result<(), RingViolation> {
        let broken = |what| Err(RingViolation { epoch: self.epoch, what });
        if self.tokens.is_empty() || self.members.is_empty() {
            return broken("no tokens or no members");
        }
        if self.tokens.windows(2).any(|w| w[0].position >= w[1].position) {
            return broken("token positions are not strictly increasing");
        }
        if self.tokens.iter().any(|t| !self.members.contains_key(&t.node)) {
            return broken("a token stands for a node that is not a member");
        }
        if !self.owned.keys().eq(self.members.keys()) {
            return broken("owned space is not kept per member");
        }
        if self.owned.values().sum::<u128>() != 1u128 << 64 {
            return broken("owned space does not cover the hash space exactly once");
        }
        Ok(())
    }

    /// The ring of `members` at the next epoch.
    pub fn successor(&self, members: &[Member]) -> Result<Self, RingError> {
        Self::new(self.epoch + 1, members)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The members, ordered by ID.
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        self.members.iter().map(|(&id, &weight)| Member { id, weight })
    }

    pub fn contains(&self, node: NodeId) -> bool {
        self.members.contains_key(&node)
    }

    /// The node that owns `key`.
    pub fn owner(&self, key: KeyHash) -> NodeId {
        self.tokens[self.token_index(key.0)].node
    }

    /// Up to `n` distinct nodes in ring order starting at `key`'s owner: its
    /// replicas, or the nodes to ask after the owner. Fewer when the ring has
    /// fewer members.
    pub fn owners(&self, key: KeyHash, n: usize) -> Vec<NodeId> {
        let wanted = n.min(self.members.len());
        let mut found = Vec::with_capacity(wanted);
        let start = self.token_index(key.0);
        // Bounded: one lap of the ring at most.
        for offset in 0..self.tokens.len() {
            if found.len() == wanted {
                break;
            }
            let node = self.tokens[(start + offset) % self.tokens.len()].node;
            if !found.contains(&node) {
                found.push(node);
            }
        }
        found
    }

    /// Each member's exact share of the hash space, in `0.0..=1.0`; shares
    /// sum to 1.
    pub fn shares(&self) -> BTreeMap<NodeId, f64> {
        self.owned.iter().map(|(&id, &size)| (id, size as f64 / 2f64.powi(64))).collect()
    }

    /// Index of the token owning `position`: the first at or after it, or the
    /// first of all past the last.
    fn token_index(&self, position: u64) -> usize {
        let index = self.tokens.partition_point(|t| t.position < position);
        if index == self.tokens.len() {
            0
        } else {
            index
        }
    }
}

/// Each member's part of the hash space: the ranges (previous token,
/// token], wrapping, 2^64 in all.
fn owned_space(members: &BTreeMap<NodeId, u32>, tokens: &[Token]) -> BTreeMap<NodeId, u128> {
    let mut owned: BTreeMap<NodeId, u128> = members.keys().map(|&id| (id, 0)).collect();
    // Never empty: `new` refuses an empty membership and weight 0.
    let mut previous = tokens.last().map_or(0, |t| t.position);
    for token in tokens {
        let size = u128::from(token.position.wrapping_sub(previous));
        let size = if size == 0 { 1u128 << 64 } else { size };
        *owned.entry(token.node).or_default() += size;
        previous = token.position;
    }
    owned
}

fn token_position(node: NodeId, vnode: u32) -> u64 {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&node.0.to_le_bytes());
    bytes[8..].copy_from_slice(&vnode.to_le_bytes());
    hash::xxh64(&bytes, TOKEN_SEED)
}

#[cfg(test)]
mod tests;
