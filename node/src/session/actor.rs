//! The session actor: one per live correlation ID, a child of the node's
//! supervisor, told what to do by [`SessionMsg`]s.
//!
//! The actor only carries out decisions: `SessionState` absorbs and
//! de-duplicates, `finish_reason` decides when to finish, the registry keeps
//! the retire/close protocol.

use std::sync::Arc;
use std::time::Duration;

use ollystack_cluster::NodeId;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::env::SessionEnv;
use super::finish::{finish_reason, FinishReason, SegmentClock};
use super::holding::Holding;
use super::msg::SessionMsg;
use super::registry::{RegistryError, StartSession};
use super::remote::ShipError;
use super::state::SessionState;
use crate::model::{CorrelationId, SessionKey};
use crate::store::StoreError;
use crate::wal::{Wal, WalRecord};

/// Delay between attempts to store a finished segment that failed.
const ARCHIVE_RETRY_MS: u64 = 1_000;

pub struct SessionArgs {
    pub key: SessionKey,
    pub env: Arc<SessionEnv>,
    /// What this actor answers for, kept where its panic cannot lose it.
    pub holding: Arc<Holding>,
}

pub struct SessionActor;

/// How the registry starts session actors: linked to the node's supervisor.
impl StartSession for Arc<SessionEnv> {
    async fn start(&self, key: &SessionKey, holding: Arc<Holding>) -> Result<ActorRef<SessionMsg>, RegistryError> {
        let args = SessionArgs { key: key.clone(), env: self.clone(), holding };
        let (actor, _handle) = Actor::spawn_linked(None, SessionActor, args, self.supervisor.clone())
            .await
            .map_err(|e| RegistryError::Spawn(e.to_string()))?;
        Ok(actor)
    }
}

pub struct ActorState {
    st: SessionState,
    env: Arc<SessionEnv>,
    /// Retired: no more signals will arrive; `Close` is on its way.
    closing: bool,
    /// (segment seq, finished time) of the segment being stored, fixed at the first
    /// attempt: a retry after a store that committed but lost its acknowledgement
    /// then rewrites the same segment instead of storing a second copy.
    finishing: Option<(u64, u64)>,
    /// (node, shipment ID) of a shipment of this session's data whose outcome is
    /// unknown (no answer): the node may hold the data, so the retry sends the same
    /// shipment to the same node while it is a member, even if the ring names
    /// another owner by then.
    shipping: Option<(NodeId, u64)>,
    /// See [`super::holding`]: told of memory given back and signals
    /// passed on, so a failure's rebuild knows what this actor held.
    holding: Arc<Holding>,
}

/// Segment seqs derived from WAL seqs carry this bit; sled-generated ones
/// (a segment with no WAL entry, and segments archived by older versions)
/// count up from 0, and adopted ones carry the top bit.
const FROM_WAL: u64 = 1 << 62;

/// The seq a finished segment is stored under: derived from its first WAL entry
/// when it has one. Each WAL entry is in exactly one segment and WAL seqs never
/// go back, so this is unique, and it survives a crash: a segment stored but
/// not yet settled when the node crashed is rebuilt from the same WAL entries
/// and stored again under the same seq, rewriting itself instead of leaving a
/// second copy.
pub fn segment_seq<E>(wal_keys: &[u64], generate: impl FnOnce() -> Result<u64, E>) -> Result<u64, E> {
    match wal_keys.iter().copied().filter(|k| *k > 0).min() {
        Some(first) => Ok(FROM_WAL | first),
        None => generate(),
    }
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = ActorState;
    type Arguments = SessionArgs;

    async fn pre_start(&self, _me: ActorRef<Self::Msg>, args: SessionArgs) -> Result<ActorState, ActorProcessingErr> {
        args.env.metrics.sessions_live.add(1);
        args.env.budget.force_reserve(super::budget::SESSION_OVERHEAD_BYTES);
        let now = args.env.clock.now_unix_ms();
        let holding = args.holding;
        holding.note_clock(now, now);
        Ok(ActorState { st: SessionState::new(args.key, now), env: args.env, closing: false, finishing: None, shipping: None, holding })
    }

    async fn post_stop(&self, _me: ActorRef<Self::Msg>, state: &mut ActorState) -> Result<(), ActorProcessingErr> {
        state.env.metrics.sessions_live.sub(1);
        state.env.budget.release(super::budget::SESSION_OVERHEAD_BYTES);
        Ok(())
    }

    async fn handle(&self, me: ActorRef<Self::Msg>, msg: SessionMsg, state: &mut ActorState) -> Result<(), ActorProcessingErr> {
        let env = state.env.clone();
        let now = env.clock.now_unix_ms();
        match msg {
            SessionMsg::Ingest(input) => {
                let out = state.st.absorb(*input, now);
                env.budget.release(out.freed_bytes);
                state.holding.freed(out.freed_bytes);
                state.holding.note_clock(state.st.opened_unix_ms, state.st.last_activity_unix_ms);
                env.metrics.ingest_duplicates.add(out.duplicates);
                Box::pin(self.check_finish(&me, state, now)).await;
            }
            SessionMsg::Absorb(other) => {
                let out = state.st.absorb_segment(*other, now);
                env.budget.release(out.freed_bytes);
                state.holding.freed(out.freed_bytes);
                state.holding.note_clock(state.st.opened_unix_ms, state.st.last_activity_unix_ms);
                env.metrics.ingest_duplicates.add(out.duplicates);
                Box::pin(self.check_finish(&me, state, now)).await;
            }
            SessionMsg::Snapshot(reply) => {
                let _ = reply.send(state.st.to_segment());
            }
            SessionMsg::Describe(reply) => {
                let _ = reply.send((state.st.summary.clone(), state.st.last_activity_unix_ms));
            }
            // The rare, deep paths are boxed: every actor's task stores its
            // `handle` future inline, so its size is paid per live session.
            SessionMsg::Tick => Box::pin(self.check_finish(&me, state, now)).await,
            SessionMsg::Close(reason) => Box::pin(self.close(&me, state, reason, now)).await,
            SessionMsg::MergeInto(to) => {
                let target = SessionKey { tenant: state.st.key.tenant.clone(), id: to };
                Box::pin(self.forward(&me, state, target)).await;
            }
            // Test-only fault (see `SessionMsg::Crash`).
            #[cfg(any(test, feature = "sim-faults"))]
            SessionMsg::Crash => panic!("session actor told to crash (test fault)"),
            SessionMsg::ShipTo(node, shipment) => {
                state.closing = true;
                state.shipping = Some((node, shipment));
                let target = state.st.key.clone();
                Box::pin(self.forward(&me, state, target)).await;
            }
        }
        Ok(())
    }
}

impl SessionActor {
    async fn check_finish(&self, me: &ActorRef<SessionMsg>, state: &mut ActorState, now: u64) {
        if state.closing {
            return;
        }
        let seg = SegmentClock {
            opened_unix_ms: state.st.opened_unix_ms,
            last_activity_unix_ms: state.st.last_activity_unix_ms,
            spans: state.st.span_count(),
            logs: state.st.log_count(),
        };
        let Some(reason) = finish_reason(&state.env.limits.rules, &seg, now) else { return };
        if state.env.registry.retire(&state.st.key, me).await {
            state.closing = true;
            // FIFO mailbox: everything sent before the retire is handled first.
            let _ = me.send_message(SessionMsg::Close(reason));
        }
    }

    /// Hands the segment to storage (or forwards it when its ID was merged
    /// away meanwhile) and stops.
    async fn close(&self, me: &ActorRef<SessionMsg>, state: &mut ActorState, reason: FinishReason, now: u64) {
        let env = state.env.clone();
        let key = state.st.key.clone();
        // Once a store was attempted it may have committed (its acknowledgement lost):
        // the retry stores the same segment under the same seq, and a merge that
        // happened meanwhile re-keys it below. Forwarding it instead left the
        // committed copy behind and stored the data a second time in the merged
        // session.
        if state.finishing.is_none() {
            if let Some(to) = Self::merged_into(&env, &key).await {
                let target = SessionKey { tenant: key.tenant.clone(), id: to };
                return self.forward(me, state, target).await;
            }
        }
        // Not under the shard lock: a slow store would stall ingest, handoff and
        // queries of every session in the shard. Queries see this closing actor until
        // the store has the segment.
        let finishing = match state.finishing {
            Some(f) => Ok(f),
            None => segment_seq(&state.st.wal_keys, || env.storage.db.generate_id())
                .map(|seq| *state.finishing.insert((seq, now)))
                .map_err(StoreError::from),
        };
        tracing::debug!(session = %key.id, wal = ?state.st.wal_keys, spans = state.st.span_count(), logs = state.st.log_count(), "storing a segment");
        let stored = match finishing {
            Ok((seq, finished)) => env.storage.store.store(state.st.to_finished(seq, finished, reason.as_str())).await,
            Err(e) => Err(e),
        };
        match stored {
            // The store now answers for the segment and settles it (WAL,
            // memory) once it is durable.
            Ok(()) => {
                let mut shard = env.registry.lock_shard(&key).await;
                // A merge that ran while the segment was being stored
                // re-keyed what was stored before it; this one too.
                if let Ok(Some(to)) = env.storage.traces.alias_of(&key.tenant, &key.id) {
                    if let Err(e) = env.storage.store.rekey(&key.tenant, &key.id, &to).await {
                        tracing::warn!(session = %key.id, error = %e, "re-keying a segment stored during a merge failed; queries follow the alias");
                    }
                }
                shard.finish_closing(&key, me.get_id());
                drop(shard);
                // Decodes only the spans' timings and names, outside the
                // registry lock.
                env.baselines.observe_session(&key.tenant, state.st.span_bytes());
                env.metrics.sessions_finished.add(reason.as_str(), 1);
                env.metrics.flush_segments.inc();
                me.stop(None);
            }
            Err(e) => {
                env.metrics.flush_failures.inc();
                tracing::warn!(session = %key.id, error = %e, "storing a finished segment failed; retrying");
                let me = me.clone();
                let sleep = env.clock.sleep(Duration::from_millis(ARCHIVE_RETRY_MS));
                tokio::spawn(async move {
                    sleep.await;
                    let _ = me.send_message(SessionMsg::Close(reason));
                });
            }
        }
    }

    /// The ID `key` was merged into, if any (read under the shard lock,
    /// which merges take).
    async fn merged_into(env: &SessionEnv, key: &SessionKey) -> Option<CorrelationId> {
        let _shard = env.registry.lock_shard(key).await;
        match env.storage.traces.alias_of(&key.tenant, &key.id) {
            Ok(to) => to,
            Err(e) => {
                tracing::warn!(session = %key.id, error = %e, "alias lookup failed; archiving under own id");
                None
            }
        }
    }

    /// Hands all data to `target`'s actor and stops. The memory reservation
    /// travels with the data.
    async fn forward(&self, me: &ActorRef<SessionMsg>, state: &mut ActorState, target: SessionKey) {
        let env = state.env.clone();
        let key = state.st.key.clone();
        let now = env.clock.now_unix_ms();
        let data = std::mem::replace(&mut state.st, SessionState::new(key.clone(), now));
        let remote = env.remote.get().cloned();
        let unsettled = state.shipping.filter(|(node, _)| remote.as_ref().is_some_and(|r| r.is_member(*node)));
        // The node it went to left, and said it had taken it: the data went on with
        // that node's hand-over.
        let delivered =
            unsettled.is_none() && state.shipping.is_some_and(|(_, shipment)| remote.as_ref().is_some_and(|r| r.delivered(shipment)));
        if delivered {
            tracing::info!(session = %key.id, "a node that left took this session's data before it went; letting go of this copy");
            state.shipping = None;
            if let Err(e) = env.storage.settler.settle(&[(&data.wal_keys, data.held_bytes)]).await {
                tracing::warn!(session = %key.id, error = %e, "settling a delivered session failed; its entries replay at restart");
            }
            env.metrics.cluster_sessions_shipped.inc();
            env.registry.lock_shard(&key).await.finish_closing(&key, me.get_id());
            me.stop(None);
            return;
        }
        let destination = match unsettled {
            Some(sent) => Some(sent),
            // Every retry carries the same ID: if an earlier attempt landed
            // and only its answer was lost, the owner does not take it twice.
            None => env.remote.remote_owner(&target).map(|(owner, _)| (owner, super::remote::shipment_id(&data.wal_keys))),
        };
        tracing::debug!(session = %key.id, to = %target.id, wal = ?data.wal_keys, shipping = ?state.shipping, ?destination, "moving a session's data");
        if let (Some((owner, shipment)), Some(remote)) = (destination, remote) {
            // Owned elsewhere: the owner must hold the data durably before
            // this node lets go of its WAL entries and memory.
            let entry = data.encode_wal_entry(&target);
            // From the first attempt on the owner may hold the data: a crash must not make
            // this node forget where it went.
            let noted = match unsettled {
                Some(_) => Ok(()),
                None => note_handing(&env.storage.wal, owner, shipment, &data.wal_keys).await,
            };
            let shipped = match noted {
                Ok(()) => remote.ship(owner, shipment, vec![entry]).await,
                Err(e) => Err(ShipError { refused: true, message: format!("noting the hand-off in the WAL failed: {e}") }),
            };
            match shipped {
                Ok(()) => {
                    state.shipping = None;
                    if let Err(e) = env.storage.settler.settle(&[(&data.wal_keys, data.held_bytes)]).await {
                        tracing::warn!(session = %key.id, error = %e, "settling a shipped session failed; its entries replay at restart");
                    }
                    env.metrics.cluster_sessions_shipped.inc();
                    // A query that asked the owner before the data landed
                    // there must not take this node's silence as absence.
                    env.registry.note_moved(&target, env.clock.now_unix_ms(), owner).await;
                }
                Err(e) => {
                    // Keep the data (queries still find this closing actor) and try again: the
                    // owner may be back, or another node may own the session by then. Letting go
                    // here hid acknowledged signals until the next restart.
                    tracing::warn!(session = %key.id, %owner, error = %e, refused = e.refused, "could not ship a session to its owner; retrying");
                    state.shipping = (!e.refused).then_some((owner, shipment));
                    state.st = data;
                    let (me, to) = (me.clone(), target.id);
                    let sleep = env.clock.sleep(Duration::from_millis(ARCHIVE_RETRY_MS));
                    tokio::spawn(async move {
                        sleep.await;
                        let _ = me.send_message(SessionMsg::MergeInto(to));
                    });
                    return;
                }
            }
        } else if let Err(e) = env.registry.deliver(&env, target, SessionMsg::Absorb(Box::new(data))).await {
            // The data is still in the WAL under this ID; a restart replays it
            // through the alias. Keep the memory accounted until then.
            tracing::error!(session = %key.id, error = %e, "could not forward a merged session");
        }
        env.registry.lock_shard(&key).await.finish_closing(&key, me.get_id());
        env.metrics.correlation_trace_merges.inc();
        me.stop(None);
    }
}

/// Makes a hand-off's destination durable before its first attempt (see
/// [`WalRecord::Handing`]).
async fn note_handing(wal: &Wal, node: NodeId, shipment: u64, keys: &[u64]) -> Result<(), crate::wal::WalError> {
    let seqs = wal.append(&[WalRecord::Handing { node, shipment, keys: keys.to_vec() }])?;
    wal.sync(seqs.last().copied().unwrap_or(0)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_seq_comes_from_its_first_wal_entry() {
        let never = || -> Result<u64, ()> { panic!("not needed") };
        assert_eq!(segment_seq(&[9, 4, 7], never), Ok(FROM_WAL | 4));
        assert_eq!(segment_seq(&[7, 4, 9], never), segment_seq(&[4, 9, 7], never), "the same entries, the same seq");
        assert_eq!(segment_seq::<()>(&[], || Ok(3)), Ok(3));
        assert_ne!(segment_seq::<()>(&[5], || Ok(0)), segment_seq::<()>(&[6], || Ok(0)));
    }
}
