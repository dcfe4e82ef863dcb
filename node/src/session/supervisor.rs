//! The parent of every session actor of one node, and what happens when
//! one fails.
//!
//! A session actor that panics loses its state and its mailbox, and ractor
//! does not run its `post_stop` (ractor 0.16: "in the event the actor ...
//! has self-panicked, `post_stop` won't be called"; the same for a handler
//! that returns an error). So on `ActorFailed` the supervisor, once per
//! failed actor:
//! 1. does `post_stop`'s work: the live-session gauge and the per-session
//!    overhead reserved in `pre_start` ([`SESSION_OVERHEAD_BYTES`]);
//! 2. takes the actor's [`Holding`](super::holding) out of the registry
//!    (the registry drops the dead actor, so new signals for the session
//!    open a new one, and marks the session as being rebuilt: queries
//!    answer `partial` until step 4);
//! 3. reads the entries it held back from the WAL and rebuilds its data
//!    ([`super::rebuild`]), moving the budget by the difference only;
//! 4. hands the rebuilt data to the session's live actor and ends the mark.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::budget::SESSION_OVERHEAD_BYTES;
use super::env::SessionEnv;
use super::holding::Held;
use super::msg::SessionMsg;
use super::rebuild::{rebuild, BudgetFix};
use crate::metrics::NodeMetrics;
use crate::model::SessionKey;

pub enum SupervisorMsg {
    /// The node's session environment, once it exists (it names this
    /// supervisor, so it is made after it). Weak: a stopped node's storage
    /// must close even while its supervisor lingers. Answered once set:
    /// the node waits for it before any session actor starts (supervision
    /// events are handled before messages).
    Attach(Weak<SessionEnv>, ractor::RpcReplyPort<()>),
    /// Tests: rebuilds wait for a permit of this semaphore (so a test can
    /// query while a rebuild is pending); answered once set.
    #[cfg(test)]
    GateRebuilds(Arc<tokio::sync::Semaphore>, ractor::RpcReplyPort<()>),
}

pub struct SupervisorState {
    metrics: Arc<NodeMetrics>,
    env: Option<Weak<SessionEnv>>,
    #[cfg(test)]
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

/// Parent of all session actors of one node.
pub struct SessionSupervisor;

impl Actor for SessionSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = Arc<NodeMetrics>;

    async fn pre_start(&self, _me: ActorRef<SupervisorMsg>, metrics: Arc<NodeMetrics>) -> Result<Self::State, ActorProcessingErr> {
        Ok(SupervisorState {
            metrics,
            env: None,
            #[cfg(test)]
            gate: None,
        })
    }

    async fn handle(&self, _me: ActorRef<SupervisorMsg>, msg: SupervisorMsg, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Attach(env, reply) => {
                state.env = Some(env);
                let _ = reply.send(());
            }
            #[cfg(test)]
            SupervisorMsg::GateRebuilds(gate, reply) => {
                state.gate = Some(gate);
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _me: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let SupervisionEvent::ActorFailed(cell, err) = event else { return Ok(()) };
        tracing::error!(actor = %cell.get_id(), error = %err, "session actor failed; rebuilding it from the wal");
        state.metrics.sessions_failed.inc();
        // No environment: no session actor was ever started.
        let Some(env) = state.env.as_ref().and_then(Weak::upgrade) else { return Ok(()) };
        // 1. `post_stop` did not run.
        env.metrics.sessions_live.sub(1);
        env.budget.release(SESSION_OVERHEAD_BYTES);
        // 2. An actor that had handed its data on (archived, forwarded)
        // has no holding any more: nothing to rebuild.
        let Some((key, held)) = env.registry.take_failed(cell.get_id()).await else { return Ok(()) };
        #[cfg(test)]
        if let Some(gate) = &state.gate {
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
        }
        rebuild_session(&env, cell.get_id(), &key, held).await;
        env.registry.end_rebuild(&key).await;
        Ok(())
    }
}

/// Steps 3 and 4 (see the module docs). On failure the entries stay in
/// the WAL and replay at the next start; their memory is given back.
async fn rebuild_session(env: &Arc<SessionEnv>, failed: ActorId, key: &SessionKey, held: Held) {
    let seqs: BTreeSet<u64> = held.wal_keys.iter().copied().collect();
    let wal = env.storage.wal.clone();
    let read = ollystack_cluster::blocking::unblock(move || wal.read_entries(&seqs)).await;
    let entries = match read {
        Ok(Ok(entries)) => entries,
        Ok(Err(e)) => return give_up(env, key, held.bytes, &e.to_string()),
        Err(e) => return give_up(env, key, held.bytes, &e.to_string()),
    };
    let rebuilt = rebuild(key.clone(), &held, entries, env.clock.now_unix_ms());
    match rebuilt.budget {
        BudgetFix::Keep => {}
        BudgetFix::Release(bytes) => env.budget.release(bytes),
        BudgetFix::Reserve(bytes) => env.budget.force_reserve(bytes),
    }
    let (spans, logs, missing) = (rebuilt.state.span_count(), rebuilt.state.log_count(), rebuilt.missing);
    tracing::info!(actor = %failed, session = %key.id, spans, logs, missing, "failed session rebuilt from the wal");
    if rebuilt.state.wal_keys.is_empty() {
        env.metrics.sessions_rebuilt.inc();
        return;
    }
    let bytes = rebuilt.state.held_bytes;
    match env.registry.deliver(env, key.clone(), SessionMsg::Absorb(Box::new(rebuilt.state))).await {
        Ok(()) => env.metrics.sessions_rebuilt.inc(),
        Err(e) => give_up(env, key, bytes, &e.to_string()),
    }
}

fn give_up(env: &SessionEnv, key: &SessionKey, bytes: u64, error: &str) {
    env.budget.release(bytes);
    tracing::error!(session = %key.id, error, "rebuilding a failed session failed; its signals replay at the next start");
}
