//! What a leaving node hands over besides its live sessions. With the
//! embedded store, the finished segments only this node holds would become
//! unreachable once it leaves; they go to the ring owners of their sessions
//! (who archive them and index their exemplars), a page at a time, and each
//! page is dropped here only once its receiver has it durably. A receiver
//! that gets a page twice keeps one copy, so a failed hand-over can simply
//! run again. Shared storage (ClickHouse) has nothing to hand over. Then
//! the node's trace bindings (trace -> session) go to each trace's new
//! home (`bindings`), so trace lookups and late spans still find their
//! session. Last, each sender of a shipment this node took is told so: it
//! may still be waiting for the answer, and must not send it elsewhere once
//! this node is gone (`store::shipments`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ollystack_cluster::NodeId;
use ollystack_proto::cluster::{forward_request::Body, HandedSegment as PbHandedSegment, HandedSegments};

use super::binding_sync::send_bindings_home;
use super::route::Shipper;
use super::{Cluster, ClusterError};
use crate::ingest::Ingestor;
use crate::model::{CorrelationId, TenantId};
use crate::store::archive::encode_index_json;
use crate::store::{HandedSegment, SessionStore, TraceIndex};

/// About this many bytes of segments per forward call (well under the
/// cluster's message limit).
const PAGE_BYTES: u64 = 1 << 20;

/// A segment: (tenant, correlation ID, segment seq).
type SegmentKey = (String, String, u64);

/// Segments sent to a node whose answer never came, with that node: a later run
/// sends them there again (while it is a member), not to a new owner. The node
/// may hold them already, and it keeps one copy of a page sent twice; a second
/// owner would have made two. Archived segments need not sit on their owner:
/// queries ask every node for them.
#[derive(Debug, Default)]
pub struct Unanswered(parking_lot::Mutex<HashMap<SegmentKey, NodeId>>);

fn key_of(s: &HandedSegment) -> SegmentKey {
    (s.index.tenant.clone(), s.index.correlation_id.clone(), s.index.segment_seq)
}

/// Moves every segment the store holds alone to its session's owner.
/// Returns how many moved; an error leaves the rest here (run it again).
pub async fn hand_over_archive(
    store: &dyn SessionStore,
    traces: &TraceIndex,
    ingest: &Arc<Ingestor>,
    cluster: &Arc<Cluster>,
    shipper: &Shipper,
    unanswered: &Unanswered,
) -> Result<u64, ClusterError> {
    let moved = hand_over_segments(store, ingest, cluster, shipper, unanswered).await?;
    send_bindings_home(traces, ingest, cluster, shipper).await?;
    tell_senders(ingest, cluster, shipper).await?;
    Ok(moved)
}

/// Shipment IDs per forward call when telling a sender what was taken.
const SHIPMENTS_PER_CALL: usize = 16_384;

/// Tells every member whose shipments this node took which ones.
async fn tell_senders(ingest: &Ingestor, cluster: &Arc<Cluster>, shipper: &Shipper) -> Result<(), ClusterError> {
    let taken = ingest.taken_shipments().map_err(ClusterError::ingest("reading taken shipments"))?;
    let members = cluster.all_members();
    for (origin, ids) in taken {
        if origin == cluster.id || !members.contains(&origin) {
            continue;
        }
        for page in ids.chunks(SHIPMENTS_PER_CALL) {
            let body = Body::Segments(HandedSegments { taken_shipments: page.to_vec(), ..Default::default() });
            shipper
                .forward(origin, body)
                .await
                .map_err(ClusterError::ingest(format!("telling {origin} which of its shipments were taken")))?;
        }
    }
    Ok(())
}

async fn hand_over_segments(
    store: &dyn SessionStore,
    ingest: &Ingestor,
    cluster: &Arc<Cluster>,
    shipper: &Shipper,
    unanswered: &Unanswered,
) -> Result<u64, ClusterError> {
    let mut moved = 0;
    loop {
        let page = store.local_segments(PAGE_BYTES).await.map_err(ClusterError::store("reading the archive"))?;
        if page.is_empty() {
            return Ok(moved);
        }
        let members = cluster.all_members();
        let sent_before =
            |s: &HandedSegment| unanswered.0.lock().get(&key_of(s)).copied().filter(|n| *n != cluster.id && members.contains(n));
        let destination = |s: &HandedSegment| {
            sent_before(s).unwrap_or_else(|| {
                cluster
                    .owner(&TenantId::from_trusted(s.index.tenant.as_str()), &CorrelationId::from_trusted(s.index.correlation_id.as_str()))
            })
        };
        for (owner, segments) in by_owner(page, destination) {
            if owner == cluster.id {
                return Err(ClusterError::StillOwner(owner));
            }
            let body = Body::Segments(HandedSegments {
                segments: segments
                    .iter()
                    .map(|s| PbHandedSegment { archived: s.archived.clone(), index_json: encode_index_json(&s.index) })
                    .collect(),
                ..Default::default()
            });
            if let Err((e, refused)) = shipper.forward_refusable(owner, body).await {
                let mut pending = unanswered.0.lock();
                for s in &segments {
                    // Refused: nothing was taken, the next run may go elsewhere.
                    if refused {
                        pending.remove(&key_of(s));
                    } else {
                        pending.insert(key_of(s), owner);
                    }
                }
                return Err(ClusterError::Ingest { doing: format!("handing {} segment(s) to {owner}", segments.len()), source: e });
            }
            {
                let mut pending = unanswered.0.lock();
                for s in &segments {
                    pending.remove(&key_of(s));
                }
            }
            // Before they go from here: a query that asked the owner before they landed
            // there, and then this node after they left, would have found them nowhere.
            for s in &segments {
                let (tenant, id) =
                    (TenantId::from_trusted(s.index.tenant.as_str()), CorrelationId::from_trusted(s.index.correlation_id.as_str()));
                ingest.note_moved(&tenant, &id, owner).await;
            }
            store.forget(&segments).await.map_err(ClusterError::store("dropping handed-over segments"))?;
            moved += segments.len() as u64;
        }
    }
}

/// Groups segments by the node each goes to. Pure.
fn by_owner(page: Vec<HandedSegment>, destination: impl Fn(&HandedSegment) -> NodeId) -> BTreeMap<NodeId, Vec<HandedSegment>> {
    let mut out: BTreeMap<NodeId, Vec<HandedSegment>> = BTreeMap::new();
    for s in page {
        out.entry(destination(&s)).or_default().push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ArchiveIndexEntry;

    fn handed(id: &str) -> HandedSegment {
        let index = ArchiveIndexEntry {
            tenant: "t".into(),
            correlation_id: id.into(),
            segment_seq: 1,
            finished_unix_ms: 0,
            last_activity_unix_ms: 0,
            bytes: 0,
            summary: Default::default(),
        };
        HandedSegment { archived: Vec::new(), index }
    }

    #[test]
    fn segments_go_to_their_sessions_owner() {
        let owner = |s: &HandedSegment| NodeId(if s.index.correlation_id.starts_with('a') { 1 } else { 2 });
        let groups = by_owner(vec![handed("a1"), handed("b1"), handed("a2")], owner);
        let ids = |n: u64| groups[&NodeId(n)].iter().map(|s| s.index.correlation_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(1), ["a1", "a2"]);
        assert_eq!(ids(2), ["b1"]);
    }
}
