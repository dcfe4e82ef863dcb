//! Wires a node together and runs it. [`start_with`] runs the steps, each
//! a function that takes what it needs and returns what it built:
//!
//! | step | file |
//! |---|---|
//! | storage: data dir, sled, WAL, indexes, node ID, the session store | `storage.rs` |
//! | client listeners bound (OTLP gRPC, OTLP HTTP, API) | `listeners.rs` |
//! | cluster listener and Raft | `peers.rs` |
//! | session supervisor, environment, WAL replay | `sessions.rs` |
//! | ingest routing, query backends; cluster service, join, upkeep | `peers.rs` |
//! | client listeners served; finishing sweep, retention | `listeners.rs`, `tasks.rs` |
//!
//! Several nodes can run in one process: nothing is global.

mod background;
mod client_access;
mod error;
mod faults;
mod listeners;
mod peers;
mod probe;
#[cfg(test)]
mod recovery_test;
mod sessions;
mod sources;
mod storage;
mod tasks;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::NodeError;
pub use faults::Faults;
pub use probe::Probe;
pub use sources::{SledHold, Sources, StoreLayer, WrapStore};

use crate::cluster::{Cluster, ClusterLimiter, Shipper};
use crate::config::Config;
use crate::ingest::Ingestor;
use crate::metrics::NodeMetrics;
use crate::session::supervisor::SupervisorMsg;
use crate::session::{MemoryBudget, SessionStorage};
use crate::store::{Settler, SledFlusher};
use background::Background;
use listeners::{ApiParts, ClientListeners};
use peers::Routing;
use storage::Storage;

/// How long shutdown waits for each server and task to finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A started node.
#[derive(Debug)]
pub struct RunningNode {
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub cluster_addr: SocketAddr,
    pub cluster: Arc<Cluster>,
    pub metrics: Arc<NodeMetrics>,
    /// The cardinality limiter ingest asks (benchmarks drive it directly).
    pub limiter: Arc<ClusterLimiter>,
    pub probe: Probe,
    ingestor: Arc<Ingestor>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    supervisor: ractor::ActorRef<SupervisorMsg>,
    db: sled::Db,
}

impl RunningNode {
    /// Resolves once this node left the cluster (`ollystack-node leave`).
    pub async fn removed_from_cluster(&self) {
        self.cluster.has_left().await
    }

    /// Stops accepting, closes listeners and background tasks, syncs
    /// storage. Live sessions stay in the WAL and resume at the next start.
    pub async fn shutdown(self) {
        self.ingestor.stop_accepting();
        let _ = self.shutdown_tx.send(true);
        // Servers wait for open connections to close; an exporter that keeps
        // its connection open must not hold shutdown forever.
        for mut t in self.tasks {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut t).await.is_err() {
                t.abort();
                let _ = t.await;
            }
        }
        // Session actors stop with their data still in the WAL; stopping
        // them drops the last handles on storage, so the data dir can be
        // opened again (by a restart in the same process, too).
        let cell = self.supervisor.get_cell();
        cell.stop_children_and_wait(None, Some(SHUTDOWN_GRACE)).await;
        let _ = cell.stop_and_wait(None, Some(SHUTDOWN_GRACE)).await;
        if let Err(e) = self.cluster.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
        drop(self.ingestor);
        let _ = self.db.flush_async().await;
    }
}

/// Starts a node with production time and randomness.
pub async fn start(config: Config) -> Result<RunningNode, NodeError> {
    let sources = Sources::production(config.seed);
    start_with(config, sources).await
}

/// Starts a node with the given sources of time, randomness and network.
/// The steps' order is fixed: they spawn background tasks, bind ports,
/// read the clock and draw from `sources.rng`, so the order is part of
/// what a simulation's seed replays.
pub async fn start_with(config: Config, sources: Sources) -> Result<RunningNode, NodeError> {
    let storage = Storage::open(&config, &sources).await?;
    let metrics = Arc::new(NodeMetrics::new());
    metrics.memory_budget_bytes.set(config.memory_budget_bytes);
    let budget = Arc::new(MemoryBudget::new(config.memory_budget_bytes));
    let supervisor = sessions::spawn_supervisor(metrics.clone()).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut background = Background::new(shutdown_rx);
    let flusher = Arc::new(SledFlusher::new(storage.db.clone()));
    let settler = Arc::new(Settler { wal: storage.wal.clone(), flusher, budget: budget.clone() });
    let node_id = storage.node_id(&sources.rng)?;
    let store = storage.session_store(&config, &sources, settler.clone(), &metrics, node_id, &mut background)?;
    let listeners = ClientListeners::bind(&config, &sources, &mut background).await?;
    let member = peers::start_raft(&config, &sources, &storage.db, node_id, listeners.api_addr, &mut background).await?;
    let shipper = Arc::new(Shipper::new(member.cluster.clone(), metrics.clone(), storage.shipments.clone()));

    let Storage { dir, db, wal, replay, traces, exemplars, shipments } = storage;
    let session_storage = SessionStorage { wal, store, db: db.clone(), traces, settler };
    let env = sessions::session_env(&config, sources.clock.clone(), metrics.clone(), budget, &supervisor, session_storage, shipper.clone());
    sessions::replay(&env, &supervisor, replay, &exemplars, &shipments).await?;

    let routing = Routing::new(&config, &sources, &member.cluster, &env, shipper.clone(), &exemplars, &shipments);
    let (id, cluster, cluster_addr) = (member.id, member.cluster.clone(), member.addr);
    peers::join(&config, &sources, member, &env, &routing, shipper, &mut background).await?;
    let api = ApiParts { backend: routing.backend.clone(), baselines: env.baselines.clone() };
    let (otlp_grpc_addr, otlp_http_addr, api_addr) = (listeners.otlp_grpc_addr, listeners.otlp_http_addr, listeners.api_addr);
    listeners.serve(&config, &sources, routing.sink.clone(), env.budget.clone(), api, &mut background)?;
    background.spawn(tasks::finishing_sweep(env.clone(), config.tick_interval_ms, background.stop()));
    background.spawn(tasks::retention(env.clone(), exemplars, shipments, config.clone(), background.stop()));

    routing.ready.store(true, Ordering::Release);
    tracing::info!(%otlp_grpc_addr, %otlp_http_addr, %api_addr, %cluster_addr, node = %id, data_dir = %dir.display(), "node started");
    let probe = Probe { id, cluster: Arc::downgrade(&cluster), env: Arc::downgrade(&env) };
    Ok(RunningNode {
        otlp_grpc_addr,
        otlp_http_addr,
        api_addr,
        cluster_addr,
        cluster,
        metrics,
        limiter: routing.limiter,
        probe,
        ingestor: routing.ingestor,
        shutdown_tx,
        tasks: background.into_tasks(),
        supervisor,
        db,
    })
}
