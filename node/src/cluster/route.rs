//! Ingest on a cluster.
//!
//! Two hops, each acknowledged only once durable on the receiving end:
//!
//! 1. The receiving node splits an OTLP batch by **trace home**: the ring
//!    owner of each trace's derived correlation ID. Every signal of a trace
//!    reaches its home, so the home's trace index sees the whole trace and
//!    decides trace unification alone (which explicit ID a trace joins).
//!    Signals without a trace stay on the receiving node.
//! 2. The home (or the receiving node, for trace-less signals) assigns each
//!    signal its session and ships every session group it does not own to
//!    the group's **owner** ([`Shipper`]), which writes it to its WAL and
//!    syncs before answering.
//!
//! Guarantee: a sender is acknowledged only when every part of its batch is
//! durable in the WAL of the node that owns it (or, for a part whose owner
//! changed meanwhile, of a node that hands it on). If any part fails (owner
//! unreachable after retries, overloaded), the sender gets OTLP's retryable
//! `UNAVAILABLE`/`RESOURCE_EXHAUSTED` and retries the whole batch; parts that
//! did arrive are recognised as re-deliveries by the session and stored
//! once. Nothing is kept as a local hint yet: an unreachable owner means the
//! sender retries until the ring moves its sessions elsewhere.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use ollystack_cluster::ring::{KeyHash, Ring};
use ollystack_cluster::NodeId;
use ollystack_proto::cluster::{forward_request::Body, Entries, ForwardReply, ForwardRequest};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Semaphore;

use super::{encoded, Cluster};
use crate::correlate::{self, CorrelationSettings};
use crate::ingest::{Accepted, IngestError, IngestHandle, IngestSink, Overload, SignalKind, WholeRoute};
use crate::metrics::NodeMetrics;
use crate::model::{SessionKey, TenantId, TraceId};
use crate::session::{RemoteOwners, ShipError};
use crate::store::ShipmentLog;

/// Attempts per forward call (the first and two retries).
const FORWARD_ATTEMPTS: u32 = 3;
/// Wait before the first retry; doubles after each.
const FORWARD_RETRY_INITIAL: Duration = Duration::from_millis(50);

/// Sends forward calls: bounded in flight, each under the RPC deadline,
/// retried on transport failures.
pub struct Shipper {
    cluster: Arc<Cluster>,
    in_flight: Arc<Semaphore>,
    metrics: Arc<NodeMetrics>,
    shipments: Arc<ShipmentLog>,
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper").finish_non_exhaustive()
    }
}

impl Shipper {
    pub fn new(cluster: Arc<Cluster>, metrics: Arc<NodeMetrics>, shipments: Arc<ShipmentLog>) -> Self {
        let in_flight = Arc::new(Semaphore::new(cluster.settings.forward_max_in_flight));
        Self { cluster, in_flight, metrics, shipments }
    }

    /// One forward call to `node`, retried while the failure is one a
    /// retry can fix. Overload on the owner is passed back as overload.
    pub async fn forward(&self, node: NodeId, body: Body) -> Result<ForwardReply, IngestError> {
        self.forward_under(node, body, None).await
    }

    /// [`Self::forward`], naming the ring epoch `node` was chosen under (`None`:
    /// this node's epoch at each attempt). The receiver refuses trace bindings sent
    /// under an older ring than its own; an epoch read after the choice hid that.
    pub async fn forward_under(&self, node: NodeId, body: Body, epoch: Option<u64>) -> Result<ForwardReply, IngestError> {
        self.attempts(node, body, epoch, 0).await.map_err(|(e, _)| e)
    }

    /// [`Self::forward`], telling on failure whether `node` answered that
    /// it took nothing and will not (`FailedPrecondition`: send elsewhere).
    pub async fn forward_refusable(&self, node: NodeId, body: Body) -> Result<ForwardReply, (IngestError, bool)> {
        self.attempts(node, body, None, 0).await
    }

    /// [`Self::forward_under`] for an OTLP part, named `forward_id` for
    /// every attempt (see `cluster::recent`).
    async fn forward_otlp(&self, node: NodeId, body: Body, epoch: u64, forward_id: u64) -> Result<ForwardReply, IngestError> {
        self.attempts(node, body, Some(epoch), forward_id).await.map_err(|(e, _)| e)
    }

    /// The attempts of one forward call; on failure, the error and whether
    /// `node` answered that it did not take the body and will not (it is
    /// off the ring: `FailedPrecondition`).
    async fn attempts(&self, node: NodeId, body: Body, epoch: Option<u64>, forward_id: u64) -> Result<ForwardReply, (IngestError, bool)> {
        let _permit = self.in_flight.acquire().await.map_err(|_| (IngestError::Unavailable("node is shutting down".into()), false))?;
        let mut wait = FORWARD_RETRY_INITIAL;
        let mut last = String::new();
        let mut refused = false;
        for attempt in 0..FORWARD_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            self.metrics.cluster_forward_requests.inc();
            let mut client = match self.cluster.client(node) {
                Ok(c) => c,
                Err(e) => return Err((IngestError::Unavailable(e.to_string()), false)),
            };
            let mut request = tonic::Request::new(ForwardRequest {
                ring_epoch: epoch.unwrap_or_else(|| self.cluster.ring_epoch()),
                from_node: self.cluster.id.0,
                body: Some(body.clone()),
                forward_id,
            });
            request.set_timeout(self.cluster.rpc_timeout());
            refused = false;
            match tokio::time::timeout(self.cluster.rpc_timeout(), client.forward(request)).await {
                Ok(Ok(reply)) => return Ok(reply.into_inner()),
                Ok(Err(status)) => match status.code() {
                    tonic::Code::ResourceExhausted => {
                        self.metrics.cluster_forward_failures.inc();
                        let reason = Overload::Owner(status.message().to_owned());
                        return Err((IngestError::Overloaded { reason, retry_after_ms: 1_000 }, false));
                    }
                    tonic::Code::InvalidArgument => {
                        self.metrics.cluster_forward_failures.inc();
                        return Err((IngestError::Invalid(status.message().to_owned()), false));
                    }
                    code => {
                        refused = code == tonic::Code::FailedPrecondition;
                        last = format!("{node}: {}", status.message());
                    }
                },
                Err(_) => last = format!("{node}: no answer within {:?}", self.cluster.rpc_timeout()),
            }
        }
        self.metrics.cluster_forward_failures.inc();
        Err((IngestError::Unavailable(format!("session owner unreachable ({last})")), refused))
    }
}

impl RemoteOwners for Shipper {
    fn remote_owner(&self, key: &SessionKey) -> Option<NodeId> {
        let owner = self.cluster.owner(&key.tenant, &key.id);
        (owner != self.cluster.id).then_some(owner)
    }

    fn fenced(&self, now_ms: u64) -> Option<String> {
        self.cluster.fenced(now_ms)
    }

    fn ship(&self, owner: NodeId, shipment: u64, entries: Vec<Vec<u8>>) -> BoxFuture<'static, Result<(), ShipError>> {
        let this = Shipper {
            cluster: self.cluster.clone(),
            in_flight: self.in_flight.clone(),
            metrics: self.metrics.clone(),
            shipments: self.shipments.clone(),
        };
        let body = Body::Entries(Entries { entries, shipment });
        Box::pin(async move {
            this.attempts(owner, body, None, 0).await.map(|_| ()).map_err(|(e, refused)| ShipError { refused, message: e.to_string() })
        })
    }

    fn is_member(&self, node: NodeId) -> bool {
        self.cluster.view().membership.membership().get_node(&node.0).is_some()
    }

    fn delivered(&self, shipment: u64) -> bool {
        self.shipments.delivered(shipment).unwrap_or_else(|e| {
            tracing::warn!(shipment, error = %e, "reading delivered shipments failed; taking it as not delivered");
            false
        })
    }
}

/// The receivers' sink on a cluster node: splits each batch by trace home
/// and sends the parts there (this node's part goes straight to ingest).
pub struct IngestRouter {
    cluster: Arc<Cluster>,
    local: IngestHandle,
    shipper: Arc<Shipper>,
    settings: Arc<CorrelationSettings>,
    /// The next forward's ID (see `cluster::recent`); starts at a random
    /// point so a restarted node does not reuse its earlier IDs.
    next_forward: AtomicU64,
}

impl std::fmt::Debug for IngestRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestRouter").finish_non_exhaustive()
    }
}

impl IngestRouter {
    pub fn new(
        cluster: Arc<Cluster>,
        local: IngestHandle,
        shipper: Arc<Shipper>,
        settings: Arc<CorrelationSettings>,
        first_forward_id: u64,
    ) -> Self {
        Self { cluster, local, shipper, settings, next_forward: AtomicU64::new(first_forward_id) }
    }

    /// A new forward's ID (never 0: that means none).
    fn next_forward_id(&self) -> u64 {
        self.next_forward.fetch_add(1, Ordering::Relaxed).max(1)
    }

    /// The ring to split a batch by, read once per batch; `None` while this node is
    /// its only member (everything is local). A ring whose only member is another
    /// node (this one leaving, or taken off) is no reason to keep a batch here:
    /// that bound its traces on a node about to go.
    fn shared_ring(&self) -> Option<Arc<Ring>> {
        self.cluster.ring().filter(|r| r.members().any(|m| m.id != self.cluster.id))
    }

    /// Runs the parts (local and forwarded) concurrently and combines them. `epoch`
    /// is the ring the parts were split by: forwards name it (the receiver knows
    /// what it binds may belong elsewhere if its ring differs), and a local part
    /// taken after the ring moved on notes its bindings as astray.
    async fn run<R>(
        &self,
        epoch: u64,
        parts: BTreeMap<NodeId, R>,
        local: impl FnOnce(R) -> BoxFuture<'static, Result<Accepted, IngestError>>,
        body: impl Fn(Vec<u8>) -> Body,
    ) -> Result<Accepted, IngestError>
    where
        R: Message,
    {
        let mut local_part = None;
        let mut remote = Vec::new();
        for (node, part) in parts {
            if node == self.cluster.id {
                local_part = Some(part);
            } else {
                let body = body(part.encode_to_vec());
                let forward_id = self.next_forward_id();
                remote.push(async move {
                    self.shipper
                        .forward_otlp(node, body, epoch, forward_id)
                        .await
                        .map(|r| Accepted { rejected_items: r.rejected_items, error_message: r.error_message })
                });
            }
        }
        let local_fut = async move {
            match local_part {
                Some(p) => {
                    let result = local(p).await;
                    if self.cluster.ring_epoch() != epoch {
                        self.cluster.bindings_astray();
                    }
                    result
                }
                None => Ok(Accepted::default()),
            }
        };
        let (local_result, remote_results) = futures::join!(local_fut, futures::future::join_all(remote));
        let mut out = Accepted::default();
        let mut first_error = None;
        for r in std::iter::once(local_result).chain(remote_results) {
            match r {
                Ok(a) => {
                    out.rejected_items += a.rejected_items;
                    if out.error_message.is_empty() {
                        out.error_message = a.error_message;
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

impl IngestSink for IngestRouter {
    async fn traces(&self, request: ExportTraceServiceRequest) -> Result<Accepted, IngestError> {
        let Some(ring) = self.shared_ring() else {
            return self.local.traces(request).await;
        };
        let s = &self.settings;
        let parts =
            split_by_home(request, self.cluster.id, |resource, attrs, trace| home(&ring, &correlate::tenant_of(s, resource, attrs), trace));
        let local = self.local.clone();
        self.run(ring.epoch(), parts, move |r| Box::pin(async move { local.traces(r).await }), Body::OtlpTraces).await
    }

    async fn logs(&self, request: ExportLogsServiceRequest) -> Result<Accepted, IngestError> {
        let Some(ring) = self.shared_ring() else {
            return self.local.logs(request).await;
        };
        let s = &self.settings;
        let parts =
            split_by_home(request, self.cluster.id, |resource, attrs, trace| home(&ring, &correlate::tenant_of(s, resource, attrs), trace));
        let local = self.local.clone();
        self.run(ring.epoch(), parts, move |r| Box::pin(async move { local.logs(r).await }), Body::OtlpLogs).await
    }

    /// Metrics are ingested where they arrive: their exemplars are shipped
    /// to their sessions' owners after assignment.
    async fn metrics(&self, request: ExportMetricsServiceRequest) -> Result<Accepted, IngestError> {
        self.local.metrics(request).await
    }

    /// A request whose every item's trace home is one other node goes there
    /// as it came: scanned for its traces (and, with tenancy, attributes),
    /// not decoded, split or encoded here. Its home decodes it, and refuses
    /// it whole if it cannot; a request that would be split is decoded here
    /// (an undecodable one is refused before any part of it is taken).
    fn route_encoded(&self, signal: SignalKind, body: &[u8]) -> Option<WholeRoute> {
        let ring = self.shared_ring()?;
        let layout = match signal {
            SignalKind::Traces => encoded::TRACES,
            SignalKind::Logs => encoded::LOGS,
        };
        let s = &self.settings;
        let scanned = encoded::scan(body, layout, s.tenancy_enabled).ok()?;
        // The spans of a trace mostly come together: each (tenant, trace) is placed once.
        let mut only: Option<(NodeId, TenantId, TraceId)> = None;
        for resource in &scanned.resources {
            for item in &resource.items {
                let trace = TraceId::from_bytes(item.trace_id(body))?;
                let tenant = correlate::tenant_of(s, &resource.attributes, &item.attributes);
                match &only {
                    Some((_, t, tr)) if *t == tenant && *tr == trace => {}
                    Some((node, ..)) if home(&ring, &tenant, trace) == *node => {}
                    Some(_) => return None,
                    None => {
                        let node = home(&ring, &tenant, trace);
                        if node == self.cluster.id {
                            return None;
                        }
                        only = Some((node, tenant, trace));
                    }
                }
            }
        }
        only.map(|(node, ..)| WholeRoute { node, ring_epoch: ring.epoch() })
    }

    async fn forward_encoded(&self, signal: SignalKind, route: WholeRoute, body: Bytes) -> Result<Accepted, IngestError> {
        let body = match signal {
            SignalKind::Traces => Body::OtlpTraces(body.into()),
            SignalKind::Logs => Body::OtlpLogs(body.into()),
        };
        let forward_id = self.next_forward_id();
        let reply = self.shipper.forward_otlp(route.node, body, route.ring_epoch, forward_id).await?;
        Ok(Accepted { rejected_items: reply.rejected_items, error_message: reply.error_message })
    }
}

/// The node whose trace index decides this trace: the owner of its derived
/// ID.
fn home(ring: &Ring, tenant: &TenantId, trace: TraceId) -> NodeId {
    ring.owner(KeyHash::of(tenant.as_str(), correlate::derive_from_trace(trace).as_str()))
}

/// An OTLP export request as [`split_by_home`] sees it: resources holding
/// scopes holding items (spans, log records), each item with its trace.
trait Batch: Default {
    type Resource: Clone;
    type Scope: Clone;
    type Item;
    fn resources(&mut self) -> &mut Vec<Self::Resource>;
    fn resource_attributes(resource: &Self::Resource) -> &[KeyValue];
    fn scopes(resource: &mut Self::Resource) -> &mut Vec<Self::Scope>;
    fn items(scope: &mut Self::Scope) -> &mut Vec<Self::Item>;
    /// The item's trace ID bytes and its attributes.
    fn trace_of(item: &Self::Item) -> (&[u8], &[KeyValue]);
}

/// [`Batch`] for an OTLP request type, by the names of its fields: the
/// request's resources, a resource's scopes, a scope's items.
macro_rules! impl_batch {
    ($request:ty, $resources:ident: $resource:ty, $scopes:ident: $scope:ty, $items:ident: $item:ty) => {
        impl Batch for $request {
            type Resource = $resource;
            type Scope = $scope;
            type Item = $item;
            fn resources(&mut self) -> &mut Vec<$resource> {
                &mut self.$resources
            }
            fn resource_attributes(resource: &$resource) -> &[KeyValue] {
                resource.resource.as_ref().map_or(&[], |r| &r.attributes)
            }
            fn scopes(resource: &mut $resource) -> &mut Vec<$scope> {
                &mut resource.$scopes
            }
            fn items(scope: &mut $scope) -> &mut Vec<$item> {
                &mut scope.$items
            }
            fn trace_of(item: &$item) -> (&[u8], &[KeyValue]) {
                (&item.trace_id, &item.attributes)
            }
        }
    };
}

impl_batch!(ExportTraceServiceRequest, resource_spans: ResourceSpans, scope_spans: ScopeSpans, spans: Span);
impl_batch!(ExportLogsServiceRequest, resource_logs: ResourceLogs, scope_logs: ScopeLogs, log_records: LogRecord);

/// Splits a request by the home of each item's trace, keeping resources
/// and scopes. Items without a valid trace ID stay on `here` (a span's
/// ingest rejects it with the usual partial success; a log record without
/// a trace is kept).
fn split_by_home<B: Batch>(
    mut request: B,
    here: NodeId,
    home: impl Fn(&[KeyValue], &[KeyValue], TraceId) -> NodeId,
) -> BTreeMap<NodeId, B> {
    let mut out: BTreeMap<NodeId, B> = BTreeMap::new();
    for mut resource in std::mem::take(request.resources()) {
        let resource_attrs = B::resource_attributes(&resource).to_vec();
        let homes: Vec<Vec<NodeId>> = B::scopes(&mut resource)
            .iter_mut()
            .map(|scope| {
                B::items(scope)
                    .iter()
                    .map(|item| {
                        let (trace, attrs) = B::trace_of(item);
                        TraceId::from_bytes(trace).map_or(here, |t| home(&resource_attrs, attrs, t))
                    })
                    .collect()
            })
            .collect();
        // The common case: the whole resource goes to one node, moved as is.
        let first = homes.iter().flatten().next().copied();
        if let Some(only) = first.filter(|f| homes.iter().flatten().all(|n| n == f)) {
            out.entry(only).or_default().resources().push(resource);
            continue;
        }
        // Emptied of its scopes (and each scope of its items), a resource
        // and a scope are the shells each node's part is built in.
        let scopes = std::mem::take(B::scopes(&mut resource));
        let mut per_node: BTreeMap<NodeId, B::Resource> = BTreeMap::new();
        for (mut scope, nodes) in scopes.into_iter().zip(homes) {
            let items = std::mem::take(B::items(&mut scope));
            let mut scoped: BTreeMap<NodeId, B::Scope> = BTreeMap::new();
            for (item, node) in items.into_iter().zip(nodes) {
                B::items(scoped.entry(node).or_insert_with(|| scope.clone())).push(item);
            }
            for (node, part) in scoped {
                B::scopes(per_node.entry(node).or_insert_with(|| resource.clone())).push(part);
            }
        }
        for (node, part) in per_node {
            out.entry(node).or_default().resources().push(part);
        }
    }
    out
}

#[cfg(test)]
#[path = "route_test.rs"]
mod tests;
