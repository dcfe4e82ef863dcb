//! What a node's session actors share, and what ingest, replay, queries and
//! the background tasks reach them through: [`SessionEnv`], grouped by
//! concern so that a caller can be handed only the group it uses.

use std::sync::Arc;

use ractor::ActorCell;

use super::budget::MemoryBudget;
use super::finish::FinishRules;
use super::registry::SessionRegistry;
use super::remote::Remote;
use crate::clock::SharedClock;
use crate::metrics::NodeMetrics;
use crate::store::{SessionStore, Settler, TraceIndex};
use crate::wal::Wal;

/// What session actors share: the node's clock, metrics, memory budget,
/// settings, storage, live actors and the cluster's view of ownership.
#[derive(Debug)]
pub struct SessionEnv {
    pub clock: SharedClock,
    pub metrics: Arc<NodeMetrics>,
    /// Memory held by live session data, against the configured budget.
    pub budget: Arc<MemoryBudget>,
    pub limits: SessionLimits,
    pub storage: SessionStorage,
    /// Live and closing session actors, by session.
    pub registry: Arc<SessionRegistry>,
    /// Parent of every session actor of this node.
    pub supervisor: ActorCell,
    /// Latency baselines for RCA, learned from every stored segment.
    pub baselines: Arc<crate::rca::Baselines>,
    /// Owners of sessions this node does not own (see [`Remote`]).
    pub remote: Remote,
}

/// When segments finish and when ingest sheds load (from the config).
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub rules: FinishRules,
    /// WAL size beyond which ingest sheds load.
    pub wal_max_bytes: u64,
    /// Live session actors at most; beyond it ingest sheds load.
    pub max_live_sessions: u64,
}

/// Where session data is kept, indexed, and let go of.
#[derive(Debug, Clone)]
pub struct SessionStorage {
    /// Every accepted signal, until the segment holding it is stored.
    pub wal: Arc<Wal>,
    /// Where finished segments go (embedded archive or ClickHouse).
    pub store: Arc<dyn SessionStore>,
    /// Source of segment sequence numbers (`generate_id`).
    pub db: sled::Db,
    /// Trace bindings and aliases between sessions.
    pub traces: Arc<TraceIndex>,
    /// Lets go of WAL entries and memory once data is durable elsewhere.
    pub settler: Arc<Settler>,
}
