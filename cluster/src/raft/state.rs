//! The replicated cluster state and how a committed [`ClusterRequest`]
//! changes it: pure, no I/O. The state machine store holds one and persists
//! it in snapshots.

use std::sync::Arc;

use super::types::{ClusterRequest, ClusterResponse};
use crate::admission::{Command, LimiterConfig, LimiterState, Response, Violation};
use crate::ring::{Member, Ring};

/// The ring and the limiter, as every replica holds them after applying the
/// same log. Serializes the ring as its epoch and members (the tokens are
/// derived), and checks the ring and the limiter's invariants on the way in.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "ClusterStateRecord")]
pub struct ClusterState {
    /// `None` until the first `SetRing`; shared with the published views.
    ring: Option<Arc<Ring>>,
    /// `None` until the first `SetLimits`; holds the limits' config.
    limiter: Option<LimiterState>,
}

impl ClusterState {
    /// Applies one committed request. Deterministic: the same requests in
    /// the same order give the same state and responses on every replica.
    pub fn apply(&mut self, request: &ClusterRequest) -> ClusterResponse {
        let epoch_before = self.ring.as_ref().map_or(0, |ring| ring.epoch());
        let response = match request {
            ClusterRequest::SetRing { members } => self.set_ring(members),
            ClusterRequest::SetLimits { config } => self.set_limits(config),
            ClusterRequest::Limiter(command) => match &mut self.limiter {
                Some(limiter) => ClusterResponse::Limiter(limiter.apply(command)),
                None => ClusterResponse::Refused("no cardinality limits are configured".to_owned()),
            },
        };
        debug_assert_eq!(self.check_invariants(), Ok(()));
        debug_assert_eq!(epoch_step(epoch_before, self), Ok(()), "applying {request:?}");
        response
    }

    fn set_ring(&mut self, members: &[Member]) -> ClusterResponse {
        if members.is_empty() {
            return ClusterResponse::Refused("a ring needs at least one member".to_owned());
        }
        let mut sorted = members.to_vec();
        sorted.sort_by_key(|m| m.id);
        if let Some(ring) = &self.ring {
            // Duplicates make the lists differ in length, so they never
            // compare equal and reach `Ring::new`, which refuses them.
            if ring.members().eq(sorted.iter().copied()) {
                return ClusterResponse::Ring { epoch: ring.epoch() };
            }
        }
        let epoch = self.ring.as_ref().map_or(0, |ring| ring.epoch()) + 1;
        match Ring::new(epoch, &sorted) {
            Ok(ring) => {
                self.ring = Some(Arc::new(ring));
                ClusterResponse::Ring { epoch }
            }
            Err(error) => ClusterResponse::Refused(error.to_string()),
        }
    }

    fn set_limits(&mut self, config: &LimiterConfig) -> ClusterResponse {
        match &self.limiter {
            None => {
                self.limiter = Some(LimiterState::new(config.clone()));
                ClusterResponse::Limits { accepted: true }
            }
            Some(limiter) => ClusterResponse::Limits { accepted: limiter.config() == config },
        }
    }

    pub fn ring(&self) -> Option<&Arc<Ring>> {
        self.ring.as_ref()
    }

    pub fn limits(&self) -> Option<&LimiterConfig> {
        self.limiter.as_ref().map(LimiterState::config)
    }

    pub fn limiter(&self) -> Option<&LimiterState> {
        self.limiter.as_ref()
    }

    /// The limiter's invariants (the ring's hold by construction).
    pub fn check_invariants(&self) -> Result<(), Violation> {
        self.limiter.as_ref().map_or(Ok(()), LimiterState::check_invariants)
    }
}

/// Ring epochs only move forward, one step per applied ring change: every
/// node routes by the same ring for the same epoch.
pub fn epoch_step(before: u64, after: &ClusterState) -> Result<(), &'static str> {
    let after = after.ring.as_ref().map_or(0, |ring| ring.epoch());
    if after == before || after == before + 1 {
        Ok(())
    } else {
        Err("the ring epoch moved by other than 0 or 1")
    }
}

/// The limiter command a node should learn from an applied request: one the
/// limiter applied. A refused report's values were not admitted, so a node
/// that learned them would admit them without a unit and could break the
/// limit.
pub fn learnable<'a>(request: &'a ClusterRequest, response: &ClusterResponse) -> Option<&'a Command> {
    match (request, response) {
        (ClusterRequest::Limiter(command), ClusterResponse::Limiter(response)) if !matches!(response, Response::Refused(_)) => {
            Some(command)
        }
        _ => None,
    }
}

/// The serialized form of [`ClusterState`], read.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterStateRecord {
    ring: Option<RingRecord>,
    limiter: Option<LimiterState>,
}

/// The serialized form of [`ClusterState`], written: borrows the limiter
/// instead of cloning it.
#[derive(serde::Serialize)]
struct ClusterStateRef<'a> {
    ring: Option<RingRecord>,
    limiter: Option<&'a LimiterState>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RingRecord {
    epoch: u64,
    members: Vec<Member>,
}

impl serde::Serialize for ClusterState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ring = self.ring.as_ref().map(|ring| RingRecord { epoch: ring.epoch(), members: ring.members().collect() });
        ClusterStateRef { ring, limiter: self.limiter.as_ref() }.serialize(serializer)
    }
}

impl TryFrom<ClusterStateRecord> for ClusterState {
    type Error = crate::ring::RingError;

    /// The limiter checked its invariants when it was deserialized.
    fn try_from(record: ClusterStateRecord) -> Result<Self, Self::Error> {
        let ring = record.ring.map(|ring| Ring::new(ring.epoch, &ring.members)).transpose()?;
        Ok(Self { ring: ring.map(Arc::new), limiter: record.limiter })
    }
}

#[cfg(test)]
#[path = "state_test.rs"]
mod state_test;
