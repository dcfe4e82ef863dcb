//! The node's memory budget: live session data, the fixed cost of each live
//! session, and requests being decoded.
//!
//! Ingest reserves the bytes a batch will occupy before writing it to the WAL;
//! a failed reservation refuses the batch with a retryable status, so nothing
//! accepted is ever dropped for lack of memory. Bytes are released when the
//! segment holding them is archived (or when a duplicate is discarded).

use std::sync::atomic::{AtomicU64, Ordering};

/// Memory a live session costs beyond its signals: its actor, mailbox and
/// task, registry entries, summary and de-duplication tables. Measured
/// with `ollystack-benches memory` (11.3 KB per live session, issue 16),
/// rounded up; reserved by each session actor while it runs. Without it
/// 200,000 small sessions took 2.1 GB while the budget counted 29.6 MB.
pub const SESSION_OVERHEAD_BYTES: u64 = 12 * 1024;

#[derive(Debug)]
pub struct MemoryBudget {
    /// Bytes currently reserved by live sessions and in-flight batches.
    used_bytes: AtomicU64,
    /// The configured ceiling.
    budget_bytes: u64,
}

impl MemoryBudget {
    pub fn new(budget_bytes: u64) -> Self {
        Self { used_bytes: AtomicU64::new(0), budget_bytes }
    }

    /// Reserves `bytes` if that keeps usage within the budget.
    pub fn try_reserve(&self, bytes: u64) -> bool {
        self.used_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let next = used.checked_add(bytes)?;
                (next <= self.budget_bytes).then_some(next)
            })
            .is_ok()
    }

    /// Reserves unconditionally: WAL replay must take back what was
    /// acknowledged even if the budget shrank since.
    pub fn force_reserve(&self, bytes: u64) {
        self.used_bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    pub fn release(&self, bytes: u64) {
        let prev = self.used_bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| Some(used.saturating_sub(bytes))).unwrap_or(0);
        debug_assert!(prev >= bytes, "released more than reserved: {prev} < {bytes}");
    }

    pub fn used_bytes(&self) -> u64 {
        self.used_bytes.load(Ordering::Acquire)
    }

    pub fn budget_bytes(&self) -> u64 {
        self.budget_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_within_budget_only() {
        let b = MemoryBudget::new(100);
        assert!(b.try_reserve(60));
        assert!(!b.try_reserve(41));
        assert!(b.try_reserve(40));
        b.release(100);
        assert_eq!(b.used_bytes(), 0);
        b.force_reserve(150);
        assert!(!b.try_reserve(1));
    }
}
