//! The `ollystack.v1.Cluster` gRPC service every node serves: membership
//! calls go to [`Membership`], forwarded ingest to the local ingestor,
//! routed queries to the local query backend.

use std::sync::Arc;

use ollystack_cluster::net::{auth, Trust};
use ollystack_cluster::raft::ClusterRequest;
use ollystack_cluster::NodeId;
use ollystack_proto::cluster as pb;
use ollystack_proto::cluster::cluster_server::{self, ClusterServer};
use ollystack_proto::cluster::{forward_request::Body, query_reply::Answer, query_request::Query};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tonic::{Request, Response, Status};

use super::convert::{hits_to_pb, paged_to_pb};
use super::membership::Membership;
use super::recent::{RecentForwards, Seen};
use super::routed_queries::ClusterBackend;
use super::this_node::MAX_MESSAGE_BYTES;
use super::ClusterError;
use crate::clock::SharedClock;
use crate::correlate::{derive_from_trace, TraceBinding};
use crate::error::ErrorCode;
use crate::ingest::{Accepted, IngestError, IngestHandle, IngestSink, SentBinding};
use crate::model::{CorrelationId, TenantId, TraceId};
use crate::query::LIMIT_MAX;
use crate::query::{collect_window, ExemplarFilter, Page, QueryBackend, QueryError, SessionFilter};
use crate::rca::incident::{WindowQuery, KEYS_MAX_DEFAULT, SESSIONS_MAX_DEFAULT};
use crate::session::NodeQueries;
use crate::store::archive::decode_index_json;
use crate::store::shipments::Arrival;
use crate::store::HandedSegment;

/// Serves one node's cluster calls.
#[derive(Clone)]
pub struct ClusterService {
    membership: Arc<Membership>,
    ingest: IngestHandle,
    local: Arc<NodeQueries>,
    /// For queries that arrive unrouted (a peer that asked the wrong node).
    routed: Arc<ClusterBackend>,
    /// OTLP forwards taken recently, so a repeat is taken once.
    recent: Arc<RecentForwards>,
    clock: SharedClock,
}

impl std::fmt::Debug for ClusterService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterService").finish_non_exhaustive()
    }
}

impl ClusterService {
    pub fn new(
        membership: Arc<Membership>,
        ingest: IngestHandle,
        local: Arc<NodeQueries>,
        routed: Arc<ClusterBackend>,
        clock: SharedClock,
    ) -> Self {
        Self { membership, ingest, local, routed, recent: Arc::default(), clock }
    }

    pub fn into_server(self) -> ClusterServer<Self> {
        ClusterServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

/// What a forwarding node is told of a failed ingest: overload and invalid
/// input as such, anything else as unavailable (it retries).
fn ingest_status(e: IngestError) -> Status {
    match e {
        // The reason only: the forwarding node adds its own retry delay.
        IngestError::Overloaded { reason, .. } => ErrorCode::ResourceExhausted.grpc_status(reason.to_string()),
        IngestError::Invalid(m) => ErrorCode::BadRequest.grpc_status(m),
        other => ErrorCode::Unavailable.grpc_status(other.to_string()),
    }
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, Status> {
    M::decode(bytes).map_err(|e| ErrorCode::BadRequest.grpc_status(format!("undecodable {what}: {e}")))
}

fn bad_request(e: impl std::fmt::Display) -> Status {
    ErrorCode::BadRequest.grpc_status(e.to_string())
}

fn internal(e: impl std::fmt::Display) -> Status {
    ErrorCode::Internal.grpc_status(e.to_string())
}

fn reply(a: Accepted) -> Response<pb::ForwardReply> {
    Response::new(pb::ForwardReply { rejected_items: a.rejected_items, error_message: a.error_message, answers: Vec::new() })
}

#[tonic::async_trait]
impl cluster_server::Cluster for ClusterService {
    async fn join(&self, request: Request<pb::JoinRequest>) -> Result<Response<pb::JoinReply>, Status> {
        // The joining node is known by the certificate it joins with. A
        // member passing a join on to its leader names it; anyone else's
        // word for it is not taken.
        let cluster = &self.membership.cluster;
        let identity = match cluster.trust() {
            Trust::Insecure => String::new(),
            Trust::Tls if cluster.caller_is_member(&request) && !request.get_ref().identity.is_empty() => {
                request.get_ref().identity.clone()
            }
            Trust::Tls => auth::caller(&request).map(|c| c.to_string()).unwrap_or_default(),
        };
        let mut req = request.into_inner();
        req.identity = identity;
        Ok(Response::new(self.membership.join(req).await?))
    }

    async fn leave(&self, request: Request<pb::LeaveRequest>) -> Result<Response<pb::LeaveReply>, Status> {
        Ok(Response::new(self.membership.leave(request.into_inner()).await?))
    }

    async fn members(&self, _request: Request<pb::MembersRequest>) -> Result<Response<pb::MembersReply>, Status> {
        Ok(Response::new(self.membership.members()))
    }

    async fn propose(&self, request: Request<pb::ProposeRequest>) -> Result<Response<pb::ProposeReply>, Status> {
        let cluster = &self.membership.cluster;
        cluster.require_member(&request)?;
        if !cluster.is_leader() {
            return Err(ErrorCode::Unavailable.grpc_status(format!("{} is not the leader", cluster.id)));
        }
        let req: ClusterRequest = serde_json::from_slice(&request.into_inner().json)
            .map_err(|e| ErrorCode::BadRequest.grpc_status(format!("undecodable proposal: {e}")))?;
        let answer = cluster.propose(req).await?;
        let json = serde_json::to_vec(&answer).map_err(internal)?;
        Ok(Response::new(pb::ProposeReply { json }))
    }

    async fn forward(&self, request: Request<pb::ForwardRequest>) -> Result<Response<pb::ForwardReply>, Status> {
        let cluster = &self.membership.cluster;
        cluster.require_member(&request)?;
        let request = request.into_inner();
        if request.ring_epoch != cluster.ring_epoch() {
            // Routed under another ring: what this binds may belong on
            // another trace home.
            cluster.bindings_astray();
        }
        let from = NodeId(request.from_node);
        if let Some(Body::Entries(e)) = &request.body {
            // A shipment taken before is answered as done even off the
            // ring: its sender must not send it elsewhere.
            match self.ingest.0.shipment_seen((from, e.shipment)).map_err(ingest_status)? {
                Some(Arrival::Repeat) => {
                    tracing::debug!(from = from.0, shipment = e.shipment, "a shipment taken before; answered as done");
                    return Ok(reply(Accepted::default()));
                }
                Some(Arrival::InFlight) => {
                    return Err(ErrorCode::Unavailable.grpc_status("the same shipment is being taken right now; retry"))
                }
                Some(Arrival::New) | None => {}
            }
        }
        let forward = (from, request.forward_id);
        match self.recent.arrive(forward, self.clock.now_unix_ms()) {
            Seen::New => {}
            // Taken before: its answer, even off the ring (its sender must
            // not send it elsewhere).
            Seen::Done(answer) => {
                tracing::debug!(from = from.0, forward = request.forward_id, "a forward taken before; answered again");
                return Ok(reply(answer));
            }
            Seen::InFlight => return Err(ErrorCode::Unavailable.grpc_status("the same forward is being taken right now; retry")),
        }
        // On its own task: a caller that gives up (its deadline) must not
        // cut the work short with part of it taken, unrecorded.
        let this = self.clone();
        let taking = tokio::spawn(async move {
            let result = this.take_forward(request).await;
            match &result {
                Ok(answer) => {
                    let answer = answer.get_ref();
                    let accepted = Accepted { rejected_items: answer.rejected_items, error_message: answer.error_message.clone() };
                    this.recent.done(forward, &accepted, this.clock.now_unix_ms());
                }
                Err(_) => this.recent.abandon(forward),
            }
            result
        });
        taking.await.map_err(|e| internal(format!("taking a forward failed: {e}")))?
    }
    async fn query(&self, request: Request<pb::QueryRequest>) -> Result<Response<pb::QueryReply>, Status> {
        self.membership.cluster.require_member(&request)?;
        let req = request.into_inner();
        let tenant = TenantId::from_trusted(req.tenant_id.as_str());
        let cluster = &self.membership.cluster;
        let mut out =
            pb::QueryReply { membership_index: cluster.known_membership_index(), ring_epoch: cluster.ring_epoch(), ..Default::default() };
        let partial = |out: &mut pb::QueryReply, e: QueryError| match e {
            QueryError::Unavailable(r) | QueryError::Storage(r) => out.partial = r,
        };
        match req.query {
            // The whole session: asked by nodes from before paging.
            Some(Query::Session(id)) => self.session_page(&tenant, &id, Page::ALL, req.routed, &mut out).await,
            Some(Query::SessionPage(q)) => {
                let page = Page { offset: q.offset, limit: q.limit };
                self.session_page(&tenant, &q.correlation_id, page, req.routed, &mut out).await;
            }
            Some(Query::SessionOfTrace(bytes)) => {
                let trace = TraceId::from_bytes(&bytes).ok_or(ClusterError::BadTraceId)?;
                match self.local.session_of_trace(&tenant, trace).await {
                    Ok(id) => {
                        out.found = id.is_some();
                        out.answer = Some(Answer::SessionOfTrace(id.map(|i| i.as_str().to_owned()).unwrap_or_default()));
                    }
                    Err(e) => partial(&mut out, e),
                }
            }
            Some(Query::RecentSessions(json)) => {
                let mut filter: SessionFilter = serde_json::from_slice(&json).map_err(bad_request)?;
                // Bounds are this node's, not the caller's.
                filter.limit = filter.limit.min(LIMIT_MAX);
                match self.local.session_listing(&tenant, &filter).await {
                    Ok(rows) => {
                        out.found = true;
                        out.answer = Some(Answer::Json(serde_json::to_vec(&rows).map_err(internal)?));
                    }
                    Err(e) => partial(&mut out, e),
                }
            }
            Some(Query::Exemplars(json)) => {
                let mut filter: ExemplarFilter = serde_json::from_slice(&json).map_err(bad_request)?;
                filter.limit = filter.limit.min(LIMIT_MAX);
                match self.local.exemplars(&tenant, &filter).await {
                    Ok(hits) => {
                        out.found = true;
                        out.answer = Some(Answer::Exemplars(hits_to_pb(hits)));
                    }
                    Err(e) => partial(&mut out, e),
                }
            }
            Some(Query::Window(json)) => {
                let mut q: WindowQuery = serde_json::from_slice(&json).map_err(bad_request)?;
                q.sessions_max = q.sessions_max.min(SESSIONS_MAX_DEFAULT);
                q.keys_max = q.keys_max.min(KEYS_MAX_DEFAULT);
                match collect_window(&*self.local, &tenant, &q).await {
                    Ok(collected) => {
                        out.found = true;
                        out.answer = Some(Answer::Json(serde_json::to_vec(&collected).map_err(internal)?));
                    }
                    Err(e) => partial(&mut out, e),
                }
            }
            None => return Err(ErrorCode::BadRequest.grpc_status("query without a question")),
        }
        Ok(Response::new(out))
    }
}

/// A handed trace binding, checked.
pub fn binding_from_pb(b: pb::HandedBinding) -> Result<SentBinding, ClusterError> {
    let trace = TraceId::from_bytes(&b.trace_id).ok_or(ClusterError::BadTraceId)?;
    let binding = TraceBinding { id: CorrelationId::from_trusted(b.correlation_id.as_str()), explicit: b.explicit };
    Ok((TenantId::from_trusted(b.tenant_id.as_str()), trace, binding))
}

impl ClusterService {
    /// A forward that was not taken before.
    async fn take_forward(&self, request: pb::ForwardRequest) -> Result<Response<pb::ForwardReply>, Status> {
        let cluster = &self.membership.cluster;
        let from = NodeId(request.from_node);
        if let Some(Body::Segments(handed)) = &request.body {
            // Which of this node's shipments a leaving node took: taken
            // note of even off the ring (a node that is leaving too may
            // still wait for their answers).
            self.ingest.0.note_delivered(&handed.taken_shipments).await.map_err(ingest_status)?;
        }
        if !cluster.on_ring() || cluster.is_leaving() {
            // Sent here by a node on an older ring. A node off the ring (leaving, or taken
            // off by the failure detector) takes no data: a binding made or a session
            // shipped here after a leave drained and handed everything over would go with
            // the node. `FailedPrecondition`: nothing of this request was taken, so its
            // sender may send it elsewhere.
            return Err(ErrorCode::WrongNode.grpc_status(format!(
                "{} is not on the ring (epoch {}); route by a newer ring and retry",
                cluster.id,
                cluster.ring_epoch()
            )));
        }
        match request.body {
            Some(Body::OtlpTraces(b)) => {
                let r: ExportTraceServiceRequest = decode(&b, "traces")?;
                self.ingest.traces(r).await.map(reply).map_err(ingest_status)
            }
            Some(Body::OtlpLogs(b)) => {
                let r: ExportLogsServiceRequest = decode(&b, "logs")?;
                self.ingest.logs(r).await.map(reply).map_err(ingest_status)
            }
            Some(Body::OtlpMetrics(b)) => {
                let r: ExportMetricsServiceRequest = decode(&b, "metrics")?;
                self.ingest.metrics(r).await.map(reply).map_err(ingest_status)
            }
            Some(Body::Entries(e)) => {
                let shipment = (from, e.shipment);
                self.ingest.0.ingest_entries(shipment, e.entries).await.map(|()| reply(Accepted::default())).map_err(ingest_status)
            }
            Some(Body::Segments(handed)) if handed.segments.is_empty() && handed.bindings.is_empty() => Ok(reply(Accepted::default())),
            Some(Body::Segments(handed)) => {
                let segments = handed
                    .segments
                    .iter()
                    .cloned()
                    .map(|s| {
                        let index = decode_index_json(&s.index_json).map_err(bad_request)?;
                        Ok(HandedSegment { archived: s.archived, index })
                    })
                    .collect::<Result<Vec<_>, Status>>()?;
                let bindings = handed.bindings.into_iter().map(binding_from_pb).collect::<Result<Vec<_>, ClusterError>>()?;
                let sender_on_ring = cluster.ring().is_some_and(|r| r.members().any(|m| m.id == from));
                if !bindings.is_empty() && request.ring_epoch != cluster.ring_epoch() && sender_on_ring {
                    // The sender drops what it sent once this answers: two nodes on different
                    // epochs sending each other the same binding would both drop it. A sender off
                    // the ring (leaving) is sent no bindings back, and may never see a newer
                    // epoch: a leave that timed out after the leader removed it from the
                    // membership left it on its last ring, and its hand-over was refused forever.
                    // Bindings it sends astray move on from here (`bindings_astray`).
                    return Err(ErrorCode::Unavailable.grpc_status(format!(
                        "trace bindings sent under ring epoch {}, this node is on {}; send again once both are on one ring",
                        request.ring_epoch,
                        cluster.ring_epoch()
                    )));
                }
                let ingest = &self.ingest.0;
                ingest.adopt_segments(from, segments).await.map_err(ingest_status)?;
                let astray = bindings.iter().any(|(tenant, trace, _)| cluster.owner(tenant, &derive_from_trace(*trace)) != cluster.id);
                let answers = ingest.receive_bindings(bindings).await.map_err(ingest_status)?;
                if astray {
                    cluster.bindings_astray();
                }
                let mut out = reply(Accepted::default());
                out.get_mut().answers = answers
                    .into_iter()
                    .map(|(tenant, trace, id)| pb::HandedBinding {
                        tenant_id: tenant.as_str().to_owned(),
                        trace_id: trace.0.to_vec(),
                        correlation_id: id.as_str().to_owned(),
                        explicit: true,
                    })
                    .collect();
                Ok(out)
            }
            None => Err(ErrorCode::BadRequest.grpc_status("forward without a body")),
        }
    }
}

impl ClusterService {
    /// Answers one page of a session into `out`: local state only when the
    /// asker routed the query here, else as the cluster holds it.
    async fn session_page(&self, tenant: &TenantId, id: &str, page: Page, routed: bool, out: &mut pb::QueryReply) {
        let cluster = &self.membership.cluster;
        let id = CorrelationId::from_trusted(id);
        let found =
            if routed { self.local.session_page(tenant, &id, page).await } else { self.routed.session_page(tenant, &id, page).await };
        let partial = |out: &mut pb::QueryReply, e: QueryError| match e {
            QueryError::Unavailable(r) | QueryError::Storage(r) => out.partial = r,
        };
        if routed {
            // After the session read (see `NodeQueries::moved_to`).
            match self.local.moved_to(tenant, &id).await {
                Ok(moved) => out.moved_to = moved.map_or(0, |(to, _)| to.0),
                Err(e) => partial(out, e),
            }
        }
        match found {
            Ok(Some(paged)) => {
                out.found = true;
                out.answer = Some(Answer::Session(paged_to_pb(paged)));
            }
            Ok(None) => {}
            Err(e) => partial(out, e),
        }
        if routed && out.partial.is_empty() {
            if let Some(why) = cluster.bindings_in_flight() {
                out.partial = why;
            }
        }
    }
}
