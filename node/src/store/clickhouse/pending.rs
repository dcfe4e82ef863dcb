//! Finished segments waiting to be flushed to ClickHouse: a FIFO queue for
//! the flusher, and an index by session so queries see them until their
//! rows are committed. Bounded in segments; their memory stays reserved in
//! the node's budget until they are committed, so a ClickHouse outage
//! fills the budget and ingest sheds load with the retryable status.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use super::rows::row_count;
use crate::model::{CorrelationId, SessionKey, TenantId};
use crate::store::FinishedSegment;

/// A batch closes at whichever of these it reaches first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
}

#[derive(Debug)]
pub struct Pending {
    inner: Mutex<Inner>,
    max_segments: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Not yet taken into a batch, oldest first, with the time each came.
    queue: VecDeque<(Arc<FinishedSegment>, u64)>,
    /// Every segment not yet committed, by session.
    held: HashMap<SessionKey, Vec<Arc<FinishedSegment>>>,
    count: usize,
    bytes: u64,
}

impl Pending {
    pub fn new(max_segments: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), max_segments }
    }

    /// Queues a segment; `Err(count)` when the bound is reached.
    pub fn push(&self, segment: FinishedSegment, now_unix_ms: u64) -> Result<(), usize> {
        let mut inner = self.inner.lock();
        if inner.count >= self.max_segments {
            return Err(inner.count);
        }
        let segment = Arc::new(segment);
        inner.count += 1;
        inner.bytes += segment.encoded.len() as u64;
        inner.held.entry(segment.key.clone()).or_default().push(segment.clone());
        inner.queue.push_back((segment, now_unix_ms));
        Ok(())
    }

    /// When the oldest queued segment came, if any is queued.
    pub fn oldest_unix_ms(&self) -> Option<u64> {
        self.inner.lock().queue.front().map(|(_, t)| *t)
    }

    /// Whether the queue already holds a full batch.
    pub fn has_full_batch(&self, limits: BatchLimits) -> bool {
        let inner = self.inner.lock();
        let (mut rows, mut bytes) = (0, 0);
        for (seg, _) in &inner.queue {
            rows += row_count(seg);
            bytes += seg.encoded.len();
            if rows >= limits.max_rows || bytes >= limits.max_bytes {
                return true;
            }
        }
        false
    }

    /// Takes the oldest segments up to the limits (at least one, so a
    /// segment larger than a batch still goes, alone).
    pub fn take_batch(&self, limits: BatchLimits) -> Vec<Arc<FinishedSegment>> {
        let mut inner = self.inner.lock();
        let (mut rows, mut bytes) = (0, 0);
        let mut batch = Vec::new();
        while let Some((seg, _)) = inner.queue.front() {
            let (r, b) = (row_count(seg), seg.encoded.len());
            if !batch.is_empty() && (rows + r > limits.max_rows || bytes + b > limits.max_bytes) {
                break;
            }
            rows += r;
            bytes += b;
            batch.push(seg.clone());
            inner.queue.pop_front();
        }
        batch
    }

    /// Forgets committed segments.
    pub fn committed(&self, batch: &[Arc<FinishedSegment>]) {
        let mut inner = self.inner.lock();
        for seg in batch {
            let Some(list) = inner.held.get_mut(&seg.key) else { continue };
            let before = list.len();
            list.retain(|s| !Arc::ptr_eq(s, seg));
            let removed = before - list.len();
            if list.is_empty() {
                inner.held.remove(&seg.key);
            }
            inner.count -= removed;
            inner.bytes -= removed as u64 * seg.encoded.len() as u64;
        }
    }

    /// Uncommitted segments of these sessions.
    pub fn of(&self, tenant: &TenantId, ids: &[CorrelationId]) -> Vec<Arc<FinishedSegment>> {
        let inner = self.inner.lock();
        ids.iter().filter_map(|id| inner.held.get(&SessionKey { tenant: tenant.clone(), id: id.clone() })).flatten().cloned().collect()
    }

    /// Every uncommitted segment of a tenant.
    pub fn of_tenant(&self, tenant: &TenantId) -> Vec<Arc<FinishedSegment>> {
        let inner = self.inner.lock();
        inner.held.iter().filter(|(k, _)| k.tenant == *tenant).flat_map(|(_, v)| v.iter().cloned()).collect()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().count
    }

    pub fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Summary;

    fn seg(id: &str, seq: u64, spans: u64, bytes: usize) -> FinishedSegment {
        FinishedSegment {
            key: SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted(id) },
            seq,
            opened_unix_ms: 0,
            finished_unix_ms: 0,
            last_activity_unix_ms: 0,
            reason: "idle",
            summary: Summary { spans, ..Default::default() },
            encoded: vec![0; bytes],
            wal_keys: vec![seq],
            held_bytes: 0,
        }
    }

    const LIMITS: BatchLimits = BatchLimits { max_rows: 10, max_bytes: 1_000 };

    #[test]
    fn batches_close_at_rows_or_bytes() {
        let p = Pending::new(100);
        for i in 0..4 {
            p.push(seg("a", i, 3, 100), i).expect("room");
        }
        // 4 rows per segment: two fit in 10 rows, a third would not.
        assert!(p.has_full_batch(LIMITS));
        assert_eq!(p.take_batch(LIMITS).iter().map(|s| s.seq).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(p.oldest_unix_ms(), Some(2));
        p.push(seg("b", 9, 0, 2_000), 9).expect("room");
        assert_eq!(p.take_batch(LIMITS).len(), 2);
        // Larger than a whole batch: goes alone.
        assert_eq!(p.take_batch(LIMITS).iter().map(|s| s.seq).collect::<Vec<_>>(), vec![9]);
        assert!(p.take_batch(LIMITS).is_empty());
    }

    #[test]
    fn held_until_committed_and_bounded() {
        let p = Pending::new(2);
        p.push(seg("a", 1, 1, 10), 0).expect("room");
        p.push(seg("a", 2, 1, 10), 0).expect("room");
        assert_eq!(p.push(seg("b", 3, 1, 10), 0), Err(2));
        let batch = p.take_batch(LIMITS);
        let t = TenantId::default_tenant();
        assert_eq!(p.of(&t, &[CorrelationId::from_trusted("a")]).len(), 2, "taken but not committed: still visible");
        p.committed(&batch[..1]);
        assert_eq!(p.of(&t, &[CorrelationId::from_trusted("a")]).len(), 1);
        assert_eq!((p.count(), p.bytes()), (1, 10));
        p.committed(&batch[1..]);
        assert!(p.of_tenant(&t).is_empty());
        p.push(seg("b", 3, 1, 10), 0).expect("room again");
    }
}
