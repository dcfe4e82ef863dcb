//! Start-up: the WAL replayed into the trace index and the session actors.
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
use crate::session::actor::{SessionEnv, SessionMsg};
use crate::session::SessionInput;
use crate::store::{ExemplarIndex, ShipmentLog};
use crate::wal::{Handing, WalRecord};

/// Hand-offs to resume (see the module docs), by (node, shipment).
#[derive(Debug, Default)]
pub struct ResumedHandOffs(BTreeMap<(u64, u64), (SessionKey, Vec<SessionInput>)>);

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
            tracing::info!(session = %key.id, node = %NodeId(node), shipment, "resuming a hand-off a stop interrupted");
            env.registry
                .resume_hand_off(env, key, inputs, NodeId(node), shipment)
                .await
                .map_err(|e| IngestError::Internal(e.to_string()))?;
        }
        Ok(())
    }
}

/// The latest hand-off each replayed entry was part of, for hand-offs all
/// of whose entries are still in the WAL (a settled one left none).
/// `present`: the entries to replay; `handings`: every note, in log order.
fn unsettled_hand_offs(present: &BTreeSet<u64>, handings: &[Handing]) -> HashMap<u64, (u64, u64)> {
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
    for item in replay {
        let (key, record) = item.map_err(|e| IngestError::Internal(format!("reading the wal: {e}")))?;
        let entry = match record {
            WalRecord::Alias { tenant, from, to } => {
                env.traces.set_alias(&tenant, &from, &to, now)?;
                continue;
            }
            WalRecord::Binding { tenant, trace, id, explicit: true } => {
                env.traces.bind(&tenant, trace, &crate::correlate::TraceBinding { id, explicit: true }, now)?;
                continue;
            }
            WalRecord::Shipment { origin, id } => {
                shipments.record((origin, id), now)?;
                continue;
            }
            WalRecord::Binding { tenant, trace, id, explicit: false } => {
                if env.traces.binding(&tenant, trace)?.is_none() {
                    env.traces.bind(&tenant, trace, &crate::correlate::TraceBinding { id, explicit: false }, now)?;
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
            let resolved = SessionKey { id: env.traces.resolve(&session.tenant, &session.id)?, tenant: session.tenant };
            resumed.0.entry(to).or_insert_with(|| (resolved, Vec::new())).1.push(input);
            continue;
        }
        env.registry.deliver(env, session, SessionMsg::Ingest(Box::new(input))).await.map_err(|e| IngestError::Internal(e.to_string()))?;
    }
    if !archived.found.is_empty() {
        tracing::info!(entries = archived.found.len(), "wal entries were archived already (stored just before a stop); released");
        env.settler.settle(&[(&archived.found, 0)]).await?;
    }
    env.wal.replay_done().map_err(|e| IngestError::Internal(e.to_string()))?;
    env.metrics.wal_entries_replayed.add(replayed);
    env.metrics.wal_bytes.set(env.wal.bytes());
    Ok((replayed, resumed))
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
            ids.extend(env.traces.alias_of(&session.tenant, &session.id)?);
            let keys = env.store.archived_wal_keys(&session.tenant, &ids).await?;
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
    fn only_hand_offs_whose_entries_all_remain_are_resumed() {
        let present = BTreeSet::from([1, 2]);
        let handings = [
            Handing { node: 9, shipment: 77, keys: vec![1, 2] },
            // Settled since: entry 4 is gone.
            Handing { node: 9, shipment: 78, keys: vec![4] },
            // Refused by 9, sent to 8 instead: the latest wins.
            Handing { node: 8, shipment: 77, keys: vec![1, 2] },
        ];
        let of = unsettled_hand_offs(&present, &handings);
        assert_eq!(of.get(&1), Some(&(8, 77)));
        assert_eq!(of.get(&2), Some(&(8, 77)));
        assert_eq!(of.len(), 2);
    }
}
