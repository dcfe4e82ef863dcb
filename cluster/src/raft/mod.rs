//! The cluster's Raft store: openraft's log store and state machine over
//! the node's sled database, and the types the node's Raft codes against.
//!
//! * `types`: the type config ([`TypeConfig`]), [`ClusterRequest`] and
//!   [`ClusterResponse`] (what the log carries), [`ClusterView`] (what the
//!   node reads after each apply).
//! * `state`: [`ClusterState`], the pure replicated state (ring and
//!   cardinality limiter) and how a request changes it.
//! * `log_store`: [`LogStore`], the log and vote in trees `raft_log` and
//!   `raft_meta`.
//! * `state_machine`: [`StateMachineStore`], the state in memory and its
//!   snapshots in tree `raft_sm` (`snapshot_store`); see its docs for how a
//!   restart rebuilds it.
//!
//! [`open`] opens both from a `sled::Db` the node already uses for its own
//! trees. openraft's storage test suite runs against them (`store_test`).

// openraft's storage traits return its `StorageError` (224 bytes) by value;
// the helpers here build those errors, and boxing them would only add a
// conversion at every trait method.
#![allow(clippy::result_large_err)]

mod codec;
mod log_store;
pub mod runtime;
mod snapshot_store;
mod state;
mod state_machine;
mod types;

pub use log_store::LogStore;
pub use state::{learnable, ClusterState};
pub use state_machine::{SnapshotBuilder, StateMachineStore, LIMITER_EVENTS_CAPACITY};
pub use types::{ClusterRequest, ClusterResponse, ClusterView, NodeInfo, Raft, RaftId, TypeConfig};

/// Why the Raft store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RaftStoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("the stored raft snapshot is corrupt: {0}")]
    CorruptSnapshot(String),
}

/// Opens the log store and the state machine on `db` (trees `raft_log`,
/// `raft_meta`, `raft_sm`); the state machine starts at the last persisted
/// snapshot, and openraft re-applies committed entries after it.
pub fn open(db: &sled::Db) -> Result<(LogStore, StateMachineStore), RaftStoreError> {
    Ok((LogStore::open(db)?, StateMachineStore::open(db)?))
}

#[cfg(test)]
mod store_test;
