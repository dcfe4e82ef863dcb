//! What the simulations reach into a node for: deliberately broken
//! behaviours for their bug-finding tests ([`Faults`], all off in
//! production), and a [`Probe`] that reads a running node's state without
//! keeping any of it alive (a crashed node's storage must close).

use std::future::Future;
use std::sync::{Arc, Weak};

use ollystack_cluster::raft::{ClusterView, NodeInfo, RaftId};
use ollystack_cluster::NodeId;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::cluster::Cluster;
use crate::ingest::{Accepted, IngestError, IngestSink};
use crate::model::{CorrelationId, TenantId};
use crate::session::actor::SessionEnv;

/// Deliberately broken behaviours. Only the simulations' bug-finding tests
/// switch them on, to show the simulator catches what they break.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// OTLP gRPC answers success as soon as a batch is decoded, and ingests
    /// it afterwards; a failure after that is only logged.
    pub ack_before_durable: bool,
    /// No handoff sweep: live sessions stay on a node that no longer owns
    /// them after the ring changes.
    pub skip_handoff: bool,
    /// A leaving node keeps its archived segments instead of handing them
    /// to their owners: they become unreachable once it is gone.
    pub skip_archive_handover: bool,
    /// Trace bindings stay where they were made when the ring changes: a
    /// span that reaches a trace's new home by trace alone opens a derived
    /// session that never joins its request.
    pub skip_binding_sync: bool,
}

/// Read access to a running node's cluster view and live sessions.
#[derive(Debug, Clone)]
pub struct Probe {
    pub id: NodeId,
    pub(super) cluster: Weak<Cluster>,
    pub(super) env: Weak<SessionEnv>,
}

impl Probe {
    pub fn raft_metrics(&self) -> Option<openraft::RaftMetrics<RaftId, NodeInfo>> {
        Some(self.cluster.upgrade()?.raft.metrics().borrow().clone())
    }

    pub fn view(&self) -> Option<Arc<ClusterView>> {
        Some(self.cluster.upgrade()?.view())
    }

    /// The owner of a session by this node's applied ring.
    pub fn owner(&self, tenant: &str, id: &str) -> Option<NodeId> {
        Some(self.cluster.upgrade()?.owner(&TenantId::from_trusted(tenant), &CorrelationId::from_trusted(id)))
    }

    /// (tenant, correlation ID) of every live session actor; `None` when
    /// the node is gone or its registry is busy right now. Never waits, so
    /// a probe holds nothing of the node across simulation steps.
    pub fn live_sessions(&self) -> Option<Vec<(String, String)>> {
        let keys = self.env.upgrade()?.registry.try_live_keys()?;
        Some(keys.into_iter().map(|k| (k.tenant.as_str().to_owned(), k.id.as_str().to_owned())).collect())
    }
}

/// [`Faults::ack_before_durable`]: acknowledges first, ingests afterwards.
pub(super) struct AckEarly<S>(pub Arc<S>);

impl<S: IngestSink> AckEarly<S> {
    fn later<F>(&self, ingest: impl FnOnce(Arc<S>) -> F + Send + 'static) -> impl Future<Output = Result<Accepted, IngestError>> + Send
    where
        F: Future<Output = Result<Accepted, IngestError>> + Send + 'static,
    {
        let sink = self.0.clone();
        async move {
            tokio::spawn(async move {
                if let Err(e) = ingest(sink).await {
                    tracing::warn!(error = %e, "batch acknowledged early failed to ingest");
                }
            });
            Ok(Accepted::default())
        }
    }
}

impl<S: IngestSink> IngestSink for AckEarly<S> {
    fn traces(&self, request: ExportTraceServiceRequest) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        self.later(move |s| async move { s.traces(request).await })
    }

    fn logs(&self, request: ExportLogsServiceRequest) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        self.later(move |s| async move { s.logs(request).await })
    }

    fn metrics(&self, request: ExportMetricsServiceRequest) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        self.later(move |s| async move { s.metrics(request).await })
    }
}

impl Probe {
    /// What this node holds of a session, for a failure report: the
    /// bindings of `traces`, where `ids` resolve, and the live and closing
    /// actors of each. `None` when the node is gone or a registry shard is
    /// busy right now (never waits).
    pub fn explain(&self, tenant: &str, ids: &[String], traces: &[[u8; 16]]) -> Option<String> {
        let env = self.env.upgrade()?;
        let tenant = TenantId::from_trusted(tenant);
        let mut out = Vec::new();
        for t in traces {
            let trace = crate::model::TraceId(*t);
            let binding = env.traces.binding(&tenant, trace).ok().flatten();
            out.push(format!("trace {} bound to {binding:?}", crate::correlate::derive_from_trace(trace)));
        }
        for id in ids {
            let id = CorrelationId::from_trusted(id.as_str());
            let alias = env.traces.alias_of(&tenant, &id).ok().flatten();
            let (live, closing) = env.registry.try_holder_counts(&crate::model::SessionKey { tenant: tenant.clone(), id: id.clone() })?;
            out.push(format!("{id}: alias {alias:?}, {live} live + {closing} closing actor(s)"));
        }
        Some(out.join("; "))
    }
}
