//! The storage trait finished session segments go through, with its two
//! implementations: the embedded sled archive (default) and ClickHouse.
//!
//! A store takes a [`FinishedSegment`] from the session actor that finished
//! it. Once [`SessionStore::store`] returns `Ok`, the store answers queries
//! for the segment and is responsible for it: when the segment is durable in
//! storage the store settles it ([`Settler`]): its WAL entries are marked
//! done and released and its memory reservation is given back. Until then
//! the WAL keeps the segment's signals, so a crash loses nothing.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ollystack_cluster::NodeId;
use ollystack_proto::store::ArchivedSegment;

use super::listing::Scan;
use super::{SledFlusher, StoreError};
use crate::budget::MemoryBudget;
use crate::model::{CorrelationId, TenantId};
use crate::query::{Pager, Segment, SessionFilter};
use crate::session::finished::{ArchiveIndexEntry, FinishedSegment};
use crate::wal::Wal;

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The stored segments a read found.
#[derive(Debug, Default)]
pub struct StoredSegments {
    pub segments: Vec<ArchivedSegment>,
    /// Why some may be missing.
    pub unavailable: Option<String>,
}

/// One page of the stored segments of a session (see
/// [`crate::query::Pager`]).
#[derive(Debug)]
pub struct StoredPage {
    /// The records in the page, archived segments oldest first.
    pub segments: Vec<Segment>,
    /// Why some may be missing.
    pub unavailable: Option<String>,
    /// The pager after every stored record was shown to it: it counts the
    /// stored records of the session.
    pub pager: Pager,
}

/// Where finished segments are kept and read back from.
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// Takes responsibility for a finished segment (see the module docs).
    /// An error leaves the segment with the caller, who retries later.
    fn store(&self, segment: FinishedSegment) -> StoreFuture<'_, ()>;

    /// Every stored segment of the sessions `ids` (one session's own ID and
    /// the trace-derived IDs aliased to it), oldest first per ID. A store
    /// that could read only part (e.g. a remote database out of reach)
    /// says so in [`StoredSegments::unavailable`].
    fn segments<'a>(&'a self, tenant: &'a TenantId, ids: &'a [CorrelationId]) -> StoreFuture<'a, StoredSegments>;

    /// The part of [`SessionStore::segments`] that `pager` keeps, every
    /// record shown to it in order. Stores override this to decode only
    /// the page (the embedded archive); this default reads everything and
    /// keeps the page, so its memory is bounded only by the session.
    fn segments_page<'a>(&'a self, tenant: &'a TenantId, ids: &'a [CorrelationId], mut pager: Pager) -> StoreFuture<'a, StoredPage> {
        Box::pin(async move {
            let stored = self.segments(tenant, ids).await?;
            let segments = stored
                .segments
                .into_iter()
                .map(|s| pager.keep(Segment { live: false, spans: s.spans, logs: s.logs, exemplars: s.exemplars }))
                .collect();
            Ok(StoredPage { segments, unavailable: stored.unavailable, pager })
        })
    }

    /// Listing entries of stored segments, most recent activity first, that
    /// match `filter`; at most `filter.limit`, from a bounded scan that says
    /// where to resume if it stopped early.
    fn recent<'a>(&'a self, tenant: &'a TenantId, filter: &'a SessionFilter) -> StoreFuture<'a, Scan>;

    /// Trace unification after `from` was stored: makes `from`'s segments
    /// part of `to` where the store can (queries also follow aliases).
    fn rekey<'a>(&'a self, tenant: &'a TenantId, from: &'a CorrelationId, to: &'a CorrelationId) -> StoreFuture<'a, usize>;

    /// Retention the store runs itself (the embedded archive); returns how
    /// many segments went. Stores with their own TTLs return 0.
    fn expire(&self, now_unix_ms: u64) -> StoreFuture<'_, u64>;

    /// Bytes the store holds locally (archive, or segments waiting to flush).
    fn local_bytes(&self) -> u64;

    /// WAL seqs (this node's) held by stored segments of the sessions
    /// `ids`: a restart skips replaying them (a segment stored just before
    /// a crash, its WAL entries not yet released). Stores that do not keep
    /// them return none.
    fn archived_wal_keys<'a>(&'a self, _tenant: &'a TenantId, _ids: &'a [CorrelationId]) -> StoreFuture<'a, BTreeSet<u64>> {
        Box::pin(async { Ok(BTreeSet::new()) })
    }

    /// Segments only this node holds, oldest first, about `max_bytes` of
    /// them: what a leaving node must hand over. A shared store
    /// (ClickHouse) holds none of its own.
    fn local_segments(&self, _max_bytes: u64) -> StoreFuture<'_, Vec<HandedSegment>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Takes segments a leaving node `origin` handed over, durably before
    /// it returns. Taking the same segment twice keeps one copy.
    fn adopt(&self, _origin: NodeId, _segments: Vec<HandedSegment>) -> StoreFuture<'_, ()> {
        Box::pin(async { Err(StoreError::Corrupt { tree: "archive", detail: "this store does not take handed-over segments".into() }) })
    }

    /// Drops segments once their new holder has them.
    fn forget<'a>(&'a self, _segments: &'a [HandedSegment]) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// A finished segment moving from a leaving node to its new holder.
#[derive(Debug, Clone, PartialEq)]
pub struct HandedSegment {
    /// The encoded `ArchivedSegment`.
    pub archived: Vec<u8>,
    pub index: ArchiveIndexEntry,
}

/// Lets go of what segments held once storage has them durably.
#[derive(Debug)]
pub struct Settler {
    pub wal: Arc<Wal>,
    pub flusher: Arc<SledFlusher>,
    pub budget: Arc<MemoryBudget>,
}

impl Settler {
    /// Marks the segments' WAL entries done, makes that durable, releases
    /// the entries, and returns the segments' memory. `segments` yields
    /// (WAL keys, held bytes) per segment.
    pub async fn settle(&self, segments: &[(&[u64], u64)]) -> Result<(), StoreError> {
        let keys: Vec<u64> = segments.iter().flat_map(|(keys, _)| keys.iter().copied()).collect();
        let mut result = self.wal.mark_done(&keys).map_err(StoreError::from);
        // The done markers must be durable before the WAL lets go; if they
        // are not, the entries stay and replay after a restart (the stores
        // de-duplicate what is replayed twice).
        if result.is_ok() {
            result = self.flusher.flush().await;
        }
        if result.is_ok() {
            if let Err(e) = self.wal.release(&keys) {
                tracing::warn!(error = %e, "wal release failed; entries stay until restart");
            }
        }
        for (_, held) in segments {
            self.budget.release(*held);
        }
        result
    }
}
