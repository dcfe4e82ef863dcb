//! Rebuilding a failed session actor's data from its WAL entries, and the
//! budget change that goes with it. Pure: the supervisor reads the entries
//! and carries the result out.
//!
//! Exactly once: the failed actor's [`Held`] lists every WAL entry it
//! answered for (its state and its mailbox; see [`super::holding`]), each
//! once, and no other actor lists them. The rebuilt state holds those
//! entries that are still unsettled, and goes to the session's live actor
//! as one `Absorb` (which de-duplicates against what that actor holds).
//! Entries stay in the WAL until the segment holding them is stored, so a
//! restart replays each of them once more only if it was not stored yet.

use ollystack_proto::store::WalEntry;
use prost::Message;

use super::holding::Held;
use super::state::{SessionInput, SessionState};
use crate::model::SessionKey;

/// How the memory budget must change when a failed actor's data is
/// rebuilt: the failed actor's reservation (`Held::bytes`) becomes the
/// rebuilt state's (`held_bytes`, which travels with it to the actor that
/// absorbs it). Both are reservations made at ingest and never released,
/// so only the difference moves: nothing is released twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetFix {
    Keep,
    /// Release this many bytes (duplicates the failed actor had not given
    /// back yet, or entries settled meanwhile).
    Release(u64),
    /// Reserve this many more (the failed actor gave back more than the
    /// rebuilt state does: a panic between its release and its count).
    Reserve(u64),
}

pub fn budget_fix(failed_bytes: u64, rebuilt_bytes: u64) -> BudgetFix {
    match failed_bytes.cmp(&rebuilt_bytes) {
        std::cmp::Ordering::Equal => BudgetFix::Keep,
        std::cmp::Ordering::Greater => BudgetFix::Release(failed_bytes - rebuilt_bytes),
        std::cmp::Ordering::Less => BudgetFix::Reserve(rebuilt_bytes - failed_bytes),
    }
}

/// A failed actor's data, rebuilt.
#[derive(Debug)]
pub struct Rebuilt {
    pub state: SessionState,
    pub budget: BudgetFix,
    /// Entries the failed actor held that are no longer in the WAL
    /// (settled meanwhile) or no longer decode.
    pub missing: usize,
}

/// Rebuilds what `held` lists from `entries` (seq, encoded `WalEntry`),
/// in WAL order, into a fresh segment of `key`.
///
/// `entries` are the held entries still in the WAL: a missing one was
/// settled, and whoever settled it (the store, or a shipment's answer)
/// gave its memory back with it. When all are missing the actor failed
/// after handing its data on (between the settling and `finish_closing`):
/// nothing is rebuilt and nothing released. Settled and unsettled entries
/// mixed in one holding do not happen (a segment settles all its entries
/// at once, and a retired actor takes no new signals); if they did, the
/// settled ones' bytes would be released twice (the budget saturates at 0).
pub fn rebuild(key: SessionKey, held: &Held, entries: Vec<(u64, Vec<u8>)>, now_unix_ms: u64) -> Rebuilt {
    let mut state = SessionState::new(key, now_unix_ms);
    let entries: Vec<_> = entries.into_iter().filter(|(seq, _)| held.wal_keys.contains(seq)).collect();
    if entries.is_empty() && !held.wal_keys.is_empty() {
        return Rebuilt { state, budget: BudgetFix::Keep, missing: held.wal_keys.len() };
    }
    let mut found = 0;
    for (seq, bytes) in entries {
        let Ok(entry) = WalEntry::decode(bytes.as_slice()) else { continue };
        found += 1;
        // Duplicates are dropped here; their bytes are part of the fix.
        state.absorb(SessionInput::from_wal(seq, &entry), now_unix_ms);
    }
    let budget = budget_fix(held.bytes, state.held_bytes);
    Rebuilt { state, budget, missing: held.wal_keys.len().saturating_sub(found) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CorrelationId, TenantId};
    use ollystack_proto::store::StoredSpan;
    use opentelemetry_proto::tonic::trace::v1::Span;

    fn key() -> SessionKey {
        SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted("order-1") }
    }

    fn entry(span_ids: &[u8]) -> Vec<u8> {
        let spans = span_ids
            .iter()
            .map(|&i| StoredSpan {
                service_name: "api".into(),
                span: Span { trace_id: vec![1; 16], span_id: vec![i; 8], name: "x".into(), ..Default::default() }.encode_to_vec(),
            })
            .collect();
        WalEntry { tenant_id: "default".into(), correlation_id: "order-1".into(), spans, ..Default::default() }.encode_to_vec()
    }

    fn cost(entries: &[(u64, Vec<u8>)]) -> u64 {
        entries.iter().map(|(seq, b)| SessionInput::from_wal(*seq, &WalEntry::decode(b.as_slice()).expect("entry")).cost_bytes()).sum()
    }

    #[test]
    fn the_budget_moves_only_by_the_difference() {
        assert_eq!(budget_fix(10, 10), BudgetFix::Keep);
        assert_eq!(budget_fix(10, 4), BudgetFix::Release(6));
        assert_eq!(budget_fix(4, 10), BudgetFix::Reserve(6));
    }

    #[test]
    fn rebuilds_exactly_the_held_entries() {
        let entries = vec![(3, entry(&[1, 2])), (4, entry(&[9])), (7, entry(&[3]))];
        // Entry 4 belongs to another actor; the failed one was sent 3 and 7
        // and had absorbed both (nothing to give back).
        let held = Held { wal_keys: vec![3, 7], bytes: cost(&[entries[0].clone(), entries[2].clone()]) };
        let r = rebuild(key(), &held, entries, 5);
        assert_eq!(r.state.span_count(), 3);
        assert_eq!(r.state.wal_keys, vec![3, 7]);
        assert_eq!(r.budget, BudgetFix::Keep, "the rebuilt state holds exactly what the failed actor held");
        assert_eq!(r.missing, 0);
    }

    #[test]
    fn a_redelivered_entry_the_actor_had_not_absorbed_yet_is_released() {
        // Entry 8 re-delivers span 1 and was still in the mailbox: its
        // reservation was held, and the rebuild drops it as a duplicate.
        let entries = vec![(3, entry(&[1, 2])), (8, entry(&[1]))];
        let held = Held { wal_keys: vec![3, 8], bytes: cost(&entries) };
        let r = rebuild(key(), &held, entries.clone(), 5);
        assert_eq!(r.state.span_count(), 2);
        assert_eq!(r.budget, BudgetFix::Release(cost(&entries[1..])));
    }

    #[test]
    fn an_entry_that_no_longer_decodes_gives_its_memory_back() {
        let entries = vec![(2, vec![0xff, 0xff, 0xff]), (3, entry(&[1]))];
        let held = Held { wal_keys: vec![2, 3], bytes: cost(&entries[1..]) + 500 };
        let r = rebuild(key(), &held, entries, 5);
        assert_eq!(r.missing, 1);
        assert_eq!(r.budget, BudgetFix::Release(500));
    }

    #[test]
    fn data_already_settled_is_neither_rebuilt_nor_released_again() {
        let held = Held { wal_keys: vec![2, 3], bytes: 900 };
        let r = rebuild(key(), &held, vec![(4, entry(&[1]))], 5);
        assert_eq!((r.state.span_count(), r.budget, r.missing), (0, BudgetFix::Keep, 2));
    }
}
