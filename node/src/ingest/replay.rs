//! Start-up: the WAL replayed into the trace index and the session actors.
//!
//! Replay streams: one WAL record is read at a time ([`crate::wal::Replay`]),
//! so its memory is that of the sessions it rebuilds plus one record. Those
//! sessions stay within the memory budget: when replayed data passes it
//! (the budget shrank since, or the WAL grew while storage was down), the
//! sessions replayed so far are finished early and archived, and replay
//! waits until storage has taken them (a session with later entries opens
//! another segment; queries merge segments). Acknowledged data is never
//! dropped for lack of memory: if storage does not take the finished
//! sessions within [`RELIEF_WAIT_MS_MAX`], the rest of the replay goes on
//! over the budget (reservations are forced), and ingest answers 429 until
//! memory is back.
//! Entries a crash caught on their way to another node
//! ([`WalRecord::Handing`]) are held apart and sent there again under the
//! same shipment ID once the node can reach the cluster
//! ([`ResumedHandOffs::resume`]): the other node may have taken them
//! already, and it takes a shipment once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ollystack_cluster::NodeId;
use prost::Message;

use super::IngestError;
use crate::model::SessionKey;
use crate::session::{FinishReason, SessionInput};
use crate::session::{SessionEnv, SessionMsg};
use crate::store::{ExemplarIndex, ShipmentLog};
use crate::wal::{Handing, WalRecord};

/// Hand-offs to resume (see the module docs), by (node, shipment).
#[derive(Debug, Default)]
pub struct ResumedHandOffs(BTreeMap<(NodeId, u64), (SessionKey, Vec<SessionInput>)>);

impl ResumedHandOffs {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sends each again (call once the node reaches the cluster).
    pub async fn resume(self, env: &Arc<SessionEnv>) -> Result<(), IngestError> {
        for ((node, shipment), (key, inputs)) in self.0 {
            tracing::info!(session = %key.id, %node, shipment, "resuming a hand-off a stop interrupted");
            env.registry.resume_hand_off(env, key, inputs, node, shipment).await.map_err(|e| IngestError::Internal(e.to_string()))?;
        }
        Ok(())
    }
}

/// The latest hand-off each replayed entry was part of, for hand-offs all
/// of whose entries are still in the WAL (a settled one left none).
/// `present`: the entries to replay; `handings`: every note, in log order.
fn unsettled_hand_offs(present: &BTreeSet<u64>, handings: &[Handing]) -> HashMap<u64, (NodeId, u64)> {
    let mut of_entry = HashMap::new();
    for Handing { node, shipment, keys } in handings {
        if !keys.is_empty() && keys.iter().all(|k| present.contains(k)) {
            for k in keys {
                of_entry.insert(*k, (*node, *shipment));
            }
        }
    }
    of_entry
}

/// Replays the WAL into the trace index and session actors (start-up).
/// Memory is taken back unconditionally: these signals were acknowledged.
/// Returns how many entries were replayed, and the hand-offs to resume.
pub async fn replay_wal(
    env: &Arc<SessionEnv>,
    exemplars: &ExemplarIndex,
    shipments: &ShipmentLog,
    replay: crate::wal::Replay,
) -> Result<(u64, ResumedHandOffs), IngestError> {
    let now = env.clock.now_unix_ms();
    let mut replayed = 0;
    let mut archived = ArchivedKeys::default();
    let handing = unsettled_hand_offs(replay.entries(), replay.handings());
    let mut resumed = ResumedHandOffs::default();
    // Once storage failed to take finished sessions in time, the rest of
    // the replay goes on over the budget (one wait, not one per entry).
    let mut relief = true;
    for item in replay {
        let (key, record) = item.map_err(|e| IngestError::Internal(format!("reading the wal: {e}")))?;
        let entry = match record {
            WalRecord::Alias { tenant, from, to } => {
                env.storage.traces.set_alias(&tenant, &from, &to, now)?;
                continue;
            }
            WalRecord::Binding { tenant, trace, id, explicit: true } => {
                env.storage.traces.bind(&tenant, trace, &crate::correlate::TraceBinding { id, explicit: true }, now)?;
                continue;
            }
            WalRecord::Shipment { origin, id } => {
                shipments.record((origin, id), now)?;
                continue;
            }
            WalRecord::Binding { tenant, trace, id, explicit: false } => {
                if env.storage.traces.binding(&tenant, trace)?.is_none() {
                    env.storage.traces.bind(&tenant, trace, &crate::correlate::TraceBinding { id, explicit: false }, now)?;
                }
                continue;
            }
            WalRecord::Handing { .. } => continue,
            WalRecord::Entry(bytes) => match ollystack_proto::store::WalEntry::decode(bytes.as_slice()) {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::error!(seq = key, error = %e, "undecodable wal entry skipped");
                    continue;
                }
            },
        };
        let session = SessionKey {
            tenant: crate::model::TenantId::from_trusted(entry.tenant_id.as_str()),
            id: crate::model::CorrelationId::from_trusted(entry.correlation_id.as_str()),
        };
        if archived.contains(env, &session, key).await? {
            continue;
        }
        let input = SessionInput::from_wal(key, &entry);
        env.budget.force_reserve(input.cost_bytes());
        if !input.exemplars.is_empty() {
            exemplars.add(&session.tenant, &session.id, &input.exemplars, key, now)?;
        }
        replayed += 1;
        if let Some(&to) = handing.get(&key) {
            let resolved = SessionKey { id: env.storage.traces.resolve(&session.tenant, &session.id)?, tenant: session.tenant };
            resumed.0.entry(to).or_insert_with(|| (resolved, Vec::new())).1.push(input);
            continue;
        }
        env.registry.deliver(env, session, SessionMsg::Ingest(Box::new(input))).await.map_err(|e| IngestError::Internal(e.to_string()))?;
        if relief && env.budget.used_bytes() > env.budget.budget_bytes() {
            relief = relieve(env).await;
        }
    }
    if !archived.found.is_empty() {
        tracing::info!(entries = archived.found.len(), "wal entries were archived already (stored just before a stop); released");
        env.storage.settler.settle(&[(&archived.found, 0)]).await?;
    }
    env.storage.wal.replay_done().map_err(|e| IngestError::Internal(e.to_string()))?;
    env.metrics.wal_replayed_entries.add(replayed);
    env.metrics.wal_bytes.set(env.storage.wal.bytes());
    Ok((replayed, resumed))
}

/// Longest a replay waits for storage to take sessions it finished early.
const RELIEF_WAIT_MS_MAX: u64 = 30_000;
/// How often it looks meanwhile.
const RELIEF_POLL_MS: u64 = 10;

/// Whether replay may go on: memory is down to half the budget (so one
/// relief serves many entries), or no session is left to store and no
/// memory came back since the last look (storage that settles in the
/// background, like ClickHouse's batches, may still be releasing).
fn relieved(used_bytes: u64, budget_bytes: u64, closing: usize, released: bool) -> bool {
    used_bytes <= budget_bytes / 2 || (closing == 0 && !released)
}

/// Finishes every live session replayed so far and waits (bounded) until
/// storage took them; see the module docs. False when storage did not in
/// time.
async fn relieve(env: &Arc<SessionEnv>) -> bool {
    let live = env.registry.live_actors().await;
    tracing::warn!(
        used_bytes = env.budget.used_bytes(),
        budget_bytes = env.budget.budget_bytes(),
        sessions = live.len(),
        "wal replay past the memory budget; finishing the sessions replayed so far"
    );
    for (key, actor) in live {
        // The registry's retire-then-close protocol, as the actor's own
        // finishing rule follows it.
        if env.registry.retire(&key, &actor).await {
            let _ = actor.send_message(SessionMsg::Close(FinishReason::Memory));
        }
    }
    let mut waited_ms = 0;
    let mut last_used = u64::MAX;
    loop {
        let used = env.budget.used_bytes();
        if relieved(used, env.budget.budget_bytes(), env.registry.counts().await.1, used < last_used) {
            return true;
        }
        last_used = used;
        if waited_ms >= RELIEF_WAIT_MS_MAX {
            tracing::warn!(
                used_bytes = env.budget.used_bytes(),
                "storage did not take the finished sessions in time; replaying over the budget"
            );
            return false;
        }
        env.clock.sleep(std::time::Duration::from_millis(RELIEF_POLL_MS)).await;
        waited_ms += RELIEF_POLL_MS;
    }
}

/// Which replayed WAL entries a stored segment holds already, read once
/// per session (and the session its ID was merged into).
#[derive(Default)]
struct ArchivedKeys {
    by_session: HashMap<SessionKey, BTreeSet<u64>>,
    found: Vec<u64>,
}

impl ArchivedKeys {
    async fn contains(&mut self, env: &SessionEnv, session: &SessionKey, key: u64) -> Result<bool, IngestError> {
        if !self.by_session.contains_key(session) {
            let mut ids = vec![session.id.clone()];
            ids.extend(env.storage.traces.alias_of(&session.tenant, &session.id)?);
            let keys = env.storage.store.archived_wal_keys(&session.tenant, &ids).await?;
            self.by_session.insert(session.clone(), keys);
        }
        let hit = self.by_session.get(session).is_some_and(|k| k.contains(&key));
        if hit {
            self.found.push(key);
        }
        Ok(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_goes_on_at_half_the_budget_or_when_nothing_is_left_to_store() {
        assert!(!relieved(900, 1_000, 3, false));
        assert!(!relieved(501, 1_000, 1, true));
        assert!(relieved(500, 1_000, 3, true));
        assert!(!relieved(2_000, 1_000, 0, true), "still coming back");
        assert!(relieved(2_000, 1_000, 0, false), "nothing more will come back: go on over the budget");
    }

    #[test]
    fn only_hand_offs_whose_entries_all_remain_are_resumed() {
        let present = BTreeSet::from([1, 2]);
        let handings = [
            Handing { node: NodeId(9), shipment: 77, keys: vec![1, 2] },
            // Settled since: entry 4 is gone.
            Handing { node: NodeId(9), shipment: 78, keys: vec![4] },
            // Refused by 9, sent to 8 instead: the latest wins.
            Handing { node: NodeId(8), shipment: 77, keys: vec![1, 2] },
        ];
        let of = unsettled_hand_offs(&present, &handings);
        assert_eq!(of.get(&1), Some(&(NodeId(8), 77)));
        assert_eq!(of.get(&2), Some(&(NodeId(8), 77)));
        assert_eq!(of.len(), 2);
    }
}
