//! ClickHouse storage: migrations, the batched flusher of finished
//! sessions, and the read path for queries.
//!
//! * `settings`: how to reach ClickHouse and batch writes.
//! * `migrate`: the schema in `migrations/`, applied in order.
//! * `rows`: pure conversion of a finished segment into table rows.
//! * `pending`: segments waiting for the flusher (and visible to queries).
//! * `flusher`: batches, inserts with deduplication tokens, retries.
//! * `read`: `sessions` table queries for the API.

mod flusher;
mod migrate;
mod pending;
mod read;
mod rows;
mod settings;

use std::collections::HashSet;
use std::sync::Arc;

use ollystack_cluster::NodeId;
use ollystack_proto::store::ArchivedSegment;
use prost::Message;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use migrate::{migrate, migrate_files, MigrateError, Migration, MigrationReport, MIGRATIONS};
pub use read::{RECENT_SQL, SEGMENTS_SQL};
pub use rows::{ExemplarRow, LogRow, Rows, SessionRow, TraceRow};
pub use settings::{is_identifier, ClickHouseSettings};

use self::flusher::Flusher;
use self::pending::Pending;
use super::listing::Scan;
use super::segment_store::{SessionStore, Settler, StoreFuture, StoredPage, StoredSegments};
use super::segment_walk::{page_of, WalkError};
use super::{ArchiveIndexEntry, StoreError};
use crate::clock::SharedClock;
use crate::metrics::NodeMetrics;
use crate::model::{CorrelationId, TenantId};
use crate::query::{Pager, Segment, SessionFilter};
use crate::session::finished::FinishedSegment;

/// Finished segments waiting for ClickHouse, at most. Their bytes are
/// bounded by the memory budget; this bounds their count.
const MAX_PENDING_SEGMENTS: usize = 100_000;

/// [`SessionStore`] over ClickHouse.
pub struct ClickHouseStore {
    client: clickhouse::Client,
    pending: Arc<Pending>,
    wake: Arc<Notify>,
    clock: SharedClock,
    metrics: Arc<NodeMetrics>,
    /// This node's ID as the `node_id` column holds it ([`NodeId::hex`]).
    node_column: String,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore").field("node_id", &self.node_column).field("pending", &self.pending).finish_non_exhaustive()
    }
}

impl ClickHouseStore {
    /// The store of node `node` and its flusher task (which ends when
    /// `stop` turns true).
    pub fn start(
        settings: ClickHouseSettings,
        settler: Arc<Settler>,
        clock: SharedClock,
        metrics: Arc<NodeMetrics>,
        node: NodeId,
        stop: watch::Receiver<bool>,
    ) -> (Self, JoinHandle<()>) {
        let node_column = node.hex();
        let client = settings.client();
        let pending = Arc::new(Pending::new(MAX_PENDING_SEGMENTS));
        let wake = Arc::new(Notify::new());
        let flusher = Flusher {
            client: client.clone(),
            settings,
            pending: pending.clone(),
            wake: wake.clone(),
            settler,
            clock: clock.clone(),
            metrics: metrics.clone(),
            node_column: node_column.clone(),
        };
        let task = tokio::spawn(flusher.run(stop));
        (Self { client, pending, wake, clock, metrics, node_column }, task)
    }
}

impl ClickHouseStore {
    /// Finished segments not yet committed to ClickHouse.
    pub fn pending_segments(&self) -> usize {
        self.pending.count()
    }
}

impl SessionStore for ClickHouseStore {
    fn store(&self, segment: FinishedSegment) -> StoreFuture<'_, ()> {
        let result = self.pending.push(segment, self.clock.now_unix_ms()).map_err(StoreError::Backlog);
        self.metrics.clickhouse_pending_segments.set(self.pending.count() as u64);
        self.wake.notify_one();
        Box::pin(std::future::ready(result))
    }

    fn segments<'a>(&'a self, tenant: &'a TenantId, ids: &'a [CorrelationId]) -> StoreFuture<'a, StoredSegments> {
        Box::pin(async move {
            // Pending first, then ClickHouse: a segment committed meanwhile
            // is seen at least once; one seen twice is dropped here.
            let waiting = self.pending.of(tenant, ids);
            let (stored, unavailable) = match read::segments(&self.client, tenant, ids).await {
                Ok(stored) => (stored, None),
                Err(e) => (Vec::new(), Some(format!("flushed segments could not be read from ClickHouse: {e}"))),
            };
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for ((node, seq), seg) in stored {
                if seen.insert((node, seq)) {
                    out.push(seg);
                }
            }
            for seg in waiting {
                if seen.insert((self.node_column.clone(), seg.seq)) {
                    let decoded = ArchivedSegment::decode(seg.encoded.as_slice())
                        .map_err(|e| StoreError::Corrupt { tree: "pending segment", detail: e.to_string() })?;
                    out.push(decoded);
                }
            }
            Ok(StoredSegments { segments: out, unavailable })
        })
    }

    /// Streams rows and decodes only the page: one stored segment and the
    /// page in memory, not the session.
    fn segments_page<'a>(&'a self, tenant: &'a TenantId, ids: &'a [CorrelationId], mut pager: Pager) -> StoreFuture<'a, StoredPage> {
        Box::pin(async move {
            // Pending first, then ClickHouse (as in `segments`): a segment
            // committed meanwhile is seen at least once and paged once.
            let waiting = self.pending.of(tenant, ids);
            let mut seen = HashSet::new();
            let mut segments = Vec::new();
            let corrupt = |tree: &'static str| move |e: WalkError| StoreError::Corrupt { tree, detail: e.to_string() };
            let mut keep = |segment: Segment| {
                if !(segment.spans.is_empty() && segment.logs.is_empty() && segment.exemplars.is_empty()) {
                    segments.push(segment);
                }
            };
            let read = read::each_segment(&self.client, tenant, ids, |key, payload| {
                if seen.insert(key) {
                    keep(page_of(payload, &mut pager).map_err(corrupt("clickhouse sessions.payload"))?);
                }
                Ok(())
            })
            .await;
            let unavailable = read.err().map(|e| format!("flushed segments could not be read from ClickHouse: {e}"));
            for seg in waiting {
                if seen.insert((self.node_column.clone(), seg.seq)) {
                    keep(page_of(&seg.encoded, &mut pager).map_err(corrupt("pending segment"))?);
                }
            }
            Ok(StoredPage { segments, unavailable, pager })
        })
    }

    /// ClickHouse scans with its own indexes and `LIMIT`: never stops early.
    fn recent<'a>(&'a self, tenant: &'a TenantId, filter: &'a SessionFilter) -> StoreFuture<'a, Scan> {
        Box::pin(async move {
            let mut out: Vec<ArchiveIndexEntry> = self
                .pending
                .of_tenant(tenant)
                .iter()
                .filter(|s| filter.matches(&s.summary, s.last_activity_unix_ms))
                .filter(|s| filter.before_unix_ms.is_none_or(|b| s.finished_unix_ms < b))
                .map(|s| s.index_entry())
                .collect();
            out.extend(read::recent(&self.client, tenant, filter).await?);
            out.sort_by_key(|e| std::cmp::Reverse(e.last_activity_unix_ms));
            out.truncate(filter.limit);
            Ok(Scan { examined: out.len(), entries: out, resume_before_unix_ms: None })
        })
    }

    /// Reads follow aliases (a session's segments include those stored
    /// under trace-derived IDs aliased to it), so nothing moves here.
    fn rekey<'a>(&'a self, _tenant: &'a TenantId, _from: &'a CorrelationId, _to: &'a CorrelationId) -> StoreFuture<'a, usize> {
        Box::pin(std::future::ready(Ok(0)))
    }

    /// ClickHouse expires rows itself (table TTLs).
    fn expire(&self, _now_unix_ms: u64) -> StoreFuture<'_, u64> {
        Box::pin(std::future::ready(Ok(0)))
    }

    fn local_bytes(&self) -> u64 {
        self.pending.bytes()
    }
}
