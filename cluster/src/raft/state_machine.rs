//! The state machine: openraft's `RaftStateMachine` over a [`ClusterState`]
//! held in memory, with its snapshots persisted in sled.
//!
//! Persistence: the state is small (rings and limiter counts), so `apply`
//! changes it in memory only, and every snapshot (built here or installed
//! from the leader) is written to tree `raft_sm` and flushed before it is
//! used: key `meta` holds the snapshot's metadata (JSON), key `data` the
//! state (JSON), both written in one transaction. On restart the state is
//! the last snapshot's; openraft then re-applies the committed entries after
//! it (the log store persists the committed log ID, and never purges past
//! a persisted snapshot). Persisting on every apply would rewrite the whole
//! limiter state per entry for no gain.
//!
//! After every `apply` and snapshot install the store publishes a
//! [`ClusterView`] on a watch channel, and sends the limiter commands that
//! took effect, in log order, on a bounded broadcast channel.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use tokio::sync::{broadcast, watch};

use super::codec::encode;
use super::snapshot_store::{read_snapshot, write_snapshot, Overwrite};
use super::state::{learnable, ClusterState};
use super::types::{ClusterResponse, ClusterView, NodeInfo, RaftId, TypeConfig};
use super::RaftStoreError;
use crate::admission::Command;

/// Capacity of the limiter-event channel: a receiver that falls this far
/// behind sees `Lagged` and misses events (it then knows fewer values, which
/// costs lease units, never the limit).
pub const LIMITER_EVENTS_CAPACITY: usize = 4096;

/// What the state machine has applied.
#[derive(Clone, Debug, Default)]
struct Applied {
    last_applied: Option<LogId<RaftId>>,
    membership: StoredMembership<RaftId, NodeInfo>,
    state: ClusterState,
}

impl Applied {
    fn view(&self) -> ClusterView {
        ClusterView {
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            ring: self.state.ring().cloned(),
            limits: self.state.limits().cloned(),
        }
    }
}

/// The state machine store. Not `Clone`: openraft owns it once
/// `Raft::new` has it; take [`view`](Self::view) and
/// [`limiter_events`](Self::limiter_events) receivers before.
pub struct StateMachineStore {
    applied: Applied,
    /// Tree `raft_sm`: the current snapshot.
    snapshots: sled::Tree,
    view: watch::Sender<Arc<ClusterView>>,
    limiter_events: broadcast::Sender<Command>,
    /// Snapshots built since the process started, for unique snapshot IDs.
    builds: u64,
}

impl StateMachineStore {
    /// Opens the store at the last persisted snapshot.
    pub(super) fn open(db: &sled::Db) -> Result<Self, RaftStoreError> {
        let snapshots = db.open_tree("raft_sm")?;
        let applied = match read_snapshot(&snapshots)? {
            Some((meta, data)) => {
                let state = serde_json::from_slice(&data).map_err(|error| RaftStoreError::CorruptSnapshot(error.to_string()))?;
                Applied { last_applied: meta.last_log_id, membership: meta.last_membership, state }
            }
            None => Applied::default(),
        };
        tracing::info!(last_applied = ?applied.last_applied, "raft state machine opened");
        let (view, _) = watch::channel(Arc::new(applied.view()));
        let (limiter_events, _) = broadcast::channel(LIMITER_EVENTS_CAPACITY);
        Ok(Self { applied, snapshots, view, limiter_events, builds: 0 })
    }

    /// The cluster view, updated after every apply and snapshot install.
    pub fn view(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.view.subscribe()
    }

    /// Applied limiter commands, in log order, for `NodeLimiter::learn`:
    /// only those the limiter applied (not refused ones), from the time of
    /// this call. Bounded ([`LIMITER_EVENTS_CAPACITY`]): a lagging receiver
    /// sees `Lagged`. Replayed entries are sent again at startup, which
    /// `learn` tolerates.
    pub fn limiter_events(&self) -> broadcast::Receiver<Command> {
        self.limiter_events.subscribe()
    }

    fn publish(&self) {
        self.view.send_replace(Arc::new(self.applied.view()));
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<RaftId>>, StoredMembership<RaftId, NodeInfo>), StorageError<RaftId>> {
        Ok((self.applied.last_applied, self.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ClusterResponse>, StorageError<RaftId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            self.applied.last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => ClusterResponse::Empty,
                EntryPayload::Normal(request) => {
                    let response = self.applied.state.apply(&request);
                    if let Some(command) = learnable(&request, &response) {
                        // An error only means nobody listens.
                        let _ = self.limiter_events.send(command.clone());
                    }
                    response
                }
                EntryPayload::Membership(membership) => {
                    self.applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                    ClusterResponse::Empty
                }
            };
            responses.push(response);
        }
        self.publish();
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.builds += 1;
        SnapshotBuilder { applied: self.applied.clone(), snapshots: self.snapshots.clone(), build: self.builds }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<RaftId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<RaftId, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<RaftId>> {
        let data = snapshot.into_inner();
        let state: ClusterState =
            serde_json::from_slice(&data).map_err(|error| StorageIOError::read_snapshot(Some(meta.signature()), &error))?;
        write_snapshot(&self.snapshots, meta, &data, Overwrite::Always).await?;
        tracing::info!(snapshot_id = %meta.snapshot_id, last_log_id = ?meta.last_log_id, "raft snapshot installed");
        self.applied = Applied { last_applied: meta.last_log_id, membership: meta.last_membership.clone(), state };
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<RaftId>> {
        let snapshot = read_snapshot(&self.snapshots).map_err(|error| StorageIOError::read_snapshot(None, &error))?;
        Ok(snapshot.map(|(meta, data)| Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}

/// Builds a snapshot of the state as it was when the builder was made, so
/// applying goes on meanwhile.
pub struct SnapshotBuilder {
    applied: Applied,
    snapshots: sled::Tree,
    /// This build's number, part of the snapshot ID.
    build: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<RaftId>> {
        let last_log_id = self.applied.last_applied;
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, self.build),
            None => format!("none-{}", self.build),
        };
        let meta = SnapshotMeta { last_log_id, last_membership: self.applied.membership.clone(), snapshot_id };
        let data = encode(&self.applied.state, |error| StorageIOError::write_snapshot(None, error))?;
        // A snapshot installed meanwhile is newer: keep it.
        write_snapshot(&self.snapshots, &meta, &data, Overwrite::IfNewer).await?;
        tracing::info!(snapshot_id = %meta.snapshot_id, data_bytes = data.len(), "raft snapshot built");
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}
