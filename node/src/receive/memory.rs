//! Memory for decoding a request, taken from the node's memory budget
//! before the request is decoded.
//!
//! A decoded OTLP request is several times its wire size (every span,
//! attribute and ID is an allocation of its own) and ingest then holds an
//! encoded copy until its sessions take it. Checked only after decoding,
//! 16 concurrent 15 MB requests with a 100 MB budget took 3.46 GB (the
//! network-safety attack). So each request is charged
//! [`DECODE_FACTOR`] × its plain (uncompressed) size before it is decoded
//! and keeps the charge until it is answered; a request that does not fit
//! is refused as overloaded (429 / RESOURCE_EXHAUSTED, retryable).

use std::sync::Arc;

use crate::ingest::{IngestError, Overload};
use crate::session::MemoryBudget;

/// Bytes charged per plain request byte while it is decoded and ingested.
pub const DECODE_FACTOR: u64 = 8;

/// How long an overloaded client is asked to wait.
const RETRY_AFTER_MS: u64 = 1_000;

/// The node's memory budget as the receivers charge it; `None` charges
/// nothing (receivers under test without a node).
#[derive(Debug, Clone, Default)]
pub struct RequestMemory(pub Option<Arc<MemoryBudget>>);

/// A charge, given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Option<Arc<MemoryBudget>>,
    bytes: u64,
}

impl RequestMemory {
    /// Charges decoding `plain_bytes`, or refuses. A charge larger than half
    /// the budget is cut to half: a request the node accepts by size must
    /// fit once the node is quiet, not be told to retry forever.
    pub fn charge(&self, plain_bytes: usize) -> Result<Charge, IngestError> {
        let Some(budget) = &self.0 else { return Ok(Charge { budget: None, bytes: 0 }) };
        let bytes = charge_bytes(plain_bytes, budget.budget_bytes());
        if budget.try_reserve(bytes) {
            Ok(Charge { budget: Some(budget.clone()), bytes })
        } else {
            Err(IngestError::Overloaded { reason: Overload::MemoryBudget, retry_after_ms: RETRY_AFTER_MS })
        }
    }
}

/// What decoding `plain_bytes` is charged under a budget of `budget_bytes`.
fn charge_bytes(plain_bytes: usize, budget_bytes: u64) -> u64 {
    (plain_bytes as u64).saturating_mul(DECODE_FACTOR).min(budget_bytes / 2)
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_charged_until_it_is_answered() {
        let budget = Arc::new(MemoryBudget::new(10_000));
        let memory = RequestMemory(Some(budget.clone()));
        let first = memory.charge(500).expect("fits");
        assert_eq!(budget.used_bytes(), 4_000);
        let second = memory.charge(500).expect("fits");
        assert!(memory.charge(500).is_err(), "12,000 of 10,000");
        drop((first, second));
        assert_eq!(budget.used_bytes(), 0);
    }

    #[test]
    fn a_huge_request_is_charged_half_the_budget_at_most() {
        assert_eq!(charge_bytes(1 << 30, 1_000), 500);
        assert_eq!(charge_bytes(10, 1_000), 80);
        let budget = Arc::new(MemoryBudget::new(1_000));
        let memory = RequestMemory(Some(budget.clone()));
        let held = memory.charge(1 << 20).expect("fits on a quiet node");
        assert!(memory.charge(1 << 20).is_ok(), "two halves fit");
        drop(held);
    }

    #[test]
    fn without_a_budget_nothing_is_charged() {
        assert!(RequestMemory::default().charge(usize::MAX).is_ok());
    }
}
