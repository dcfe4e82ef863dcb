//! Step 3 of ingest: the [`Ingestor`] receivers call. Prepares the request
//! (CPU work on a blocking thread), reserves memory, assigns sessions under
//! the binding lock, writes the WAL and syncs it, and only then hands each
//! group to its session actor and acknowledges.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::assign::{assign, Assigned, Group, Merge};
use super::attr_limits::{record_trimmed, AttrLimits};
use super::limit::AttributeLimiter;
use super::prepare::{prepare_logs, prepare_metrics, prepare_traces, PrepareFn};
use super::{Accepted, IngestError, IngestSink, Overload};
use crate::budget::SESSION_OVERHEAD_BYTES;
use crate::correlate::{self, CorrelationSettings};
use crate::model::{CorrelationId, SessionKey, TenantId};
use crate::session::{FinishRules, Remote, SessionInput};
use crate::session::{SessionEnv, SessionMsg};
use crate::store::archive::adopted_seq;
use crate::store::shipments::{Arrival, ShipmentId};
use crate::store::{ExemplarIndex, HandedSegment, ShipmentLog};
use crate::wal::{encode_entry, WalRecord};
use ollystack_cluster::NodeId;
use prost::Message;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// How long an overloaded client is asked to wait.
const OVERLOAD_RETRY_AFTER_MS: u64 = 1_000;

#[derive(Debug)]
pub struct Ingestor {
    env: Arc<SessionEnv>,
    settings: Arc<CorrelationSettings>,
    /// Attribute cardinality limits, applied in prepare.
    limiter: Arc<dyn AttributeLimiter>,
    /// OTel attribute count and value length limits, applied in prepare.
    attr_limits: AttrLimits,
    exemplars: Arc<ExemplarIndex>,
    /// Shipments taken from other nodes (each is taken once).
    shipments: Arc<ShipmentLog>,
    /// Serializes trace-index updates, so two batches of one trace cannot
    /// both bind it (see `assign`). Held only for the assign step.
    binding_lock: Mutex<()>,
    /// False once shutdown began.
    accepting: AtomicBool,
}

mod handed_bindings;
pub use handed_bindings::SentBinding;

/// Forwarded groups written to the WAL (not yet synced): the groups, the
/// last WAL seq, and the memory reserved.
type StagedEntries = (Vec<(SessionKey, SessionInput)>, u64, u64);

/// The output of the blocking part of ingest.
struct Staged {
    merges: Vec<Merge>,
    /// Each session's signals, in parts of at most `max_spans`/`max_logs`
    /// (one WAL entry each), in WAL order.
    groups: Vec<(SessionKey, SessionInput)>,
    /// WAL seq of each group's entry, in group order.
    wal_keys: Vec<u64>,
    /// The last seq of the batch: acknowledged once it is durable.
    last_seq: u64,
    reserved_bytes: u64,
    rejected: u64,
    reject_message: String,
    /// Groups of sessions owned by other nodes: encoded entries per owner,
    /// with the memory reserved for them (returned once shipped).
    forwards: BTreeMap<NodeId, (Vec<Vec<u8>>, u64)>,
}

/// Reserves `bytes` of the memory budget for a batch, or refuses it: past
/// the WAL's bound (a storage outage backs up into the WAL) or the budget,
/// the node sheds load.
///
/// `sessions` is how many sessions the batch touches: each may open a live
/// session, which costs [`SESSION_OVERHEAD_BYTES`] beyond its data (the
/// actor reserves that itself when it starts), so the budget must have
/// room for it, and the node's live sessions may not pass
/// `max_live_sessions`. Sessions already live count too: near the cap a
/// batch waits until idle sessions finish (the bound errs on the safe side).
fn reserve(env: &SessionEnv, bytes: u64, sessions: usize) -> Result<(), IngestError> {
    let overhead = sessions as u64 * SESSION_OVERHEAD_BYTES;
    let live = env.metrics.sessions_live.get();
    let reason = if env.storage.wal.pinned_bytes() > env.limits.wal_max_bytes {
        Overload::WalBacklog
    } else if live.saturating_add(sessions as u64) > env.limits.max_live_sessions {
        Overload::LiveSessions { max: env.limits.max_live_sessions }
    } else if env.budget.try_reserve(bytes.saturating_add(overhead)) {
        env.budget.release(overhead);
        return Ok(());
    } else {
        Overload::MemoryBudget
    };
    env.metrics.ingest_overloaded.inc();
    Err(IngestError::Overloaded { reason, retry_after_ms: OVERLOAD_RETRY_AFTER_MS })
}

impl Ingestor {
    pub fn new(
        env: Arc<SessionEnv>,
        settings: Arc<CorrelationSettings>,
        limiter: Arc<dyn AttributeLimiter>,
        exemplars: Arc<ExemplarIndex>,
        shipments: Arc<ShipmentLog>,
        attr_limits: AttrLimits,
    ) -> Self {
        Self { env, settings, limiter, attr_limits, exemplars, shipments, binding_lock: Mutex::new(()), accepting: AtomicBool::new(true) }
    }

    /// Refuse new batches (retryable) from now on.
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Release);
    }

    async fn ingest<R: Send + 'static>(self: &Arc<Self>, request: R, prepare: PrepareFn<R>) -> Result<Accepted, IngestError> {
        let this = self.clone();
        to_completion(async move { this.ingest_now(request, prepare).await }).await
    }

    async fn ingest_now<R: Send + 'static>(self: &Arc<Self>, request: R, prepare: PrepareFn<R>) -> Result<Accepted, IngestError> {
        self.check_accepting()?;
        self.check_in_touch()?;
        let this = self.clone();
        let staged = ollystack_cluster::blocking::unblock(move || this.stage(request, prepare))
            .await
            .map_err(|e| IngestError::Internal(format!("ingest task failed: {e}")))??;
        if let Err(e) = self.env.storage.wal.sync(staged.last_seq).await {
            self.env.budget.release(staged.reserved_bytes);
            return Err(IngestError::Internal(format!("wal sync failed: {e}")));
        }
        let mut staged = staged;
        let shipped = self.ship(std::mem::take(&mut staged.forwards)).await;
        let dispatched = self.dispatch(staged).await;
        shipped.and(dispatched)
    }

    /// Prepare, reserve memory, assign sessions, write the WAL (not synced).
    fn stage<R>(&self, request: R, prepare: PrepareFn<R>) -> Result<Staged, IngestError> {
        let env = &self.env;
        let batch = match prepare(&self.settings, &self.attr_limits, self.limiter.as_ref(), request) {
            Ok(batch) => batch,
            Err(e) => {
                if matches!(e, IngestError::Overloaded { .. }) {
                    env.metrics.ingest_overloaded.inc();
                }
                return Err(e);
            }
        };
        let (rejected, reject_message) = (batch.rejected, batch.reject_message.clone());
        for name in &batch.deprecated {
            env.metrics.semconv_deprecated_attributes.add(name, 1);
        }
        env.metrics.ingest_items.data_points.add(batch.data_points);
        record_trimmed(
            &env.metrics,
            &[
                ("span", batch.trimmed_spans),
                ("log", batch.trimmed_logs),
                ("resource", batch.trimmed_resources),
                ("exemplar", batch.trimmed_exemplars),
            ],
        );
        let reserved_bytes = batch.cost_bytes();
        reserve(env, reserved_bytes, batch.sessions_at_most())?;
        let result = (|| {
            let now = env.clock.now_unix_ms();
            let assigned = {
                let _guard = self.binding_lock.lock();
                assign(&self.settings, batch, &env.storage.traces, &env.metrics, now)?
            };
            let Assigned { groups, merges, bindings } = assigned;
            let mut groups = split_groups(groups, &env.limits.rules);
            let forwards = take_remote_groups(&env.remote, &mut groups);
            // Trace-index changes first, so a replay routes the entries the
            // same way.
            let mut records: Vec<WalRecord> = merges
                .iter()
                .map(|m| WalRecord::Alias { tenant: m.tenant.clone(), from: m.from.clone(), to: m.to.clone() })
                .chain(bindings.iter().map(|(tenant, trace, bind)| WalRecord::Binding {
                    tenant: tenant.clone(),
                    trace: *trace,
                    id: bind.id.clone(),
                    explicit: bind.explicit,
                }))
                .collect();
            let first_entry = records.len();
            records.extend(groups.iter().map(|(key, input)| WalRecord::Entry(encode_entry(key, input))));
            let seqs = env.storage.wal.append(&records).map_err(|e| IngestError::Internal(e.to_string()))?;
            let last_seq = seqs.last().copied().unwrap_or(0);
            let wal_keys = seqs[first_entry..].to_vec();
            for ((key, input), seq) in groups.iter().zip(&wal_keys) {
                if !input.exemplars.is_empty() {
                    self.exemplars.add(&key.tenant, &key.id, &input.exemplars, *seq, now)?;
                }
            }
            Ok::<_, IngestError>((merges, groups, wal_keys, last_seq, forwards))
        })();
        match result {
            Ok((merges, groups, wal_keys, last_seq, forwards)) => {
                Ok(Staged { merges, groups, wal_keys, last_seq, reserved_bytes, rejected, reject_message, forwards })
            }
            Err(e) => {
                env.budget.release(reserved_bytes);
                Err(e)
            }
        }
    }

    /// Refuses (retryable) while shutting down.
    fn check_accepting(&self) -> Result<(), IngestError> {
        match self.accepting.load(Ordering::Acquire) {
            true => Ok(()),
            false => Err(IngestError::Unavailable("node is shutting down".into())),
        }
    }

    /// Refuses (retryable) new signals while this node is out of touch
    /// with the cluster (see `Cluster::fenced`): it takes them as a trace's
    /// home or a session's owner, which it may no longer be. Bindings and
    /// handed-over segments are not fenced: their senders check epochs,
    /// and a node that left the membership mid-leave still applies the
    /// answers to the bindings it hands over.
    fn check_in_touch(&self) -> Result<(), IngestError> {
        match self.env.remote.get().and_then(|r| r.fenced(self.env.clock.now_unix_ms())) {
            Some(why) => Err(IngestError::Unavailable(why)),
            None => Ok(()),
        }
    }

    /// Finished segments a leaving node handed over (embedded storage):
    /// archived here with their exemplars indexed, durably before this
    /// returns (the leaving node then drops its copies).
    pub async fn adopt_segments(&self, origin: NodeId, segments: Vec<HandedSegment>) -> Result<(), IngestError> {
        self.check_accepting()?;
        let now = self.env.clock.now_unix_ms();
        for s in &segments {
            let seg = ollystack_proto::store::ArchivedSegment::decode(s.archived.as_slice())
                .map_err(|e| IngestError::Invalid(format!("undecodable handed-over segment: {e}")))?;
            let (tenant, id) = (TenantId::from_trusted(seg.tenant_id.as_str()), CorrelationId::from_trusted(seg.correlation_id.as_str()));
            // Keyed by the adopted seq: indexing a segment twice is idempotent.
            self.exemplars
                .add(&tenant, &id, &seg.exemplars, adopted_seq(origin, s.index.segment_seq), now)
                .map_err(|e| IngestError::Internal(format!("exemplar index: {e}")))?;
            self.bind_adopted_traces(&tenant, &id, &seg, now)?;
        }
        let count = segments.len();
        if count == 0 {
            return Ok(());
        }
        self.env
            .storage
            .store
            .adopt(origin, segments)
            .await
            .map_err(|e| IngestError::Internal(format!("archiving handed-over segments: {e}")))?;
        tracing::info!(from = %origin, segments = count, "took over archived segments of a leaving node");
        Ok(())
    }

    /// Binds the traces of a handed-over segment to its session where this
    /// node knows no binding yet: the leaving node's trace bindings go with
    /// it, and trace lookups ask every member.
    fn bind_adopted_traces(
        &self,
        tenant: &TenantId,
        id: &CorrelationId,
        seg: &ollystack_proto::store::ArchivedSegment,
        now: u64,
    ) -> Result<(), IngestError> {
        let traces: std::collections::BTreeSet<crate::model::TraceId> = seg
            .spans
            .iter()
            .filter_map(|s| opentelemetry_proto::tonic::trace::v1::Span::decode(s.span.as_slice()).ok())
            .filter_map(|span| crate::model::TraceId::from_bytes(&span.trace_id))
            .collect();
        let _guard = self.binding_lock.lock();
        for trace in traces {
            if self.env.storage.traces.binding(tenant, trace)?.is_none() {
                let explicit = *id != correlate::derive_from_trace(trace);
                self.env.storage.traces.bind(tenant, trace, &correlate::TraceBinding { id: id.clone(), explicit }, now)?;
            }
        }
        Ok(())
    }

    /// Session groups another node forwarded here (already assigned to
    /// their correlation ID, as encoded WAL entries): reserve memory, write
    /// them to the WAL and sync, then deliver. Resolves once durable, which
    /// is when the forwarding node may acknowledge its sender. A shipment
    /// taken before (its answer was lost and the sender retried) is
    /// answered as done and not taken again (`store::shipments`).
    pub async fn ingest_entries(self: &Arc<Self>, shipment: ShipmentId, entries: Vec<Vec<u8>>) -> Result<(), IngestError> {
        self.check_accepting()?;
        self.check_in_touch()?;
        match self.shipments.arrive(shipment)? {
            Arrival::Repeat => {
                self.env.metrics.ingest_duplicates.add(entries.len() as u64);
                return Ok(());
            }
            Arrival::InFlight => {
                return Err(IngestError::Unavailable("the same shipment is being taken right now; retry".into()));
            }
            Arrival::New => {}
        }
        // Recorded (or let go) inside the task: a caller that stops waiting must not
        // leave the shipment marked in flight forever.
        let this = self.clone();
        to_completion(async move {
            let taken = this.take_entries(shipment, entries).await;
            match &taken {
                Ok(()) => this.shipments.taken(shipment, this.env.clock.now_unix_ms())?,
                Err(_) => this.shipments.abandon(shipment),
            }
            taken
        })
        .await
    }

    /// Notes that `id`'s data just went to `to` (see
    /// `SessionRegistry::moved_recently`): a query that asked `to` before
    /// the data landed there asks it again.
    pub async fn note_moved(&self, tenant: &TenantId, id: &CorrelationId, to: NodeId) {
        let key = SessionKey { tenant: tenant.clone(), id: id.clone() };
        self.env.registry.note_moved(&key, self.env.clock.now_unix_ms(), to).await;
    }

    /// The shipments taken here, by sending node (`store::shipments`).
    pub fn taken_shipments(&self) -> Result<std::collections::BTreeMap<NodeId, Vec<u64>>, IngestError> {
        Ok(self.shipments.taken_by_origin()?)
    }

    /// Records this node's shipments `ids` as taken by a leaving node,
    /// durably before it returns (`store::shipments`).
    pub async fn note_delivered(&self, ids: &[u64]) -> Result<(), IngestError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.shipments.note_delivered(ids, self.env.clock.now_unix_ms())?;
        Ok(self.env.storage.settler.flusher.flush().await?)
    }

    /// Whether a shipment was taken here before or is being taken right
    /// now (`None`: neither), without checking it in.
    pub fn shipment_seen(&self, shipment: ShipmentId) -> Result<Option<Arrival>, IngestError> {
        Ok(self.shipments.seen(shipment)?)
    }

    async fn take_entries(self: &Arc<Self>, shipment: ShipmentId, entries: Vec<Vec<u8>>) -> Result<(), IngestError> {
        let this = self.clone();
        let (groups, last_seq, reserved) = ollystack_cluster::blocking::unblock(move || this.stage_entries(shipment, entries))
            .await
            .map_err(|e| IngestError::Internal(format!("ingest task failed: {e}")))??;
        let env = &self.env;
        if let Err(e) = env.storage.wal.sync(last_seq).await {
            env.budget.release(reserved);
            return Err(IngestError::Internal(format!("wal sync failed: {e}")));
        }
        let mut previous: Option<SessionKey> = None;
        for (key, input) in groups {
            let cost = input.cost_bytes();
            let (spans, logs, exemplars) = (input.spans.len() as u64, input.logs.len() as u64, input.exemplars.len() as u64);
            tracing::debug!(session = %key.id, spans, logs, exemplars, wal = ?input.wal_key, "took a shipped group");
            if let Err(e) = deliver_part(env, &mut previous, key, input).await {
                env.budget.release(cost);
                return Err(IngestError::Internal(format!("session delivery failed: {e}")));
            }
            env.metrics.ingest_items.spans.add(spans);
            env.metrics.ingest_items.logs.add(logs);
            env.metrics.ingest_items.exemplars.add(exemplars);
        }
        Ok(())
    }

    fn stage_entries(&self, (origin, id): ShipmentId, entries: Vec<Vec<u8>>) -> Result<StagedEntries, IngestError> {
        let env = &self.env;
        let mut groups = Vec::with_capacity(entries.len());
        for bytes in &entries {
            let entry = ollystack_proto::store::WalEntry::decode(bytes.as_slice())
                .map_err(|e| IngestError::Invalid(format!("undecodable forwarded entry: {e}")))?;
            // The longest ID any node's config allows: nodes may differ.
            if !correlate::is_intake_key(correlate::MAX_ID_LENGTH_LIMIT, &entry.tenant_id, &entry.correlation_id) {
                return Err(IngestError::Invalid(format!(
                    "forwarded entry for tenant {:?}, ID {:?}: not a key this cluster's intake makes",
                    entry.tenant_id, entry.correlation_id
                )));
            }
            let key = SessionKey {
                tenant: crate::model::TenantId::from_trusted(entry.tenant_id.as_str()),
                id: crate::model::CorrelationId::from_trusted(entry.correlation_id.as_str()),
            };
            groups.push((key, SessionInput::from_wal(0, &entry)));
        }
        let reserved: u64 = groups.iter().map(|(_, g)| g.cost_bytes()).sum();
        reserve(env, reserved, groups.len())?;
        // The shipment's ID goes to the WAL with its entries: durable with
        // them, it is taken once even across a crash.
        let mut records: Vec<WalRecord> = Vec::with_capacity(entries.len() + 1);
        if id != 0 {
            records.push(WalRecord::Shipment { origin, id });
        }
        let first_entry = records.len();
        records.extend(entries.into_iter().map(WalRecord::Entry));
        let seqs = match env.storage.wal.append(&records) {
            Ok(seqs) => seqs[first_entry..].to_vec(),
            Err(e) => {
                env.budget.release(reserved);
                return Err(IngestError::Internal(e.to_string()));
            }
        };
        let now = env.clock.now_unix_ms();
        for ((key, input), seq) in groups.iter_mut().zip(&seqs) {
            input.wal_key = Some(*seq);
            if !input.exemplars.is_empty() {
                self.exemplars.add(&key.tenant, &key.id, &input.exemplars, *seq, now)?;
            }
        }
        Ok((groups, seqs.last().copied().unwrap_or(0), reserved))
    }

    /// Ships groups owned elsewhere to their owners; all owners at once.
    async fn ship(&self, forwards: BTreeMap<NodeId, (Vec<Vec<u8>>, u64)>) -> Result<(), IngestError> {
        if forwards.is_empty() {
            return Ok(());
        }
        let Some(remote) = self.env.remote.get() else {
            return Err(IngestError::Internal("groups for other nodes on a node outside a cluster".into()));
        };
        let calls = forwards.into_iter().map(|(owner, (entries, cost))| {
            tracing::debug!(%owner, groups = entries.len(), "shipping groups to their owner");
            // No shipment ID: a lost answer fails the client's batch, and
            // its retry (seconds later) meets the live session, which
            // de-duplicates. Recording every ingest shipment would cost a
            // write per batch on the hot path.
            let call = remote.ship(owner, 0, entries);
            async move { (owner, cost, call.await) }
        });
        let mut failed = None;
        for (owner, cost, result) in futures::future::join_all(calls).await {
            self.env.budget.release(cost);
            if let Err(e) = result {
                failed = Some(format!("{owner}: {e}"));
            }
        }
        match failed {
            // Retryable: the parts that did arrive are de-duplicated when the
            // sender retries the whole batch.
            Some(e) => Err(IngestError::Unavailable(format!("forwarding to the session owner failed ({e})"))),
            None => Ok(()),
        }
    }

    /// Hands durable groups to their session actors.
    async fn dispatch(&self, staged: Staged) -> Result<Accepted, IngestError> {
        let env = &self.env;
        for m in &staged.merges {
            env.registry.merge(&m.tenant, &m.from, &m.to).await.map_err(|e| IngestError::Internal(e.to_string()))?;
        }
        let mut failed = None;
        let mut previous: Option<SessionKey> = None;
        for ((key, input), wal_key) in staged.groups.into_iter().zip(staged.wal_keys) {
            let input = SessionInput { wal_key: Some(wal_key), ..input };
            let (spans, logs, exemplars) = (input.spans.len() as u64, input.logs.len() as u64, input.exemplars.len() as u64);
            tracing::debug!(session = %key.id, spans, logs, exemplars, wal = wal_key, "took a group here");
            let cost = input.cost_bytes();
            match deliver_part(env, &mut previous, key, input).await {
                Ok(()) => {
                    env.metrics.ingest_items.spans.add(spans);
                    env.metrics.ingest_items.logs.add(logs);
                    env.metrics.ingest_items.exemplars.add(exemplars);
                }
                Err(e) => {
                    // Durable in the WAL (replayed at restart), but not live:
                    // tell the client to retry; de-duplication absorbs it.
                    env.budget.release(cost);
                    failed = Some(e.to_string());
                }
            }
        }
        if let Some(e) = failed {
            return Err(IngestError::Internal(format!("session delivery failed: {e}")));
        }
        env.metrics.ingest_batches.inc();
        env.metrics.ingest_rejected_items.add(staged.rejected);
        env.metrics.wal_bytes.set(env.storage.wal.bytes());
        env.metrics.memory_used_bytes.set(env.budget.used_bytes());
        Ok(Accepted { rejected_items: staged.rejected, error_message: staged.reject_message })
    }
}

/// Runs `work` to its end even if the caller stops waiting (a client that timed
/// out, a reset stream, a dropped connection). Ingest writes the WAL, binds
/// traces and sets aliases before it hands groups to their actors and merges
/// sessions; stopping in between left durable signals invisible until a restart
/// and trace merges half done.
pub(super) async fn to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, IngestError>> + Send + 'static,
) -> Result<T, IngestError> {
    tokio::spawn(work).await.unwrap_or_else(|e| Err(IngestError::Internal(format!("ingest task failed: {e}"))))
}

/// Hands one part of a batch to its session: a part that follows another
/// of the same session opens a new segment (see
/// [`crate::session::registry::SessionRegistry::deliver_new_segment`]).
async fn deliver_part(
    env: &Arc<SessionEnv>,
    previous: &mut Option<SessionKey>,
    key: SessionKey,
    input: SessionInput,
) -> Result<(), crate::session::registry::RegistryError> {
    let follows = previous.as_ref() == Some(&key);
    *previous = Some(key.clone());
    let reason = if input.spans.is_empty() { crate::session::FinishReason::LogCap } else { crate::session::FinishReason::SpanCap };
    let msg = SessionMsg::Ingest(Box::new(input));
    match follows {
        true => env.registry.deliver_new_segment(env, key, msg, reason).await,
        false => env.registry.deliver(env, key, msg).await,
    }
}

/// Each session's signals in parts of a bounded size (see
/// [`SessionInput::split`]), in session-key order.
fn split_groups(groups: BTreeMap<SessionKey, Group>, rules: &FinishRules) -> Vec<(SessionKey, SessionInput)> {
    let mut out = Vec::with_capacity(groups.len());
    for (key, group) in groups {
        out.extend(group.input.split(rules.max_spans, rules.max_logs).into_iter().map(|part| (key.clone(), part)));
    }
    out
}

/// Takes the groups of sessions other nodes own out of `groups`, encoded
/// as WAL entries per owner, with their reserved memory.
fn take_remote_groups(remote: &Remote, groups: &mut Vec<(SessionKey, SessionInput)>) -> BTreeMap<NodeId, (Vec<Vec<u8>>, u64)> {
    let mut out: BTreeMap<NodeId, (Vec<Vec<u8>>, u64)> = BTreeMap::new();
    if remote.get().is_none() {
        return out;
    }
    groups.retain(|(key, input)| match remote.remote_owner(key) {
        Some((owner, _)) => {
            let slot = out.entry(owner).or_default();
            slot.0.push(encode_entry(key, input));
            slot.1 += input.cost_bytes();
            false
        }
        None => true,
    });
    out
}

impl From<crate::store::StoreError> for IngestError {
    fn from(e: crate::store::StoreError) -> Self {
        IngestError::Internal(e.to_string())
    }
}

/// Receivers hold an `Arc<Ingestor>`; this wrapper gives them `IngestSink`.
#[derive(Debug, Clone)]
pub struct IngestHandle(pub Arc<Ingestor>);

impl IngestSink for IngestHandle {
    async fn traces(&self, request: ExportTraceServiceRequest) -> Result<Accepted, IngestError> {
        self.0.ingest(request, prepare_traces).await
    }

    async fn logs(&self, request: ExportLogsServiceRequest) -> Result<Accepted, IngestError> {
        self.0.ingest(request, prepare_logs).await
    }

    async fn metrics(&self, request: ExportMetricsServiceRequest) -> Result<Accepted, IngestError> {
        self.0.ingest(request, prepare_metrics).await
    }
}
