//! Live session actors by session key.
//!
//! Invariants ([`Shard::check_invariants`], asserted each time a shard
//! lock is let go in debug builds and the simulations):
//! * at most one *live* actor per session key: signals for a key go to it;
//! * an actor leaves `live` (retire) under its shard lock before it is told
//!   to close, so every message sent to it is in its mailbox before `Close`
//!   (mailboxes are FIFO) and nothing sent to a retired actor is lost;
//! * retired actors stay in `closing` until their data is archived or
//!   forwarded, so queries still see it;
//! * every actor has a [`Holding`] here from its start until it hands its
//!   data on (`finish_closing`) or fails (`take_failed`): signals are
//!   recorded in it under the shard lock as they are sent, so a failed
//!   actor's data can be rebuilt (see `supervisor`). A failed actor stays
//!   listed (live, or closing once a delivery found it dead) until the
//!   supervisor takes it, and its session is marked `rebuilding` until
//!   the rebuilt data is with the live actor: queries answer partial
//!   meanwhile instead of silently missing its data.
//!
//! Delivery follows trace-unification aliases (derived ID → explicit ID)
//! and re-checks the alias under the shard lock, so a merge cannot race a
//! delivery into a fresh actor for a merged-away ID.
//!
//! The registry lists and addresses actors but does not name the actor
//! type (the actor uses the registry): whoever delivers passes what starts
//! a new actor, a [`StartSession`] (the node's `SessionEnv`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ollystack_cluster::NodeId;
use ractor::{ActorId, ActorRef};
use tokio::sync::{Mutex, MutexGuard};

use super::finish::FinishReason;
use super::holding::{carried, Held, Holding};
use super::msg::SessionMsg;
use super::state::SessionInput;
use crate::metrics::NodeMetrics;
use crate::model::{CorrelationId, SessionKey, TenantId};
use crate::store::{SessionStore, StoreError, TraceIndex};

/// Bound on alias hops followed while delivering (see `TraceIndex::resolve`).
const MAX_DELIVERY_HOPS: usize = 4;
const SHARDS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("could not start a session actor: {0}")]
    Spawn(String),
    #[error("alias chain too long for {0}")]
    AliasLoop(String),
}

/// Starts a session actor for the registry (see the module docs).
pub trait StartSession: Sync {
    /// A session actor for `key`, supervised by the node's supervisor,
    /// answering for `holding` (which the caller lists under the shard lock).
    fn start(&self, key: &SessionKey, holding: Arc<Holding>) -> impl Future<Output = Result<ActorRef<SessionMsg>, RegistryError>> + Send;
}

#[derive(Debug, Default)]
pub struct Shard {
    live: BTreeMap<SessionKey, ActorRef<SessionMsg>>,
    closing: BTreeMap<SessionKey, Vec<ActorRef<SessionMsg>>>,
    /// Sessions whose data this node just handed to another node: when
    /// (unix ms) and to which node; see [`SessionRegistry::moved_recently`].
    moved: BTreeMap<SessionKey, (u64, NodeId)>,
    /// What each actor of this shard's sessions answers for, by actor.
    held: HashMap<ActorId, Arc<Holding>>,
    /// Sessions whose failed actor is being rebuilt (rebuilds under way).
    rebuilding: BTreeMap<SessionKey, u32>,
}

/// Hand-off notes kept per shard, at most.
const MAX_MOVED_NOTES: usize = 256;

impl Shard {
    /// Notes that `key`'s data was handed to another node at `now_ms`.
    /// Notes older than `keep_ms` go.
    fn note_moved(&mut self, key: &SessionKey, now_ms: u64, to: NodeId, keep_ms: u64) {
        self.moved.retain(|_, (at, _)| now_ms.saturating_sub(*at) < keep_ms);
        if self.moved.len() >= MAX_MOVED_NOTES {
            if let Some(oldest) = self.moved.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) {
                self.moved.remove(&oldest);
            }
        }
        self.moved.insert(key.clone(), (now_ms, to));
    }

    /// Sends `msg` to `actor`, recording the signals it carries in the
    /// actor's holding first (the actor may handle it at once); a failed
    /// send takes them back out.
    fn send_held(&self, actor: &ActorRef<SessionMsg>, msg: SessionMsg) -> Result<(), ractor::MessagingErr<SessionMsg>> {
        let holding = self.held.get(&actor.get_id());
        let carried = holding.and(carried(&msg));
        if let (Some(h), Some((keys, bytes))) = (holding, &carried) {
            h.took(keys, *bytes);
        }
        actor.send_message(msg).inspect_err(|_| {
            if let (Some(h), Some((keys, bytes))) = (holding, &carried) {
                h.untook(keys, *bytes);
            }
        })
    }

    /// What holds whenever the shard is unlocked: the live actor of a key is
    /// not also closing; closing lists are never empty; every listed actor
    /// (live or closing) has its holding here, for its own session; rebuild
    /// counts are positive. Pure.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        for (key, actor) in &self.live {
            if self.closing.get(key).is_some_and(|list| list.iter().any(|a| a.get_id() == actor.get_id())) {
                return Err("an actor is both live and closing");
            }
        }
        if self.closing.values().any(Vec::is_empty) {
            return Err("an empty closing list");
        }
        let listed = self.live.iter().chain(self.closing.iter().flat_map(|(k, list)| list.iter().map(move |a| (k, a))));
        for (key, actor) in listed {
            if self.held.get(&actor.get_id()).is_none_or(|h| h.key != *key) {
                return Err("a listed actor has no holding for its session");
            }
        }
        if self.rebuilding.values().any(|n| *n == 0) {
            return Err("a rebuild count of 0");
        }
        Ok(())
    }

    /// Removes a retired actor once its data is archived or forwarded.
    pub fn finish_closing(&mut self, key: &SessionKey, id: ActorId) {
        // Its data is with the store or another actor now.
        self.held.remove(&id);
        if let Some(list) = self.closing.get_mut(key) {
            list.retain(|a| a.get_id() != id);
            if list.is_empty() {
                self.closing.remove(key);
            }
        }
    }
}

/// A locked shard; in debug builds, letting it go checks
/// [`Shard::check_invariants`].
#[derive(Debug)]
pub struct ShardGuard<'a>(MutexGuard<'a, Shard>);

impl std::ops::Deref for ShardGuard<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        &self.0
    }
}

impl std::ops::DerefMut for ShardGuard<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        &mut self.0
    }
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            debug_assert_eq!(self.0.check_invariants(), Ok(()));
        }
    }
}

#[derive(Debug)]
pub struct SessionRegistry {
    shards: Box<[Mutex<Shard>]>,
    /// How long a hand-off note counts: the longest a query coordinator
    /// waits for a node (the cluster's RPC timeout).
    moved_note_ms: u64,
    /// Aliases that delivery follows, and the trace homes of hand-offs.
    traces: Arc<TraceIndex>,
    /// Re-keys the stored segments of a merged session.
    store: Arc<dyn SessionStore>,
    metrics: Arc<NodeMetrics>,
}

impl SessionRegistry {
    pub fn new(moved_note_ms: u64, traces: Arc<TraceIndex>, store: Arc<dyn SessionStore>, metrics: Arc<NodeMetrics>) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        Self { shards, moved_note_ms, traces, store, metrics }
    }

    /// Which node this node handed `key`'s data to, and how long ago (ms),
    /// if that is recent enough that a query coordinator may have asked
    /// that node before the data landed there. The coordinator asks it
    /// again (it has the data by now: the hand-off completed first).
    pub async fn moved_recently(&self, key: &SessionKey, now_ms: u64) -> Option<(NodeId, u64)> {
        let shard = self.lock_shard(key).await;
        let (at, to) = *shard.moved.get(key)?;
        let ago = now_ms.saturating_sub(at);
        (ago < self.moved_note_ms).then_some((to, ago))
    }

    /// Notes that `key`'s data was just handed to `to` (see
    /// [`Self::moved_recently`]); before the shipping actor is let go, so a
    /// query that no longer finds the actor finds the note.
    pub async fn note_moved(&self, key: &SessionKey, now_ms: u64, to: NodeId) {
        self.lock_shard(key).await.note_moved(key, now_ms, to, self.moved_note_ms);
    }

    pub async fn lock_shard(&self, key: &SessionKey) -> ShardGuard<'_> {
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        ShardGuard(self.shards[(h.finish() as usize) % SHARDS].lock().await)
    }

    /// Sends `msg` to the live actor of `key` (after following aliases),
    /// starting one if there is none.
    pub async fn deliver(&self, start: &impl StartSession, key: SessionKey, msg: SessionMsg) -> Result<(), RegistryError> {
        self.deliver_to(start, key, msg, None).await
    }

    /// As [`Self::deliver`], but into a new segment: a live actor of the
    /// session finishes (for `reason`) with what it holds, and a fresh one
    /// takes `msg`. Ingest sends each part of a batch cut at `max_spans` /
    /// `max_logs` after the first this way, so no segment grows past about
    /// twice the bound (500,000 spans for one ID in one batch became a
    /// single segment). The old actor is retired under the shard lock
    /// before it is told to close, as when it finishes by itself; queries
    /// see it among the closing actors until its segment is stored.
    pub async fn deliver_new_segment(
        &self,
        start: &impl StartSession,
        key: SessionKey,
        msg: SessionMsg,
        reason: FinishReason,
    ) -> Result<(), RegistryError> {
        self.deliver_to(start, key, msg, Some(reason)).await
    }

    async fn deliver_to(
        &self,
        start: &impl StartSession,
        key: SessionKey,
        msg: SessionMsg,
        finish_live: Option<FinishReason>,
    ) -> Result<(), RegistryError> {
        let mut target = SessionKey { id: self.traces.resolve(&key.tenant, &key.id)?, tenant: key.tenant };
        for _ in 0..MAX_DELIVERY_HOPS {
            let mut shard = self.lock_shard(&target).await;
            if let Some(next) = self.traces.alias_of(&target.tenant, &target.id)? {
                drop(shard);
                target.id = next;
                continue;
            }
            if let (Some(reason), Some(actor)) = (finish_live, shard.live.get(&target).cloned()) {
                Self::retire_locked(&mut shard, &target, actor.get_id());
                // A dead actor's data is in the WAL (replayed at restart).
                let _ = actor.send_message(SessionMsg::Close(reason));
            }
            if let Some(actor) = shard.live.get(&target).cloned() {
                match shard.send_held(&actor, msg) {
                    Ok(()) => return Ok(()),
                    Err(ractor::MessagingErr::SendErr(back)) => {
                        // The actor died (panicked): the supervisor rebuilds
                        // its data. Listed as closing until then (queries
                        // answer partial); this message opens a new segment.
                        tracing::warn!(session = %target.id, "session actor gone; starting a new segment");
                        shard.live.remove(&target);
                        shard.closing.entry(target.clone()).or_default().push(actor);
                        return self.spawn_and_send(start, &mut shard, target, back).await;
                    }
                    Err(e) => return Err(RegistryError::Spawn(e.to_string())),
                }
            }
            return self.spawn_and_send(start, &mut shard, target, msg).await;
        }
        Err(RegistryError::AliasLoop(key.id.to_string()))
    }

    async fn spawn_and_send(
        &self,
        start: &impl StartSession,
        shard: &mut Shard,
        key: SessionKey,
        msg: SessionMsg,
    ) -> Result<(), RegistryError> {
        let (actor, holding) = spawn(start, &key).await?;
        shard.held.insert(actor.get_id(), holding);
        if let Err(e) = shard.send_held(&actor, msg) {
            shard.held.remove(&actor.get_id());
            return Err(RegistryError::Spawn(e.to_string()));
        }
        shard.live.insert(key, actor);
        self.metrics.sessions_started.inc();
        Ok(())
    }

    /// Moves `actor` from live to closing if it is the live actor of `key`.
    /// Returns false when it was not (already retired).
    pub async fn retire(&self, key: &SessionKey, actor: &ActorRef<SessionMsg>) -> bool {
        let mut shard = self.lock_shard(key).await;
        Self::retire_locked(&mut shard, key, actor.get_id())
    }

    fn retire_locked(shard: &mut Shard, key: &SessionKey, id: ActorId) -> bool {
        match shard.live.get(key) {
            Some(a) if a.get_id() == id => {
                if let Some(a) = shard.live.remove(key) {
                    shard.closing.entry(key.clone()).or_default().push(a);
                }
                true
            }
            _ => false,
        }
    }

    /// Every actor (live, then closing) holding data of `key`.
    pub async fn holders(&self, key: &SessionKey) -> Vec<ActorRef<SessionMsg>> {
        let shard = self.lock_shard(key).await;
        shard.live.get(key).into_iter().chain(shard.closing.get(key).into_iter().flatten()).cloned().collect()
    }

    /// Trace unification: the derived session `from` joins `to`. The alias
    /// from → to is already written. A live `from` actor forwards its data;
    /// archived segments of `from` are re-keyed.
    pub async fn merge(&self, tenant: &TenantId, from: &CorrelationId, to: &CorrelationId) -> Result<(), RegistryError> {
        let key = SessionKey { tenant: tenant.clone(), id: from.clone() };
        let mut shard = self.lock_shard(&key).await;
        if let Some(actor) = shard.live.get(&key).cloned() {
            Self::retire_locked(&mut shard, &key, actor.get_id());
            // A dead actor's data is in the WAL; replay routes it via the alias.
            let _ = actor.send_message(SessionMsg::MergeInto(to.clone()));
        }
        self.store.rekey(tenant, from, to).await?;
        Ok(())
    }

    /// Hands a live session to the node that now owns it: the actor is retired (new
    /// signals open a new actor, shipped by the next sweep) and ships its data,
    /// letting go of it once the owner has it durably. A derived session already
    /// aliased to its explicit one goes there: its merge may still be on its way
    /// (it runs once the batch that bound the trace is forwarded), and shipped
    /// under its own ID it would land where nothing merges it.
    pub async fn hand_off(&self, key: &SessionKey) -> Result<(), RegistryError> {
        let mut shard = self.lock_shard(key).await;
        if let Some(actor) = shard.live.get(key).cloned() {
            let to = self.traces.resolve(&key.tenant, &key.id)?;
            Self::retire_locked(&mut shard, key, actor.get_id());
            let _ = actor.send_message(SessionMsg::MergeInto(to));
        }
        Ok(())
    }

    /// Resumes a hand-off a crash interrupted: an actor outside the live
    /// map (new signals for the session open a live one) takes `inputs`,
    /// the replayed entries that were on their way, and sends them to
    /// `node` as `shipment` again. Queries see it among the closing actors.
    pub async fn resume_hand_off(
        &self,
        start: &impl StartSession,
        key: SessionKey,
        inputs: Vec<SessionInput>,
        node: NodeId,
        shipment: u64,
    ) -> Result<(), RegistryError> {
        let (actor, holding) = spawn(start, &key).await?;
        // Listed before it can finish (finishing unlists it).
        let mut shard = self.lock_shard(&key).await;
        shard.closing.entry(key).or_default().push(actor.clone());
        shard.held.insert(actor.get_id(), holding);
        for input in inputs {
            shard.send_held(&actor, SessionMsg::Ingest(Box::new(input))).map_err(|e| RegistryError::Spawn(e.to_string()))?;
        }
        actor.send_message(SessionMsg::ShipTo(node, shipment)).map_err(|e| RegistryError::Spawn(e.to_string()))?;
        self.metrics.sessions_started.inc();
        Ok(())
    }

    /// Takes a failed actor out (see `supervisor`): unlisted, its holding
    /// handed to the caller, its session marked as being rebuilt until
    /// [`Self::end_rebuild`]. `None` when it had handed its data on.
    pub async fn take_failed(&self, id: ActorId) -> Option<(SessionKey, Held)> {
        for shard in self.shards.iter() {
            let mut shard = ShardGuard(shard.lock().await);
            let Some(holding) = shard.held.remove(&id) else { continue };
            let key = holding.key.clone();
            if shard.live.get(&key).is_some_and(|a| a.get_id() == id) {
                shard.live.remove(&key);
            }
            shard.finish_closing(&key, id);
            *shard.rebuilding.entry(key.clone()).or_default() += 1;
            return Some((key, holding.take()));
        }
        None
    }

    /// The rebuilt data of `key` is with its live actor (or could not be).
    pub async fn end_rebuild(&self, key: &SessionKey) {
        let mut shard = self.lock_shard(key).await;
        if let Some(n) = shard.rebuilding.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                shard.rebuilding.remove(key);
            }
        }
    }

    /// Whether part of `key`'s live data is out of reach right now: a
    /// rebuild is under way, or one of `dead` (holders that did not
    /// answer) failed with data the supervisor has not taken yet.
    pub async fn awaiting_rebuild(&self, key: &SessionKey, dead: &[ActorId]) -> bool {
        let shard = self.lock_shard(key).await;
        shard.rebuilding.contains_key(key) || dead.iter().any(|id| shard.held.contains_key(id))
    }

    /// Live actors (for the finishing sweep).
    pub async fn live_actors(&self) -> Vec<(SessionKey, ActorRef<SessionMsg>)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.lock().await.live.iter().map(|(k, a)| (k.clone(), a.clone())));
        }
        out
    }

    /// Live actors that may be due to finish: those whose segment clock
    /// (as they last told their holding) `due` says is, and those that
    /// have not told yet.
    pub async fn due_actors(&self, due: impl Fn(u64, u64) -> bool) -> Vec<ActorRef<SessionMsg>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().await;
            for actor in shard.live.values() {
                let clock = shard.held.get(&actor.get_id()).and_then(|h| h.clock());
                if clock.is_none_or(|(opened, last)| due(opened, last)) {
                    out.push(actor.clone());
                }
            }
        }
        out
    }

    /// Keys of live actors, without waiting: `None` if a shard is locked
    /// right now (a simulation's probe reads it between steps).
    pub fn try_live_keys(&self) -> Option<Vec<SessionKey>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.try_lock().ok()?.live.keys().cloned());
        }
        Some(out)
    }

    /// The `pick`-th live actor (modulo their number), without waiting
    /// (`None` when there is none or a shard is locked right now); for a
    /// simulation's fault.
    pub fn try_live_actor(&self, pick: u64) -> Option<(SessionKey, ActorRef<SessionMsg>)> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            all.extend(shard.try_lock().ok()?.live.iter().map(|(k, a)| (k.clone(), a.clone())));
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let len = all.len() as u64;
        (len > 0).then(|| all.swap_remove((pick % len) as usize))
    }

    /// (live, closing) actors of `key`, without waiting (`None` if its
    /// shard is locked right now); for a simulation's failure report.
    pub fn try_holder_counts(&self, key: &SessionKey) -> Option<(usize, usize)> {
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        let shard = self.shards[(h.finish() as usize) % SHARDS].try_lock().ok()?;
        Some((usize::from(shard.live.contains_key(key)), shard.closing.get(key).map_or(0, Vec::len)))
    }

    /// Live and closing keys.
    pub async fn counts(&self) -> (usize, usize) {
        let mut live = 0;
        let mut closing = 0;
        for shard in self.shards.iter() {
            let s = shard.lock().await;
            live += s.live.len();
            closing += s.closing.values().map(Vec::len).sum::<usize>();
        }
        (live, closing)
    }
}

/// A session actor for `key`, supervised by the node's supervisor, and
/// its holding (for the caller to list under the shard lock).
async fn spawn(start: &impl StartSession, key: &SessionKey) -> Result<(ActorRef<SessionMsg>, Arc<Holding>), RegistryError> {
    let holding = Arc::new(Holding::new(key.clone()));
    let actor = start.start(key, holding.clone()).await?;
    Ok((actor, holding))
}

#[cfg(test)]
mod invariant_tests {
    use super::*;

    fn key(id: &str) -> SessionKey {
        SessionKey { tenant: TenantId::from_trusted("t"), id: CorrelationId::from_trusted(id) }
    }

    #[test]
    fn broken_shards_are_named() {
        assert_eq!(Shard::default().check_invariants(), Ok(()));
        let mut shard = Shard::default();
        shard.closing.insert(key("a"), Vec::new());
        assert_eq!(shard.check_invariants(), Err("an empty closing list"));
        let mut shard = Shard::default();
        shard.rebuilding.insert(key("a"), 0);
        assert_eq!(shard.check_invariants(), Err("a rebuild count of 0"));
    }
}
