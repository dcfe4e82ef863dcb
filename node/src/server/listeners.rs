//! Start-up steps for the client-facing listeners: OTLP gRPC, OTLP HTTP and
//! the API. They are bound early (so a bad address fails the start before
//! anything runs, and the cluster can advertise the API's address) and
//! served last, once everything behind them is up.

use std::net::SocketAddr;
use std::sync::Arc;

use ollystack_cluster::net::Acceptor;

use super::background::Background;
use super::client_access::ClientGate;
use super::error::NodeError;
use super::faults;
use super::sources::Sources;
use crate::api::{self, ApiState};
use crate::cluster::{ClusterBackend, IngestRouter};
use crate::config::Config;
use crate::receive;
use crate::session::MemoryBudget;

/// The client listeners, bound, with what authenticates their callers.
pub(super) struct ClientListeners {
    gate: ClientGate,
    grpc: Box<dyn Acceptor>,
    http: Box<dyn Acceptor>,
    api: Box<dyn Acceptor>,
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub api_addr: SocketAddr,
}

/// What the API serves from, besides the config and the clock.
pub(super) struct ApiParts {
    pub backend: Arc<ClusterBackend>,
    pub baselines: Arc<crate::rca::Baselines>,
}

impl ClientListeners {
    /// Loads the TLS and tokens files (re-read by a task that joins
    /// `background`) and binds the three listeners.
    pub async fn bind(config: &Config, sources: &Sources, background: &mut Background) -> Result<Self, NodeError> {
        let transport = sources.transport.clone();
        let bind = |addr: SocketAddr, what: &'static str| {
            let bound = transport.bind(addr);
            async move { bound.await.map_err(|source| NodeError::Bind { addr, what, source }) }
        };
        let tenant_attribute = config.correlation.tenancy_enabled.then(|| config.correlation.tenant_attribute.clone());
        let gate = ClientGate::load(&config.access, tenant_attribute)?;
        let grpc = gate.wrap(bind(config.otlp_grpc_addr, "OTLP gRPC").await?)?;
        let http = gate.wrap(bind(config.otlp_http_addr, "OTLP HTTP").await?)?;
        let api = gate.wrap(bind(config.api_addr, "API").await?)?;
        background.spawn(gate.clone().reload(sources.clock.clone(), background.stop()));
        let (otlp_grpc_addr, otlp_http_addr, api_addr) =
            (local_addr(grpc.as_ref())?, local_addr(http.as_ref())?, local_addr(api.as_ref())?);
        for (what, at) in [("OTLP gRPC", otlp_grpc_addr), ("OTLP HTTP", otlp_http_addr), ("API", api_addr)] {
            if !at.ip().is_loopback() && !config.access.is_secure() {
                tracing::warn!(listen = %at, port = what, "--insecure: this port takes calls from other hosts without TLS and tokens");
            }
        }
        if let Some(tokens) = &gate.tokens {
            tracing::info!(tokens = tokens.current().len(), tls = gate.tls.is_some(), "OTLP and API calls need a bearer token");
        }
        Ok(Self { gate, grpc, http, api, otlp_grpc_addr, otlp_http_addr, api_addr })
    }

    /// Serves OTLP into `sink` (requests charged against `budget` before
    /// they are decoded: `receive::memory`), then the API; each server
    /// joins `background`.
    pub fn serve(
        self,
        config: &Config,
        sources: &Sources,
        sink: Arc<IngestRouter>,
        budget: Arc<MemoryBudget>,
        api: ApiParts,
        background: &mut Background,
    ) -> Result<(), NodeError> {
        let limits = receive::ReceiverLimits { memory: receive::RequestMemory(Some(budget)), ..config.receiver.clone() };
        let (grpc, grpc_sink, grpc_stop, grpc_limits) = (self.grpc, sink.clone(), background.signal(), limits.clone());
        let faults = sources.faults();
        let grpc_auth = self.gate.grpc_layer();
        background.spawn(async move {
            if let Err(e) = faults::serve_otlp_grpc(grpc, grpc_sink, grpc_limits, grpc_auth, grpc_stop, faults).await {
                tracing::error!(error = %e, "otlp grpc server failed");
            }
        });
        let http_router = receive::http_router(sink, limits, self.gate.http_layer());
        background.serve_http(self.http, http_router);
        let api_state = ApiState {
            backend: api.backend,
            tenancy_enabled: config.correlation.tenancy_enabled,
            max_id_length: config.correlation.max_id_length,
            clock: sources.clock.clone(),
            baselines: api.baselines,
            explainer: Arc::new(
                crate::llm::Explainer::new(config.llm.clone()).map_err(|e| NodeError::Startup(format!("llm client: {e}")))?,
            ),
            session_reads: crate::api::session_reads(),
        };
        let api_router = match self.gate.api_layer() {
            Some(auth) => api::router(api_state).layer(auth),
            None => api::router(api_state),
        };
        background.serve_http(self.api, api_router);
        Ok(())
    }
}

pub(super) fn local_addr(listener: &dyn Acceptor) -> Result<SocketAddr, NodeError> {
    listener.local_addr().map_err(|e| NodeError::Startup(e.to_string()))
}
