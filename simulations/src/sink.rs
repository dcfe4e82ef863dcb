//! A faulty sink around a node's session store: while the safety phase
//! lasts, storing a finished segment sometimes fails at once, sometimes
//! hangs for seconds and then fails (a sink that timed out), and sometimes
//! writes the segment and then reports failure before the node settles it
//! (the acknowledgement was lost). The node must keep the segment (its actor retries, the WAL keeps
//! the signals), still answer queries for it, and never store it twice.
//! Reads are not disturbed.
//!
//! The ClickHouse flusher's own handling of lost acknowledgements (retry
//! with the same insert-deduplication token) is tested against real
//! ClickHouse through the chdb shim (`node/tests/chdb_shim.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ollystack_cluster::NodeId;
use ollystack_node::model::{CorrelationId, TenantId};
use ollystack_node::query::SessionFilter;
use ollystack_node::store::archive::adopted_seq;
use ollystack_node::store::listing::Scan;
use ollystack_node::store::{FinishedSegment, HandedSegment, SessionStore, StoreError, StoreFuture, StoredSegments};
use ollystack_proto::store::ArchivedSegment;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use rand::rngs::StdRng;

use crate::oracle::StoredCopy;
use rand::{Rng, SeedableRng};

/// What the harness sets and reads, shared by every node's sink.
#[derive(Debug, Default)]
pub struct SinkControl {
    /// Faults are injected only while this is set (the safety phase).
    pub active: AtomicBool,
    pub failed: AtomicU64,
    pub timed_out: AtomicU64,
    /// Committed, then reported as failed.
    pub lost_acks: AtomicU64,
    /// Segments a leaving node handed over (taken by the receivers).
    pub handed_over: AtomicU64,
    pub stored: AtomicU64,
    /// Every segment a store committed, by (node, seq), whether or not the
    /// sink is faulty: what invariant 1 checks at the storage layer.
    pub committed: Mutex<BTreeMap<(String, u64), StoredCopy>>,
}

impl SinkControl {
    fn record(&self, node: &str, segment: &FinishedSegment) {
        let copy = StoredCopy {
            node: node.to_owned(),
            seq: segment.seq,
            session: segment.key.id.as_str().to_owned(),
            items: items_of(&segment.encoded),
        };
        if let Ok(mut c) = self.committed.lock() {
            c.insert((copy.node.clone(), copy.seq), copy);
        }
    }

    pub fn committed(&self) -> Vec<StoredCopy> {
        self.committed.lock().map(|c| c.values().cloned().collect()).unwrap_or_default()
    }
}

/// The workload's names of a segment's items: span IDs, log bodies,
/// exemplar span IDs.
fn items_of(encoded: &[u8]) -> Vec<String> {
    let Ok(seg) = ArchivedSegment::decode(encoded) else { return vec!["<undecodable segment>".to_owned()] };
    let hex =
        |id: &[u8]| id.get(..8).and_then(|b| b.try_into().ok()).map_or_else(String::new, |b| format!("{:016x}", u64::from_be_bytes(b)));
    let spans = seg.spans.iter().filter_map(|s| Span::decode(s.span.as_slice()).ok()).map(|s| hex(&s.span_id));
    let logs = seg.logs.iter().filter_map(|l| LogRecord::decode(l.log.as_slice()).ok()).filter_map(|l| match l.body?.value? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    });
    let exemplars = seg.exemplars.iter().map(|e| hex(&e.span_id));
    spans.chain(logs).chain(exemplars).collect()
}

/// How a store call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFault {
    None,
    Fail,
    /// Hang this long, then fail.
    Timeout(Duration),
    /// Commit, then report failure.
    LostAck,
}

/// Draws a store call's fault. Pure given the RNG.
pub fn draw(rng: &mut StdRng, fail_rate: f64) -> SinkFault {
    if !rng.random_bool(fail_rate) {
        return SinkFault::None;
    }
    match rng.random_range(0..3) {
        0 => SinkFault::Fail,
        1 => SinkFault::Timeout(Duration::from_millis(rng.random_range(1_000..8_000))),
        _ => SinkFault::LostAck,
    }
}

pub struct FaultySink {
    node: String,
    inner: Arc<dyn SessionStore>,
    control: Arc<SinkControl>,
    rng: Mutex<StdRng>,
    fail_rate: f64,
}

impl std::fmt::Debug for FaultySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultySink").field("inner", &self.inner).field("fail_rate", &self.fail_rate).finish_non_exhaustive()
    }
}

impl FaultySink {
    pub fn new(node: String, inner: Arc<dyn SessionStore>, control: Arc<SinkControl>, seed: u64, fail_rate: f64) -> Self {
        Self { node, inner, control, rng: Mutex::new(StdRng::seed_from_u64(seed)), fail_rate }
    }

    async fn commit(&self, segment: FinishedSegment) -> Result<(), StoreError> {
        let copy = segment.clone();
        self.inner.store(segment).await?;
        self.control.record(&self.node, &copy);
        Ok(())
    }

    fn next_fault(&self) -> SinkFault {
        if !self.control.active.load(Ordering::Acquire) {
            return SinkFault::None;
        }
        match self.rng.lock() {
            Ok(mut rng) => draw(&mut rng, self.fail_rate),
            Err(_) => SinkFault::None,
        }
    }
}

fn injected(what: &str) -> StoreError {
    StoreError::ClickHouse(format!("simulated sink {what}"))
}

impl SessionStore for FaultySink {
    fn store(&self, segment: FinishedSegment) -> StoreFuture<'_, ()> {
        let fault = self.next_fault();
        Box::pin(async move {
            match fault {
                SinkFault::None => {
                    self.commit(segment).await?;
                    self.control.stored.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                SinkFault::Fail => {
                    self.control.failed.fetch_add(1, Ordering::Relaxed);
                    Err(injected("failure"))
                }
                SinkFault::Timeout(after) => {
                    tokio::time::sleep(after).await;
                    self.control.timed_out.fetch_add(1, Ordering::Relaxed);
                    Err(injected(&format!("timeout after {after:?}")))
                }
                SinkFault::LostAck => {
                    // The segment is written, but the node never hears so:
                    // nothing is settled (WAL entries and memory stay
                    // held), as with a ClickHouse insert whose reply was
                    // lost. The node's retry must rewrite, not duplicate.
                    let unsettled = FinishedSegment { wal_keys: Vec::new(), held_bytes: 0, ..segment };
                    self.commit(unsettled).await?;
                    self.control.lost_acks.fetch_add(1, Ordering::Relaxed);
                    Err(injected("acknowledgement lost after commit"))
                }
            }
        })
    }

    fn segments<'a>(&'a self, tenant: &'a TenantId, ids: &'a [CorrelationId]) -> StoreFuture<'a, StoredSegments> {
        self.inner.segments(tenant, ids)
    }

    fn recent<'a>(&'a self, tenant: &'a TenantId, filter: &'a SessionFilter) -> StoreFuture<'a, Scan> {
        self.inner.recent(tenant, filter)
    }

    fn rekey<'a>(&'a self, tenant: &'a TenantId, from: &'a CorrelationId, to: &'a CorrelationId) -> StoreFuture<'a, usize> {
        self.inner.rekey(tenant, from, to)
    }

    fn expire(&self, now_unix_ms: u64) -> StoreFuture<'_, u64> {
        self.inner.expire(now_unix_ms)
    }

    fn local_bytes(&self) -> u64 {
        self.inner.local_bytes()
    }

    fn archived_wal_keys<'a>(&'a self, tenant: &'a TenantId, ids: &'a [CorrelationId]) -> StoreFuture<'a, std::collections::BTreeSet<u64>> {
        self.inner.archived_wal_keys(tenant, ids)
    }

    fn local_segments(&self, max_bytes: u64) -> StoreFuture<'_, Vec<HandedSegment>> {
        self.inner.local_segments(max_bytes)
    }

    fn adopt(&self, origin: NodeId, segments: Vec<HandedSegment>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let copies: Vec<StoredCopy> = segments
                .iter()
                .map(|s| StoredCopy {
                    node: self.node.clone(),
                    seq: adopted_seq(origin, s.index.segment_seq),
                    session: s.index.correlation_id.clone(),
                    items: items_of(&s.archived),
                })
                .collect();
            self.inner.adopt(origin, segments).await?;
            self.control.handed_over.fetch_add(copies.len() as u64, Ordering::Relaxed);
            if let Ok(mut c) = self.control.committed.lock() {
                c.extend(copies.into_iter().map(|copy| ((copy.node.clone(), copy.seq), copy)));
            }
            Ok(())
        })
    }

    fn forget<'a>(&'a self, segments: &'a [HandedSegment]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.inner.forget(segments).await?;
            if let Ok(mut c) = self.control.committed.lock() {
                for s in segments {
                    c.remove(&(self.node.clone(), s.index.segment_seq));
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_follow_the_rate() {
        let mut rng = StdRng::seed_from_u64(1);
        let draws: Vec<SinkFault> = (0..1_000).map(|_| draw(&mut rng, 0.3)).collect();
        let faulty = draws.iter().filter(|f| **f != SinkFault::None).count();
        assert!((200..400).contains(&faulty), "{faulty} faults in 1000 at rate 0.3");
        assert!(draws.iter().any(|f| matches!(f, SinkFault::Timeout(_))));
        assert!(draws.contains(&SinkFault::Fail));
        assert!(draws.contains(&SinkFault::LostAck));
    }
}
