//! Wires a node together and runs it: storage, session supervisor and
//! registry, WAL replay, the ingest pipeline, the three listeners (OTLP
//! gRPC, OTLP HTTP, API), and the background tasks (finishing sweep,
//! retention, the cardinality limiter's Raft side). Several nodes can run
//! in one process: nothing is global.

mod backend;
mod client_access;
mod faults;
mod probe;
#[cfg(test)]
mod recovery_test;
mod tasks;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ractor::Actor;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use backend::NodeQueries;
pub use faults::Faults;
pub use probe::Probe;

use ollystack_cluster::net::{Acceptor, SharedTransport, TcpTransport, TlsTransport};
use ollystack_cluster::NodeId;

use crate::api::{self, ApiState};
use crate::clock::{SeededRng, SharedClock, TokioClock};
use crate::cluster::{Cluster, ClusterBackend, ClusterLimiter, ClusterService, IngestRouter, JoinMode, Membership, Shipper, StartedRaft};
use crate::config::{Config, StorageChoice};
use crate::ingest::{replay_wal, IngestHandle, Ingestor};
use crate::metrics::NodeMetrics;
use crate::receive;
use crate::session::actor::SessionEnv;
use crate::session::registry::SessionRegistry;
use crate::session::supervisor::{SessionSupervisor, SupervisorMsg};
use crate::session::{MemoryBudget, RemoteOwners};
use crate::store::clickhouse::ClickHouseStore;
use crate::store::{Archive, EmbeddedStore, ExemplarIndex, SessionStore, Settler, ShipmentLog, SledFlusher, TraceIndex};
use crate::wal::Wal;

/// sled's log segment size. Archived session records are tens of KB; with
/// sled's default (512 KiB) the pages holding them were written as separate
/// blob files on every update (perf: ~15% of ingest CPU in open/write).
const SLED_SEGMENT_BYTES: usize = 8 << 20;

/// How long shutdown waits for each server and task to finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot open storage in {path}: {detail} (is another node using this data dir?)")]
    Storage { path: String, detail: String },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind { addr: SocketAddr, what: &'static str, source: std::io::Error },
    #[error("start-up failed: {0}")]
    Startup(String),
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// Injectable sources of time, randomness and network (tests and
/// simulations pass their own).
#[derive(Debug, Clone)]
pub struct Sources {
    pub clock: SharedClock,
    pub rng: Arc<SeededRng>,
    pub transport: SharedTransport,
    /// Deliberately broken behaviours: only in the simulations' build (the
    /// `sim-faults` feature); the release binary has no such switch.
    #[cfg(feature = "sim-faults")]
    pub faults: Faults,
    /// Wraps the session store the node builds (the simulations put a
    /// failing, slow sink around it); `None` in production.
    pub store_layer: Option<StoreLayer>,
    /// Told the WAL's durable file lengths (the simulations' crashes cut
    /// files back to them); `None` in production.
    pub wal_observer: Option<crate::wal::SyncObserver>,
    /// Given the node's sled database, opened without sled's timed
    /// background flush so that only the node's explicit flushes reach its
    /// files (the simulations keep it, and leak it when they crash the
    /// node: the last handle's drop would flush what a crash loses);
    /// `None` in production.
    pub sled_hold: Option<SledHold>,
}

/// Receives a node's sled database (see [`Sources::sled_hold`]).
#[derive(Clone)]
pub struct SledHold(pub Arc<dyn Fn(sled::Db) + Send + Sync>);

impl std::fmt::Debug for SledHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SledHold(..)")
    }
}

/// Wraps a node's [`SessionStore`].
#[derive(Clone)]
pub struct StoreLayer(pub Arc<WrapStore>);

/// A function from the node's store to the store it uses.
pub type WrapStore = dyn Fn(Arc<dyn SessionStore>) -> Arc<dyn SessionStore> + Send + Sync;

impl std::fmt::Debug for StoreLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLayer(..)")
    }
}

impl Sources {
    /// The faults switched on: none outside the simulations' build.
    fn faults(&self) -> Faults {
        #[cfg(feature = "sim-faults")]
        return self.faults;
        #[cfg(not(feature = "sim-faults"))]
        Faults::default()
    }

    pub fn production(seed: Option<u64>) -> Self {
        Self {
            clock: Arc::new(TokioClock::system()),
            rng: Arc::new(seed.map_or_else(SeededRng::from_os, SeededRng::from_seed)),
            transport: TcpTransport::shared(),
            #[cfg(feature = "sim-faults")]
            faults: Faults::default(),
            store_layer: None,
            wal_observer: None,
            sled_hold: None,
        }
    }
}

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

pub async fn start_with(config: Config, sources: Sources) -> Result<RunningNode, NodeError> {
    let dir = config.data_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| NodeError::DataDir { path: dir.display().to_string(), source })?;
    let storage_err = |e: &dyn std::fmt::Display| NodeError::Storage { path: dir.display().to_string(), detail: e.to_string() };
    let db = open_db(&dir.join("db"), config.cache_bytes, sources.sled_hold.is_none()).await.map_err(|e| storage_err(&e))?;
    if let Some(hold) = &sources.sled_hold {
        (hold.0)(db.clone());
    }
    let (wal, replay) = Wal::open(&dir.join("wal"), &db).map_err(|e| storage_err(&e))?;
    if let Some(observer) = &sources.wal_observer {
        wal.set_sync_observer(observer.clone());
    }
    let wal = Arc::new(wal);
    let traces = Arc::new(TraceIndex::open(&db).map_err(|e| storage_err(&e))?);
    let exemplars = Arc::new(ExemplarIndex::open(&db).map_err(|e| storage_err(&e))?);
    let shipments = Arc::new(ShipmentLog::open(&db).map_err(|e| storage_err(&e))?);
    let metrics = Arc::new(NodeMetrics::default());
    metrics.memory_budget_bytes.set(config.memory_budget_bytes);
    let budget = Arc::new(MemoryBudget::new(config.memory_budget_bytes));
    let (supervisor, _) =
        Actor::spawn(None, SessionSupervisor, metrics.clone()).await.map_err(|e| NodeError::Startup(format!("session supervisor: {e}")))?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let settler = Arc::new(Settler { wal: wal.clone(), flusher: Arc::new(SledFlusher::new(db.clone())), budget: budget.clone() });
    let settler_for_env = settler.clone();
    let node_id = node_id(&db, &sources.rng).map_err(|e| storage_err(&e))?;
    let store = match &config.storage {
        StorageChoice::Embedded => {
            let archive = Arc::new(Archive::open(&db).map_err(|e| storage_err(&e))?);
            Arc::new(EmbeddedStore::new(archive, settler, config.archive_retention_ms, config.archive_max_bytes)) as Arc<dyn SessionStore>
        }
        StorageChoice::ClickHouse(settings) => {
            let stop = shutdown_rx.clone();
            let (store, flusher) =
                ClickHouseStore::start(settings.clone(), settler, sources.clock.clone(), metrics.clone(), node_id.clone(), stop);
            tasks.push(flusher);
            Arc::new(store) as Arc<dyn SessionStore>
        }
    };
    let store = match &sources.store_layer {
        Some(layer) => (layer.0)(store),
        None => store,
    };
    let transport = sources.transport.clone();
    let bind = |addr: SocketAddr, what: &'static str| {
        let bound = transport.bind(addr);
        async move { bound.await.map_err(|source| NodeError::Bind { addr, what, source }) }
    };
    let tenant_attribute = config.correlation.tenancy_enabled.then(|| config.correlation.tenant_attribute.clone());
    let gate = client_access::ClientGate::load(&config.access, tenant_attribute)?;
    let grpc = gate.wrap(bind(config.otlp_grpc_addr, "OTLP gRPC").await?)?;
    let http = gate.wrap(bind(config.otlp_http_addr, "OTLP HTTP").await?)?;
    let api_listener = gate.wrap(bind(config.api_addr, "API").await?)?;
    tasks.push(tokio::spawn(gate.clone().reload(sources.clock.clone(), shutdown_rx.clone())));
    let (cluster_transport, identity) = cluster_transport(&config.cluster, &transport, &sources.clock, &shutdown_rx, &mut tasks)?;
    let cluster_listener = cluster_transport.bind(config.cluster.listen_addr).await.map_err(|source| NodeError::Bind {
        addr: config.cluster.listen_addr,
        what: "cluster",
        source,
    })?;
    let local = |l: &dyn Acceptor| l.local_addr().map_err(|e| NodeError::Startup(e.to_string()));
    let (otlp_grpc_addr, otlp_http_addr, api_addr, cluster_addr) =
        (local(grpc.as_ref())?, local(http.as_ref())?, local(api_listener.as_ref())?, local(cluster_listener.as_ref())?);

    for (what, at) in [("OTLP gRPC", otlp_grpc_addr), ("OTLP HTTP", otlp_http_addr), ("API", api_addr)] {
        if !at.ip().is_loopback() && !config.access.is_secure() {
            tracing::warn!(listen = %at, port = what, "--insecure: this port takes calls from other hosts without TLS and tokens");
        }
    }
    if let Some(tokens) = &gate.tokens {
        tracing::info!(tokens = tokens.current().len(), tls = gate.tls.is_some(), "OTLP and API calls need a bearer token");
    }
    let mut cluster_settings = config.cluster.clone();
    cluster_settings.advertise_addr = advertised(&cluster_settings.advertise_addr, cluster_addr);
    let raft_id = NodeId(u64::from_str_radix(&node_id, 16).map_err(|e| NodeError::Startup(format!("node id {node_id}: {e}")))?);
    let StartedRaft { cluster, limiter_events } = crate::cluster::start_raft(
        &db,
        raft_id,
        &cluster_settings,
        advertised(&api_addr.to_string(), api_addr),
        cluster_transport,
        identity,
    )
    .await?;
    tasks.push(tokio::spawn(cluster.clone().track_sync(shutdown_rx.clone())));
    let shipper = Arc::new(Shipper::new(cluster.clone(), metrics.clone(), shipments.clone()));

    let baselines = Arc::new(crate::rca::Baselines::default());
    let env = Arc::new(SessionEnv {
        clock: sources.clock.clone(),
        rules: config.finish,
        budget,
        metrics: metrics.clone(),
        wal,
        wal_max_bytes: config.wal_max_bytes,
        store,
        db: db.clone(),
        traces,
        registry: Arc::new(SessionRegistry::new(config.cluster.rpc_timeout_ms)),
        supervisor: supervisor.get_cell(),
        baselines: baselines.clone(),
        settler: settler_for_env,
        max_live_sessions: config.max_live_sessions,
        remote: std::sync::OnceLock::new(),
    });
    // Before any session actor starts: the supervisor rebuilds failed ones.
    let weak_env = Arc::downgrade(&env);
    supervisor
        .call(|reply| SupervisorMsg::Attach(weak_env, reply), None)
        .await
        .map_err(|e| NodeError::Startup(format!("session supervisor: {e}")))?;
    let (replayed, resumed) =
        replay_wal(&env, &exemplars, &shipments, replay).await.map_err(|e| NodeError::Startup(format!("wal replay: {e}")))?;
    tracing::info!(entries = replayed, hand_offs = resumed.len(), "wal replayed");
    let _ = env.remote.set(shipper.clone() as Arc<dyn RemoteOwners>);
    resumed.resume(&env).await.map_err(|e| NodeError::Startup(format!("resuming hand-offs: {e}")))?;

    let settings = Arc::new(config.correlation.clone());
    let wait_max = cluster.rpc_timeout() * 2;
    let limiter = Arc::new(ClusterLimiter::new(cluster.clone(), config.limits.clone(), sources.clock.clone(), metrics.clone(), wait_max));
    let ingestor = Arc::new(Ingestor::new(
        env.clone(),
        settings.clone(),
        limiter.clone(),
        exemplars.clone(),
        shipments.clone(),
        sources.rng.clone(),
        config.attr_limits,
    ));
    let handle = IngestHandle(ingestor.clone());
    let hand_over_shipper = shipper.clone();
    let first_forward_id = (u64::from(sources.rng.next_u32()) << 32) | u64::from(sources.rng.next_u32());
    let sink = Arc::new(IngestRouter::new(cluster.clone(), handle.clone(), shipper, settings, first_forward_id));
    let ready = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(NodeQueries::new(env.clone(), exemplars.clone(), ready.clone()));
    let shared_storage = matches!(config.storage, StorageChoice::ClickHouse(_));
    let backend = Arc::new(ClusterBackend::new(cluster.clone(), queries.clone(), shared_storage));

    let signal = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let membership = Arc::new(Membership::new(cluster.clone(), sources.clock.clone()));
    let drain_env = env.clone();
    membership.set_drained_check(Box::new(move || {
        let env = drain_env.clone();
        Box::pin(async move { env.registry.counts().await == (0, 0) })
    }));
    // Segments only with the embedded store (a shared store has none of
    // its own: `local_segments` is empty); trace bindings with either.
    if !sources.faults().skip_archive_handover {
        let (store, traces, ingest, cluster, shipper) =
            (env.store.clone(), env.traces.clone(), ingestor.clone(), cluster.clone(), hand_over_shipper.clone());
        let unanswered = Arc::new(crate::cluster::Unanswered::default());
        membership.set_hand_over(Box::new(move || {
            let (store, traces, ingest, cluster, shipper, unanswered) =
                (store.clone(), traces.clone(), ingest.clone(), cluster.clone(), shipper.clone(), unanswered.clone());
            Box::pin(
                async move { crate::cluster::hand_over_archive(store.as_ref(), &traces, &ingest, &cluster, &shipper, &unanswered).await },
            )
        }));
    }
    let cluster_service = ClusterService::new(membership.clone(), handle, queries.clone(), backend.clone(), sources.clock.clone());
    let raft_service = ollystack_cluster::net::RaftService::new(cluster.raft.clone(), cluster.trust());
    let cluster_stop = signal(shutdown_rx.clone());
    tasks.push(tokio::spawn(async move {
        let routes = tonic::service::Routes::new(raft_service.into_server()).add_service(cluster_service.into_server());
        ollystack_cluster::net::serve_grpc(cluster_listener, routes, cluster_stop).await;
    }));
    let mode = match &config.cluster.seed {
        Some(seed) => JoinMode::Join { seed: seed.clone() },
        None => JoinMode::Bootstrap,
    };
    crate::cluster::enter(&cluster, &mode).await?;
    tasks.push(tokio::spawn(membership.upkeep(shutdown_rx.clone())));
    tasks.push(tokio::spawn(limiter.clone().run(limiter_events, shutdown_rx.clone())));
    if !sources.faults().skip_handoff {
        tasks.push(tokio::spawn(tasks::handoff_sweep(env.clone(), cluster.watch(), config.tick_interval_ms, shutdown_rx.clone())));
    }
    if !sources.faults().skip_binding_sync {
        tasks.push(tokio::spawn(crate::cluster::follow_ring(
            env.traces.clone(),
            ingestor.clone(),
            cluster.clone(),
            hand_over_shipper,
            sources.clock.clone(),
            config.tick_interval_ms,
            shutdown_rx.clone(),
        )));
    }

    // Requests are charged against the sessions' memory budget before
    // they are decoded (`receive::memory`).
    let limits = receive::ReceiverLimits { memory: receive::RequestMemory(Some(env.budget.clone())), ..config.receiver.clone() };
    let (grpc_sink, grpc_stop, grpc_limits) = (sink.clone(), signal(shutdown_rx.clone()), limits.clone());
    let faults = sources.faults();
    let grpc_auth = gate.grpc_layer();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = faults::serve_otlp_grpc(grpc, grpc_sink, grpc_limits, grpc_auth, grpc_stop, faults).await {
            tracing::error!(error = %e, "otlp grpc server failed");
        }
    }));
    let http_router = receive::http_router(sink.clone(), limits.clone(), gate.http_layer());
    tasks.push(serve_axum(http, http_router, signal(shutdown_rx.clone())));
    let api_state = ApiState {
        backend,
        tenancy_enabled: config.correlation.tenancy_enabled,
        max_id_length: config.correlation.max_id_length,
        clock: sources.clock.clone(),
        baselines,
        explainer: Arc::new(crate::llm::Explainer::new(config.llm.clone()).map_err(|e| NodeError::Startup(format!("llm client: {e}")))?),
        session_reads: crate::api::session_reads(),
    };
    let api_router = match gate.api_layer() {
        Some(auth) => api::router(api_state).layer(auth),
        None => api::router(api_state),
    };
    tasks.push(serve_axum(api_listener, api_router, signal(shutdown_rx.clone())));
    tasks.push(tokio::spawn(tasks::finishing_sweep(env.clone(), config.tick_interval_ms, shutdown_rx.clone())));
    tasks.push(tokio::spawn(tasks::retention(env.clone(), exemplars, shipments, config.clone(), shutdown_rx.clone())));
    ready.store(true, Ordering::Release);
    tracing::info!(%otlp_grpc_addr, %otlp_http_addr, %api_addr, %cluster_addr, node = %raft_id, data_dir = %dir.display(), "node started");
    let probe = Probe { id: raft_id, cluster: Arc::downgrade(&cluster), env: Arc::downgrade(&env) };
    Ok(RunningNode {
        otlp_grpc_addr,
        otlp_http_addr,
        api_addr,
        cluster_addr,
        cluster,
        metrics,
        limiter,
        probe,
        ingestor,
        shutdown_tx,
        tasks,
        supervisor,
        db,
    })
}

/// The address peers should use: `configured` unless its port is 0 or its
/// host unspecified, where the bound address fills in (127.0.0.1 for an
/// unspecified host).
fn advertised(configured: &str, bound: SocketAddr) -> String {
    let ip = if bound.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { bound.ip() };
    match configured.rsplit_once(':') {
        Some((host, port)) if port != "0" && host != "0.0.0.0" && host != "[::]" => configured.to_owned(),
        _ => SocketAddr::new(ip, bound.port()).to_string(),
    }
}

/// How long a start waits for the data dir's lock. A node restarted in the
/// same process (tests, simulations) can find it still held for a moment by
/// tasks of the previous instance (openraft's storage workers) that are
/// finishing; another process holding it fails after this.
const DB_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// sled's own timed flush (every 500 ms of real time) runs unless
/// `timed_flush` is off.
/// sled's page cache is bounded by `cache_bytes`: its own default, 1 GiB,
/// is outside the memory budget and larger than a small node's budget.
async fn open_db(path: &std::path::Path, cache_bytes: u64, timed_flush: bool) -> Result<sled::Db, sled::Error> {
    let deadline = tokio::time::Instant::now() + DB_LOCK_WAIT;
    let every_ms = if timed_flush { sled::Config::new().flush_every_ms } else { None };
    loop {
        match sled::Config::new().path(path).segment_size(SLED_SEGMENT_BYTES).cache_capacity(cache_bytes).flush_every_ms(every_ms).open() {
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock && tokio::time::Instant::now() < deadline => {
                // Real time too: the lock is held by sled's own threads,
                // which a simulation's paused clock does not wait for (a
                // restart under load once found it still held).
                std::thread::sleep(std::time::Duration::from_millis(20));
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// This node's identity, created once per data dir.
fn node_id(db: &sled::Db, rng: &SeededRng) -> Result<String, sled::Error> {
    let meta = db.open_tree("meta")?;
    if let Some(v) = meta.get("node_id")? {
        return Ok(String::from_utf8_lossy(&v).into_owned());
    }
    let id = format!("{:08x}{:08x}", rng.next_u32(), rng.next_u32());
    meta.insert("node_id", id.as_bytes())?;
    // Durable before anything uses it (once per data dir, before any other
    // work runs: the single flush cannot collide with another).
    meta.flush()?;
    Ok(id)
}

/// The network node-to-node calls use, and this node's identity on it:
/// mutual TLS when `[tls]` is set (its files re-read when they change),
/// else plain TCP (loopback, or `--insecure`, which the config checked).
fn cluster_transport(
    settings: &crate::config::ClusterSettings,
    transport: &SharedTransport,
    clock: &SharedClock,
    stop: &watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<(SharedTransport, String), NodeError> {
    let Some(files) = &settings.tls else {
        if !settings.listen_addr.ip().is_loopback() {
            tracing::warn!(
                listen = %settings.listen_addr,
                "--insecure: the cluster port takes calls without TLS; whoever reaches it owns the cluster"
            );
        }
        return Ok((transport.clone(), String::new()));
    };
    let tls = TlsTransport::new(transport.clone(), files.clone()).map_err(|e| NodeError::Startup(format!("cluster TLS: {e}")))?;
    tracing::info!(identity = %tls.identity(), "cluster port uses mutual TLS");
    tasks.push(tokio::spawn(tasks::reload_tls(tls.clone(), clock.clone(), stop.clone())));
    let identity = tls.identity().to_string();
    Ok((tls, identity))
}

fn serve_axum(
    listener: Box<dyn Acceptor>,
    router: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(ollystack_cluster::net::serve_http(listener, router, ollystack_cluster::net::HttpBounds::default(), stop))
}
