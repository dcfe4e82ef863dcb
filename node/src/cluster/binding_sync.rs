//! Trace bindings follow their trace's home. A trace's binding (trace ->
//! session) is read where by-trace signals are routed: the trace's home, the
//! owner of its derived ID. When the ring changes the home moves, but bindings
//! stay where they were made; a span that then arrives by trace alone at the
//! new home would open a derived session that never joins its explicit one. So
//! after every ring change each node sends the bindings it holds for traces
//! homed elsewhere to their home, which reconciles them with its own
//! (`correlate::reconcile`), merging derived sessions on either side, and the
//! sender then drops its copy. A leaving node does the same as its last step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ollystack_cluster::ring::KeyHash;
use ollystack_cluster::NodeId;
use ollystack_proto::cluster::{forward_request::Body, HandedBinding, HandedSegments};
use tokio::sync::watch;

use super::route::Shipper;
use super::service::binding_from_pb;
use super::{Cluster, ClusterError};
use crate::clock::SharedClock;
use crate::correlate::{derive_from_trace, TraceBinding};
use crate::ingest::Ingestor;
use crate::store::TraceIndex;

/// Trace bindings per forward call.
const BINDINGS_PAGE: usize = 4_096;

/// Sends every binding of a trace homed on another node to that node,
/// applies its answers, and drops the copies it took. Returns how many
/// were sent; an error leaves the rest (run it again).
pub async fn send_bindings_home(
    traces: &TraceIndex,
    ingest: &Arc<Ingestor>,
    cluster: &Arc<Cluster>,
    shipper: &Shipper,
) -> Result<u64, ClusterError> {
    let mut after: Option<Vec<u8>> = None;
    let mut sent = 0;
    loop {
        let (page, next) = traces.bindings_after(after.as_deref(), BINDINGS_PAGE).map_err(ClusterError::store("reading trace bindings"))?;
        let Some(next) = next else { return Ok(sent) };
        // One ring for the page: the homes chosen and the epoch sent.
        let ring = cluster.ring();
        let epoch = ring.as_ref().map_or(0, |r| r.epoch());
        let owner = |tenant: &crate::model::TenantId, trace| {
            ring.as_ref().map_or(cluster.id, |r| r.owner(KeyHash::of(tenant.as_str(), derive_from_trace(trace).as_str())))
        };
        let mut by_home: BTreeMap<NodeId, Vec<HandedBinding>> = BTreeMap::new();
        for (tenant, trace, binding) in page {
            let home = owner(&tenant, trace);
            if home == cluster.id && cluster.is_leaving() {
                // A leave's hand-over that ran before this node applied the ring without it
                // would keep bindings that go with the node.
                return Err(ClusterError::LeavingHome { node: cluster.id, epoch });
            }
            if home != cluster.id {
                by_home.entry(home).or_default().push(HandedBinding {
                    tenant_id: tenant.as_str().to_owned(),
                    trace_id: trace.0.to_vec(),
                    correlation_id: binding.id.as_str().to_owned(),
                    explicit: binding.explicit,
                });
            }
        }
        for (home, bindings) in by_home {
            let count = bindings.len() as u64;
            for b in &bindings {
                tracing::debug!(node = %cluster.id, %home, epoch, trace = %b.correlation_id, "sending a binding home");
            }
            let body = Body::Segments(HandedSegments { bindings: bindings.clone(), ..Default::default() });
            let reply = shipper
                .forward_under(home, body, Some(epoch))
                .await
                .map_err(ClusterError::ingest(format!("sending {count} trace binding(s) to {home}")))?;
            let answers = reply.answers.into_iter().map(binding_from_pb).collect::<Result<Vec<_>, _>>()?;
            ingest.receive_bindings(answers).await.map_err(ClusterError::ingest(format!("applying {home}'s answers")))?;
            // The home has them now. A binding that changed meanwhile (a signal of the
            // trace arrived here under an older ring) stays, and goes at the next pass. So
            // do all of them if the ring changed while they were on their way: this node
            // may be their home now, and the home may have sent its copy here meanwhile
            // and dropped it.
            if cluster.ring_epoch() != epoch {
                return Err(ClusterError::RingMoved { home });
            }
            for b in bindings.into_iter().map(binding_from_pb).filter_map(Result::ok) {
                let (tenant, trace, sent_binding): (_, _, TraceBinding) = b;
                traces.remove_if(&tenant, trace, &sent_binding).map_err(ClusterError::store("dropping a sent trace binding"))?;
            }
            sent += count;
        }
        after = Some(next);
    }
}

/// Runs [`send_bindings_home`] whenever the ring epoch changes (and at
/// start), twice: a signal routed under the older ring can still bind a
/// trace here just after the change. Also when bindings may have arrived
/// astray ([`Cluster::bindings_astray`]). A failed pass is retried each
/// tick. From a ring change or an astray notice until a pass succeeds,
/// this node's session answers say partial
/// ([`Cluster::bindings_in_flight`]).
pub async fn follow_ring(
    traces: Arc<TraceIndex>,
    ingest: Arc<Ingestor>,
    cluster: Arc<Cluster>,
    shipper: Arc<Shipper>,
    clock: SharedClock,
    tick_ms: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut view = cluster.watch();
    let (mut epoch, mut passes_left, mut next_at) = (None, 0u32, 0u64);
    loop {
        tokio::select! {
            _ = clock.sleep(Duration::from_millis(tick_ms)) => {}
            _ = view.changed() => {}
            _ = cluster.astray.notified() => {
                passes_left = passes_left.max(1);
                cluster.set_bindings_pending(true);
            }
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = clock.now_unix_ms();
        if epoch != Some(cluster.ring_epoch()) {
            epoch = Some(cluster.ring_epoch());
            (passes_left, next_at) = (2, now);
            cluster.set_bindings_pending(true);
        }
        if passes_left == 0 || now < next_at {
            continue;
        }
        let notices = cluster.astray_notices();
        match send_bindings_home(&traces, &ingest, &cluster, &shipper).await {
            Ok(sent) => {
                if sent > 0 {
                    tracing::info!(node = %cluster.id, sent, "trace bindings sent to their traces' homes");
                }
                passes_left -= 1;
                // A binding that went astray during the pass waits for the
                // next one (its notice is pending in `astray`).
                if cluster.astray_notices() == notices {
                    cluster.set_bindings_pending(false);
                }
                next_at = now + cluster.rpc_timeout().as_millis() as u64 * 2;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sending trace bindings home failed; retrying");
                next_at = now + tick_ms;
            }
        }
    }
}
