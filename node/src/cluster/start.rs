//! Starting this node's Raft: open the store in the node's sled database,
//! start openraft with the configured timeouts, then — once the node's
//! cluster listener is up — bootstrap a one-node cluster, join through a
//! seed, or simply resume (a data dir that already holds Raft state).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ollystack_cluster::admission::Command;
use ollystack_cluster::net::{GrpcNetwork, SharedTransport};
use ollystack_cluster::raft::{self, NodeInfo, Raft};
use ollystack_cluster::NodeId;
use tokio::sync::broadcast;

use super::membership::join_via_seed;
use super::{Cluster, ClusterError};
use crate::config::ClusterSettings;

/// How a starting node enters the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinMode {
    /// `ollystack-node start`: a fresh data dir bootstraps a one-node
    /// cluster; a used one resumes.
    Bootstrap,
    /// `ollystack-node join --seed HOST:PORT`: a fresh data dir asks the
    /// cluster (through the seed) to add this node; a used one resumes.
    Join { seed: String },
}

/// How long a joining node keeps asking its seed before giving up.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);

/// A started Raft: the cluster handle, and the limiter commands its state
/// machine applies (taken before `Raft::new` consumes the state machine).
pub struct StartedRaft {
    pub cluster: Arc<Cluster>,
    /// Applied limiter commands, in log order, for [`super::ClusterLimiter::run`].
    pub limiter_events: broadcast::Receiver<Command>,
}

/// Opens the Raft store and starts Raft (not yet bootstrapped or joined).
pub async fn start_raft(
    db: &sled::Db,
    id: NodeId,
    settings: &ClusterSettings,
    api_addr: String,
    transport: SharedTransport,
    identity: String,
) -> Result<StartedRaft, ClusterError> {
    let (log_store, state_machine) = raft::open(db).map_err(|e| ClusterError::Raft(e.to_string()))?;
    let view = state_machine.view();
    let limiter_events = state_machine.limiter_events();
    let config = openraft::Config {
        cluster_name: "ollystack".into(),
        heartbeat_interval: settings.heartbeat_interval_ms,
        election_timeout_min: settings.election_timeout_ms,
        election_timeout_max: settings.election_timeout_ms * 2,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1_000),
        max_in_snapshot_log_to_keep: 1_000,
        ..Default::default()
    }
    .validate()
    .map_err(|e| ClusterError::Raft(format!("raft config: {e}")))?;
    let raft = Raft::new(id.0, Arc::new(config), GrpcNetwork::new(transport.clone()), log_store, state_machine)
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
    let info = NodeInfo { cluster_addr: settings.advertise_addr.clone(), api_addr, weight: settings.weight, identity };
    Ok(StartedRaft { cluster: Arc::new(Cluster::new(id, raft, settings.clone(), info, view, transport)), limiter_events })
}

/// Bootstraps, joins or resumes. Call once the cluster listener serves.
pub async fn enter(cluster: &Cluster, mode: &JoinMode) -> Result<(), ClusterError> {
    let initialized = cluster.raft.is_initialized().await.map_err(|e| ClusterError::Raft(e.to_string()))?;
    if initialized {
        tracing::info!(node = %cluster.id, "resuming cluster membership from the data dir");
        return Ok(());
    }
    match mode {
        JoinMode::Bootstrap => {
            let members = BTreeMap::from([(cluster.id.0, cluster.info.clone())]);
            cluster.raft.initialize(members).await.map_err(|e| ClusterError::Raft(e.to_string()))?;
            tracing::info!(node = %cluster.id, "bootstrapped a one-node cluster");
            Ok(())
        }
        JoinMode::Join { seed } => {
            let deadline = tokio::time::Instant::now() + JOIN_DEADLINE;
            let mut backoff = Duration::from_millis(200);
            loop {
                match join_via_seed(
                    &cluster.transport,
                    seed,
                    cluster.settings.join_token.expose(),
                    cluster.id,
                    &cluster.info,
                    cluster.rpc_timeout() * 10,
                )
                .await
                {
                    Ok(epoch) => {
                        tracing::info!(node = %cluster.id, %seed, ring_epoch = epoch, "joined the cluster");
                        return Ok(());
                    }
                    // A wrong token will not get better by retrying.
                    Err(e @ ClusterError::Refused(_)) => return Err(e),
                    Err(e) if tokio::time::Instant::now() + backoff > deadline => return Err(e),
                    Err(e) => {
                        tracing::warn!(%seed, error = %e, "join failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
        }
    }
}
