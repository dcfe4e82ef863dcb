//! Start-up steps for this node's part in the cluster: the transport and
//! listener for node-to-node calls and Raft (early, so the session
//! environment can ship to owners); ingest routing and the query backends
//! (once sessions are replayed); then the cluster service, joining, and
//! the cluster's background work.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ollystack_cluster::net::{Acceptor, SharedTransport, TlsTransport};
use ollystack_cluster::NodeId;
use tokio::sync::broadcast;

use super::background::Background;
use super::error::NodeError;
use super::listeners::local_addr;
use super::sources::Sources;
use super::tasks;
use crate::cluster::{Cluster, ClusterBackend, ClusterLimiter, ClusterService, IngestRouter, JoinMode, Membership, Shipper, StartedRaft};
use crate::config::{ClusterSettings, Config, StorageChoice};
use crate::ingest::{IngestHandle, Ingestor};
use crate::session::{NodeQueries, SessionEnv};
use crate::store::{ExemplarIndex, ShipmentLog};

/// This node's Raft member, started, and the listener its peers call.
pub(super) struct RaftMember {
    pub id: NodeId,
    pub cluster: Arc<Cluster>,
    /// Applied limiter commands, for the cardinality limiter's task.
    pub limiter_events: broadcast::Receiver<ollystack_cluster::admission::Command>,
    pub listener: Box<dyn Acceptor>,
    pub addr: SocketAddr,
}

/// Binds the cluster listener and starts Raft on `db`, advertising
/// `api_addr` as this node's API. Keeping the cluster's view in sync joins
/// `background`.
pub(super) async fn start_raft(
    config: &Config,
    sources: &Sources,
    db: &sled::Db,
    id: NodeId,
    api_addr: SocketAddr,
    background: &mut Background,
) -> Result<RaftMember, NodeError> {
    let (transport, identity) = cluster_transport(&config.cluster, sources, background)?;
    let listen = config.cluster.listen_addr;
    let listener = transport.bind(listen).await.map_err(|source| NodeError::Bind { addr: listen, what: "cluster", source })?;
    let addr = local_addr(listener.as_ref())?;
    let mut settings = config.cluster.clone();
    settings.advertise_addr = advertised(&settings.advertise_addr, addr);
    let api = advertised(&api_addr.to_string(), api_addr);
    let StartedRaft { cluster, limiter_events } = crate::cluster::start_raft(db, id, &settings, api, transport, identity).await?;
    background.spawn(cluster.clone().track_sync(background.stop()));
    Ok(RaftMember { id, cluster, limiter_events, listener, addr })
}

/// The network node-to-node calls use, and this node's identity on it:
/// mutual TLS when `[tls]` is set (its files re-read by a task that joins
/// `background`), else plain TCP (loopback, or `--insecure`, which the
/// config checked).
fn cluster_transport(
    settings: &ClusterSettings,
    sources: &Sources,
    background: &mut Background,
) -> Result<(SharedTransport, String), NodeError> {
    let Some(files) = &settings.tls else {
        if !settings.listen_addr.ip().is_loopback() {
            tracing::warn!(
                listen = %settings.listen_addr,
                "--insecure: the cluster port takes calls without TLS; whoever reaches it owns the cluster"
            );
        }
        return Ok((sources.transport.clone(), String::new()));
    };
    let tls = TlsTransport::new(sources.transport.clone(), files.clone()).map_err(|e| NodeError::Startup(format!("cluster TLS: {e}")))?;
    tracing::info!(identity = %tls.identity(), "cluster port uses mutual TLS");
    background.spawn(tasks::reload_tls(tls.clone(), sources.clock.clone(), background.stop()));
    let identity = tls.identity().to_string();
    Ok((tls, identity))
}

/// Where signals and queries go: ingest behind the cardinality limiter,
/// the router that sends each part of a batch to its owner, and the local
/// and cluster-wide query backends.
pub(super) struct Routing {
    pub limiter: Arc<ClusterLimiter>,
    pub ingestor: Arc<Ingestor>,
    pub handle: IngestHandle,
    pub sink: Arc<IngestRouter>,
    pub queries: Arc<NodeQueries>,
    pub backend: Arc<ClusterBackend>,
    /// Set once the node is fully started (`/readyz`).
    pub ready: Arc<AtomicBool>,
}

impl Routing {
    pub fn new(
        config: &Config,
        sources: &Sources,
        cluster: &Arc<Cluster>,
        env: &Arc<SessionEnv>,
        shipper: Arc<Shipper>,
        exemplars: &Arc<ExemplarIndex>,
        shipments: &Arc<ShipmentLog>,
    ) -> Self {
        let settings = Arc::new(config.correlation.clone());
        let wait_max = cluster.rpc_timeout() * 2;
        let limiter =
            Arc::new(ClusterLimiter::new(cluster.clone(), config.limits.clone(), sources.clock.clone(), env.metrics.clone(), wait_max));
        let ingestor = Arc::new(Ingestor::new(
            env.clone(),
            settings.clone(),
            limiter.clone(),
            exemplars.clone(),
            shipments.clone(),
            config.attr_limits,
        ));
        let handle = IngestHandle(ingestor.clone());
        let first_forward_id = (u64::from(sources.rng.next_u32()) << 32) | u64::from(sources.rng.next_u32());
        let sink = Arc::new(IngestRouter::new(cluster.clone(), handle.clone(), shipper, settings, first_forward_id));
        let ready = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(NodeQueries::new(env.clone(), exemplars.clone(), ready.clone()));
        let shared_storage = matches!(config.storage, StorageChoice::ClickHouse(_));
        let backend = Arc::new(ClusterBackend::new(cluster.clone(), queries.clone(), shared_storage));
        Self { limiter, ingestor, handle, sink, queries, backend, ready }
    }
}

/// Serves the cluster and Raft services on the member's listener, enters
/// the cluster (bootstrap or join), and starts the cluster's background
/// work: membership upkeep, the limiter's Raft side, the hand-off sweep
/// and trace bindings following the ring (each joins `background`).
pub(super) async fn join(
    config: &Config,
    sources: &Sources,
    member: RaftMember,
    env: &Arc<SessionEnv>,
    routing: &Routing,
    shipper: Arc<Shipper>,
    background: &mut Background,
) -> Result<(), NodeError> {
    let RaftMember { cluster, limiter_events, listener, .. } = member;
    let membership = Arc::new(membership(sources, &cluster, env, &routing.ingestor, &shipper));
    let cluster_service = ClusterService::new(
        membership.clone(),
        routing.handle.clone(),
        routing.queries.clone(),
        routing.backend.clone(),
        sources.clock.clone(),
    );
    let raft_service = ollystack_cluster::net::RaftService::new(cluster.raft.clone(), cluster.trust());
    let cluster_stop = background.signal();
    background.spawn(async move {
        let routes = tonic::service::Routes::new(raft_service.into_server()).add_service(cluster_service.into_server());
        ollystack_cluster::net::serve_grpc(listener, routes, cluster_stop).await;
    });
    let mode = match &config.cluster.seed {
        Some(seed) => JoinMode::Join { seed: seed.clone() },
        None => JoinMode::Bootstrap,
    };
    crate::cluster::enter(&cluster, &mode).await?;
    background.spawn(membership.upkeep(background.stop()));
    background.spawn(routing.limiter.clone().run(limiter_events, background.stop()));
    if !sources.faults().skip_handoff {
        background.spawn(tasks::handoff_sweep(env.clone(), cluster.watch(), config.tick_interval_ms, background.stop()));
    }
    if !sources.faults().skip_binding_sync {
        background.spawn(crate::cluster::follow_ring(
            env.storage.traces.clone(),
            routing.ingestor.clone(),
            cluster.clone(),
            shipper,
            sources.clock.clone(),
            config.tick_interval_ms,
            background.stop(),
        ));
    }
    Ok(())
}

/// Membership, with what a leave of this node needs: whether its live
/// sessions have moved, and how to move its finished segments (segments
/// only with the embedded store, whose shared counterpart has none of its
/// own: `local_segments` is empty; trace bindings with either).
fn membership(
    sources: &Sources,
    cluster: &Arc<Cluster>,
    env: &Arc<SessionEnv>,
    ingest: &Arc<Ingestor>,
    shipper: &Arc<Shipper>,
) -> Membership {
    let drain_env = env.clone();
    let drained: crate::cluster::DrainedCheck = Box::new(move || {
        let env = drain_env.clone();
        Box::pin(async move { env.registry.counts().await == (0, 0) })
    });
    let hand_over = (!sources.faults().skip_archive_handover).then(|| {
        let (store, traces, ingest, cluster, shipper) =
            (env.storage.store.clone(), env.storage.traces.clone(), ingest.clone(), cluster.clone(), shipper.clone());
        let unanswered = Arc::new(crate::cluster::Unanswered::default());
        Box::new(move || {
            let (store, traces, ingest, cluster, shipper, unanswered) =
                (store.clone(), traces.clone(), ingest.clone(), cluster.clone(), shipper.clone(), unanswered.clone());
            Box::pin(
                async move { crate::cluster::hand_over_archive(store.as_ref(), &traces, &ingest, &cluster, &shipper, &unanswered).await },
            ) as futures::future::BoxFuture<'static, Result<u64, crate::cluster::ClusterError>>
        }) as crate::cluster::HandOver
    });
    Membership::new(cluster.clone(), sources.clock.clone(), drained, hand_over)
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
