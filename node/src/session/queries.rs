//! This node's [`QueryBackend`]: live actor state (live and closing actors
//! of a session) merged with stored segments. The cluster's backend asks
//! it for this node's part.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ollystack_cluster::NodeId;
use ractor::rpc::CallResult;

use super::env::SessionEnv;
use super::msg::SessionMsg;
use super::Summary;
use crate::model::{CorrelationId, SessionKey, TenantId, TraceId};
use crate::query::{
    Counts, ExemplarFilter, ExemplarHit, Page, PagedSession, Pager, QueryBackend, QueryError, SessionData, SessionFilter, SessionListItem,
    SessionListing,
};
use crate::store::ExemplarIndex;

/// How long a query waits for one live actor's description (listings).
const ACTOR_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a query waits for the snapshots of a session's live and
/// closing actors, all together: a node's own answer takes at most about
/// this long, which the hand-off notes' lifetime counts on (see
/// `SessionRegistry::moved_recently`).
pub const SNAPSHOTS_TIMEOUT: Duration = Duration::from_secs(2);
/// Why an answer is partial while a failed session actor's data is being
/// rebuilt from the WAL (it is complete again once the rebuild is done).
const REBUILDING: &str = "a live session is being rebuilt after a failure; ask again shortly";
/// Live sessions described per listing (bounds the work of one request).
const MAX_LIVE_DESCRIBED: usize = 10_000;

#[derive(Debug)]
pub struct NodeQueries {
    env: Arc<SessionEnv>,
    exemplars: Arc<ExemplarIndex>,
    ready: Arc<AtomicBool>,
}

impl NodeQueries {
    pub fn new(env: Arc<SessionEnv>, exemplars: Arc<ExemplarIndex>, ready: Arc<AtomicBool>) -> Self {
        Self { env, exemplars, ready }
    }
}

fn storage(e: impl std::fmt::Display) -> QueryError {
    QueryError::Storage(e.to_string())
}

/// A listing row from a session's running summary.
pub fn list_item(key: &SessionKey, summary: &Summary, live: bool, last_seen_unix_ms: u64) -> SessionListItem {
    SessionListItem {
        correlation_id: key.id.clone(),
        tenant_id: key.tenant.clone(),
        live,
        start: crate::query::format_rfc3339_nanos(summary.first_unix_nano.unwrap_or(0)),
        end: crate::query::format_rfc3339_nanos(summary.last_unix_nano.unwrap_or(0)),
        duration_ms: summary.duration_ms(),
        total_spans: summary.spans,
        total_logs: summary.logs,
        total_metrics: summary.exemplars,
        error_count: summary.errors,
        services: summary.service_names().map(str::to_owned).collect(),
        root_span: summary.root.as_ref().map(|r| r.name.clone()),
        last_seen_unix_ms,
    }
}

impl NodeQueries {
    /// The node this node handed `id`'s live data to within the last RPC
    /// timeout, and how long ago (ms). Ask it after [`QueryBackend::session`]:
    /// an actor that shipped its data and stopped while being asked left
    /// this note first. A coordinator that asked that node before the data
    /// landed there must ask it again.
    pub async fn moved_to(&self, tenant: &TenantId, id: &CorrelationId) -> Result<Option<(NodeId, u64)>, QueryError> {
        let resolved = self.env.storage.traces.resolve(tenant, id).map_err(storage)?;
        let mut ids = vec![resolved.clone()];
        // A derived session merged into this one may have just been handed
        // to its new owner under its own ID.
        ids.extend(self.env.storage.traces.aliased_into(tenant, &resolved).map_err(storage)?);
        let now = self.env.clock.now_unix_ms();
        for held in ids {
            let key = SessionKey { tenant: tenant.clone(), id: held };
            if let Some(moved) = self.env.registry.moved_recently(&key, now).await {
                return Ok(Some(moved));
            }
        }
        Ok(None)
    }
}

impl QueryBackend for NodeQueries {
    async fn session_page(&self, tenant: &TenantId, id: &CorrelationId, page: Page) -> Result<Option<PagedSession>, QueryError> {
        let resolved = self.env.storage.traces.resolve(tenant, id).map_err(storage)?;
        let aliases = self.env.storage.traces.aliased_into(tenant, &resolved).map_err(storage)?;
        let mut ids = vec![resolved.clone()];
        ids.extend(aliases.iter().cloned());
        let mut rebuilding = false;
        // Actors first, then the archive: a segment that moves from one to
        // the other meanwhile is seen at least once (builders de-duplicate).
        // Actors of the aliased IDs too: a derived session being merged
        // into this one holds its data until the merge target has it.
        // A snapshot is a whole live segment (bounded by the session caps);
        // only its page is kept once the archive has been paged.
        let mut live = Vec::new();
        let deadline = tokio::time::Instant::now() + SNAPSHOTS_TIMEOUT;
        for held in &ids {
            let key = SessionKey { tenant: tenant.clone(), id: held.clone() };
            let mut dead = Vec::new();
            for actor in self.env.registry.holders(&key).await {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now()).max(Duration::from_millis(1));
                match actor.call(SessionMsg::Snapshot, Some(left)).await {
                    Ok(CallResult::Success(seg)) => live.push(seg),
                    Ok(CallResult::Timeout) => return Err(QueryError::Unavailable(format!("live session {held} did not answer in time"))),
                    // Stopped meanwhile: its data is archived or moved by
                    // now, unless it failed (asked below).
                    Ok(CallResult::SenderError) | Err(_) => dead.push(actor.get_id()),
                }
            }
            // After the snapshots: a rebuild that ended before them put
            // its data in the live actor's snapshot.
            rebuilding |= self.env.registry.awaiting_rebuild(&key, &dead).await;
        }
        // Storage order (see `query::Pager`): archived segments, then live.
        let stored = self.env.storage.store.segments_page(tenant, &ids, Pager::new(page)).await.map_err(storage)?;
        let partial = match (rebuilding, stored.unavailable) {
            (false, unavailable) => unavailable,
            (true, None) => Some(REBUILDING.to_owned()),
            (true, Some(reason)) => Some(format!("{REBUILDING}; {reason}")),
        };
        let mut pager = stored.pager;
        let mut segments = stored.segments;
        segments.extend(live.into_iter().map(|seg| pager.keep(seg)));
        let total = pager.seen();
        // Nothing here, but sessions merged into this one are known here:
        // their data may sit under their own IDs elsewhere (the caller
        // asks for them).
        if total == Counts::default() && aliases.is_empty() {
            // Nothing found, but storage could not be asked or a failed
            // session is being rebuilt: unknown, not absent.
            return match partial {
                Some(reason) => Err(QueryError::Unavailable(reason)),
                None => Ok(None),
            };
        }
        let data = SessionData { id: resolved, segments, partial, aliases };
        Ok(Some(PagedSession { data, page, total }))
    }

    async fn session_of_trace(&self, tenant: &TenantId, trace_id: TraceId) -> Result<Option<CorrelationId>, QueryError> {
        match self.env.storage.traces.binding(tenant, trace_id).map_err(storage)? {
            Some(b) => Ok(Some(self.env.storage.traces.resolve(tenant, &b.id).map_err(storage)?)),
            None => Ok(None),
        }
    }

    async fn session_listing(&self, tenant: &TenantId, filter: &SessionFilter) -> Result<SessionListing, QueryError> {
        let mut rows: HashMap<CorrelationId, SessionListItem> = HashMap::new();
        // A continued listing is of archived segments only: the first call
        // listed the live sessions.
        let live = if filter.before_unix_ms.is_none() { self.env.registry.live_actors().await } else { Vec::new() };
        for (key, actor) in live.into_iter().filter(|(k, _)| k.tenant == *tenant).take(MAX_LIVE_DESCRIBED) {
            let Ok(CallResult::Success((summary, last_seen))) = actor.call(SessionMsg::Describe, Some(ACTOR_CALL_TIMEOUT)).await else {
                continue;
            };
            if filter.matches(&summary, last_seen) {
                rows.insert(key.id.clone(), list_item(&key, &summary, true, last_seen));
            }
        }
        let archived = self.env.storage.store.recent(tenant, filter).await.map_err(storage)?;
        for e in archived.entries {
            let key = SessionKey { tenant: tenant.clone(), id: CorrelationId::from_trusted(e.correlation_id.as_str()) };
            rows.entry(key.id.clone()).or_insert_with(|| list_item(&key, &e.summary, false, e.last_activity_unix_ms));
        }
        let mut out: Vec<SessionListItem> = rows.into_values().collect();
        out.sort_by(|a, b| b.last_seen_unix_ms.cmp(&a.last_seen_unix_ms).then_with(|| a.correlation_id.cmp(&b.correlation_id)));
        out.truncate(filter.limit);
        Ok(SessionListing { sessions: out, resume_before_unix_ms: archived.resume_before_unix_ms })
    }

    async fn exemplars(&self, tenant: &TenantId, filter: &ExemplarFilter) -> Result<Vec<ExemplarHit>, QueryError> {
        self.exemplars.query(tenant, filter).map_err(storage)
    }

    fn render_metrics(&self) -> String {
        let env = &self.env;
        env.metrics.memory_used_bytes.set(env.budget.used_bytes());
        env.metrics.wal_bytes.set(env.storage.wal.bytes());
        env.metrics.archive_bytes.set(env.storage.store.local_bytes());
        env.metrics.render()
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}
