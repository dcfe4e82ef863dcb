//! A faulty sink around a node's session store: while the safety phase
//! lasts, storing a finished segment sometimes fails at once and sometimes
//! hangs for seconds and then fails (a sink that timed out). The node must
//! keep the segment (its actor retries, the WAL keeps the signals) and
//! still answer queries for it. Reads are not disturbed.
//!
//! Not injected: a sink that commits and loses the acknowledgement. The
//! embedded store commits and settles in one call, so a lost
//! acknowledgement at this boundary would model a broken store rather than
//! a sink; the ClickHouse flusher's own handling of it (retry with the same
//! insert-deduplication token) is tested against real ClickHouse through
//! the chdb shim (`node/tests/chdb_shim.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ollystack_node::model::{CorrelationId, TenantId};
use ollystack_node::query::SessionFilter;
use ollystack_node::store::{ArchiveIndexEntry, FinishedSegment, SessionStore, StoreError, StoreFuture, StoredSegments};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the harness sets and reads, shared by every node's sink.
#[derive(Debug, Default)]
pub struct SinkControl {
    /// Faults are injected only while this is set (the safety phase).
    pub active: AtomicBool,
    pub failed: AtomicU64,
    pub timed_out: AtomicU64,
    pub stored: AtomicU64,
}

/// How a store call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFault {
    None,
    Fail,
    /// Hang this long, then fail.
    Timeout(Duration),
}

/// Draws a store call's fault. Pure given the RNG.
pub fn draw(rng: &mut StdRng, fail_rate: f64) -> SinkFault {
    if !rng.random_bool(fail_rate) {
        SinkFault::None
    } else if rng.random_bool(0.5) {
        SinkFault::Fail
    } else {
        SinkFault::Timeout(Duration::from_millis(rng.random_range(1_000..8_000)))
    }
}

pub struct FaultySink {
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
    pub fn new(inner: Arc<dyn SessionStore>, control: Arc<SinkControl>, seed: u64, fail_rate: f64) -> Self {
        Self { inner, control, rng: Mutex::new(StdRng::seed_from_u64(seed)), fail_rate }
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
                    self.inner.store(segment).await?;
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
            }
        })
    }

    fn segments<'a>(&'a self, tenant: &'a TenantId, ids: &'a [CorrelationId]) -> StoreFuture<'a, StoredSegments> {
        self.inner.segments(tenant, ids)
    }

    fn recent<'a>(&'a self, tenant: &'a TenantId, filter: &'a SessionFilter) -> StoreFuture<'a, Vec<ArchiveIndexEntry>> {
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
    }
}
