//! Start-up steps for the session environment: the supervisor of every
//! session actor (first: actors start under it), the environment they
//! share, and the WAL replayed into them.

use std::sync::Arc;

use ractor::{Actor, ActorRef};

use super::error::NodeError;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::ingest::replay_wal;
use crate::metrics::NodeMetrics;
use crate::session::registry::SessionRegistry;
use crate::session::supervisor::{SessionSupervisor, SupervisorMsg};
use crate::session::{MemoryBudget, Remote, RemoteOwners, SessionEnv, SessionLimits, SessionStorage};
use crate::store::{ExemplarIndex, ShipmentLog};
use crate::wal::Replay;

/// The parent of every session actor of the node.
pub(super) async fn spawn_supervisor(metrics: Arc<NodeMetrics>) -> Result<ActorRef<SupervisorMsg>, NodeError> {
    let (supervisor, _) =
        Actor::spawn(None, SessionSupervisor, metrics).await.map_err(|e| NodeError::Startup(format!("session supervisor: {e}")))?;
    Ok(supervisor)
}

/// The environment session actors share. `remote` answers for sessions
/// other nodes own once the replay is over (see [`replay`]).
pub(super) fn session_env(
    config: &Config,
    clock: SharedClock,
    metrics: Arc<NodeMetrics>,
    budget: Arc<MemoryBudget>,
    supervisor: &ActorRef<SupervisorMsg>,
    storage: SessionStorage,
    remote: Arc<dyn RemoteOwners>,
) -> Arc<SessionEnv> {
    // A hand-off note outlives the longest a query coordinator can take
    // between asking the new owner and asking this node: the owner's own
    // answer (its actors' snapshots) and one RPC.
    let moved_note_ms = config.cluster.rpc_timeout_ms + crate::session::queries::SNAPSHOTS_TIMEOUT.as_millis() as u64;
    let registry = SessionRegistry::new(moved_note_ms, storage.traces.clone(), storage.store.clone(), metrics.clone());
    Arc::new(SessionEnv {
        clock,
        metrics,
        budget,
        limits: SessionLimits { rules: config.finish, wal_max_bytes: config.wal_max_bytes, max_live_sessions: config.max_live_sessions },
        storage,
        registry: Arc::new(registry),
        supervisor: supervisor.get_cell(),
        baselines: Arc::new(crate::rca::Baselines::default()),
        remote: Remote::new(remote),
    })
}

/// Hands the supervisor the environment (it rebuilds failed actors from
/// it), replays the WAL into session actors with every session local, then
/// lets the cluster decide ownership and resumes the hand-offs a stop
/// interrupted.
pub(super) async fn replay(
    env: &Arc<SessionEnv>,
    supervisor: &ActorRef<SupervisorMsg>,
    replay: Replay,
    exemplars: &ExemplarIndex,
    shipments: &ShipmentLog,
) -> Result<(), NodeError> {
    // Before any session actor starts: the supervisor rebuilds failed ones.
    let weak_env = Arc::downgrade(env);
    supervisor
        .call(|reply| SupervisorMsg::Attach(weak_env, reply), None)
        .await
        .map_err(|e| NodeError::Startup(format!("session supervisor: {e}")))?;
    let (replayed, resumed) =
        replay_wal(env, exemplars, shipments, replay).await.map_err(|e| NodeError::Startup(format!("wal replay: {e}")))?;
    tracing::info!(entries = replayed, hand_offs = resumed.len(), "wal replayed");
    env.remote.open();
    resumed.resume(env).await.map_err(|e| NodeError::Startup(format!("resuming hand-offs: {e}")))
}
