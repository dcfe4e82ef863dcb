//! [`SessionStore`] over the embedded sled archive (the default storage).

use std::collections::BTreeSet;
use std::sync::Arc;

use ollystack_cluster::NodeId;

use super::archive_writer::ArchiveQueue;
use super::listing::{Scan, EXAMINE_MAX};
use super::segment_store::{HandedSegment, SessionStore, Settler, StoreFuture, StoredPage, StoredSegments};
use super::Archive;
use crate::model::{CorrelationId, TenantId};
use crate::query::{Pager, SessionFilter};
use crate::session::finished::FinishedSegment;

#[derive(Debug)]
pub struct EmbeddedStore {
    archive: Arc<Archive>,
    /// Finished segments go through the archive's one writer, in batches.
    writer: ArchiveQueue,
    settler: Arc<Settler>,
    retention_ms: u64,
    max_bytes: u64,
}

impl EmbeddedStore {
    /// The store and its archive writer's task (which ends at `stop`).
    pub fn start(
        archive: Arc<Archive>,
        settler: Arc<Settler>,
        retention_ms: u64,
        max_bytes: u64,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (writer, task) = ArchiveQueue::start(archive.clone(), settler.clone(), stop);
        (Self { archive, writer, settler, retention_ms, max_bytes }, task)
    }
}

impl SessionStore for EmbeddedStore {
    fn store(&self, segment: FinishedSegment) -> StoreFuture<'_, ()> {
        Box::pin(self.writer.archive(segment))
    }

    fn segments<'a>(&'a self, tenant: &'a TenantId, ids: &'a [CorrelationId]) -> StoreFuture<'a, StoredSegments> {
        Box::pin(async move {
            let mut segments = Vec::new();
            for id in ids {
                segments.extend(self.archive.segments(tenant, id)?);
            }
            Ok(StoredSegments { segments, unavailable: None })
        })
    }

    /// Decodes only the page, on the blocking pool: a huge session costs
    /// its encoded bytes (one stored segment at a time) and one page.
    fn segments_page<'a>(&'a self, tenant: &'a TenantId, ids: &'a [CorrelationId], mut pager: Pager) -> StoreFuture<'a, StoredPage> {
        let (archive, tenant, ids) = (self.archive.clone(), tenant.clone(), ids.to_vec());
        Box::pin(async move {
            ollystack_cluster::blocking::unblock(move || {
                let mut segments = Vec::new();
                for id in &ids {
                    segments.extend(archive.page(&tenant, id, &mut pager)?);
                }
                Ok(StoredPage { segments, unavailable: None, pager })
            })
            .await
            .map_err(|e| super::StoreError::Corrupt { tree: "archive", detail: format!("read task failed: {e}") })?
        })
    }

    /// A bounded scan of the time or service index, on the blocking pool.
    fn recent<'a>(&'a self, tenant: &'a TenantId, filter: &'a SessionFilter) -> StoreFuture<'a, Scan> {
        let (archive, tenant, filter) = (self.archive.clone(), tenant.clone(), filter.clone());
        Box::pin(async move {
            ollystack_cluster::blocking::unblock(move || archive.list(&tenant, &filter, EXAMINE_MAX))
                .await
                .map_err(|e| super::StoreError::Corrupt { tree: "archive", detail: format!("listing task failed: {e}") })?
        })
    }

    fn rekey<'a>(&'a self, tenant: &'a TenantId, from: &'a CorrelationId, to: &'a CorrelationId) -> StoreFuture<'a, usize> {
        let (archive, tenant, from, to) = (self.archive.clone(), tenant.clone(), from.clone(), to.clone());
        Box::pin(async move {
            ollystack_cluster::blocking::unblock(move || archive.rekey(&tenant, &from, &to))
                .await
                .map_err(|e| super::StoreError::Corrupt { tree: "archive", detail: format!("rekey task failed: {e}") })?
        })
    }

    fn expire(&self, now_unix_ms: u64) -> StoreFuture<'_, u64> {
        let archive = self.archive.clone();
        let (retention_ms, max_bytes) = (self.retention_ms, self.max_bytes);
        let failed = |e: ollystack_cluster::blocking::Panicked| super::StoreError::Corrupt {
            tree: "archive",
            detail: format!("retention task failed: {e}"),
        };
        Box::pin(async move {
            let expire = archive.clone();
            let removed = ollystack_cluster::blocking::unblock(move || expire.expire(now_unix_ms, retention_ms, max_bytes))
                .await
                .map_err(failed)??;
            // Record files go once the removal of every pointer to them is durable.
            let dead = archive.dead_record_files();
            if !dead.is_empty() {
                self.settler.flusher.flush().await?;
                ollystack_cluster::blocking::unblock(move || archive.delete_record_files(&dead)).await.map_err(failed)??;
            }
            Ok(removed)
        })
    }

    fn local_bytes(&self) -> u64 {
        self.archive.bytes()
    }

    fn archived_wal_keys<'a>(&'a self, tenant: &'a TenantId, ids: &'a [CorrelationId]) -> StoreFuture<'a, BTreeSet<u64>> {
        Box::pin(async move {
            let mut keys = BTreeSet::new();
            for id in ids {
                keys.extend(self.archive.segments(tenant, id)?.into_iter().flat_map(|s| s.wal_keys));
            }
            Ok(keys)
        })
    }

    fn local_segments(&self, max_bytes: u64) -> StoreFuture<'_, Vec<HandedSegment>> {
        Box::pin(async move {
            Ok(self.archive.oldest(max_bytes)?.into_iter().map(|(index, archived)| HandedSegment { archived, index }).collect())
        })
    }

    fn adopt(&self, origin: NodeId, segments: Vec<HandedSegment>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let handed: Vec<_> = segments.into_iter().map(|s| (s.index, s.archived)).collect();
            let archive = self.archive.clone();
            ollystack_cluster::blocking::unblock(move || archive.adopt(origin, &handed))
                .await
                .map_err(|e| super::StoreError::Corrupt { tree: "archive", detail: format!("adopt task failed: {e}") })??;
            // Durable before the leaving node lets go of its copies.
            self.settler.flusher.flush().await
        })
    }

    fn forget<'a>(&'a self, segments: &'a [HandedSegment]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            for s in segments {
                self.archive.remove(&s.index)?;
            }
            Ok(())
        })
    }
}
