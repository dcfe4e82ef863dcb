//! How the API reaches live sessions and the archive: the [`QueryBackend`]
//! trait, implemented by the node (and by the cluster's routing backend),
//! and [`collect_window`], the default reading of an incident window's
//! sessions into one node's [`WindowAggregate`] (the I/O edge of
//! per-incident RCA; the aggregate, its merge and the fold are pure, in
//! `rca::incident`). Sessions are chosen by event time; at most
//! `sessions_max` are read (the most recently active), in batches of
//! [`BATCH_SESSIONS`] folded on the blocking pool.

use std::future::Future;

use crate::model::{CorrelationId, TenantId, TraceId};
use crate::query::{ExemplarFilter, ExemplarHit, Page, PagedSession, SessionData, SessionFilter, SessionListItem, SessionListing};
use crate::rca::incident::{fold, Collected, WindowAggregate, WindowQuery, BATCH_SESSIONS};

/// A query could not be answered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    #[error("storage error: {0}")]
    Storage(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// How the API reaches live sessions and the archive. Implemented by the
/// node; tests can implement it over fixed data.
pub trait QueryBackend: Send + Sync + 'static {
    /// One page of a session's segments: the records of `page` (see
    /// [`Pager`]) and the session's record counts; `None` when the ID is
    /// unknown. Follows trace-unification aliases. Memory is bounded by the
    /// page (plus one stored segment), not by the session.
    fn session_page(
        &self,
        tenant: &TenantId,
        id: &CorrelationId,
        page: Page,
    ) -> impl Future<Output = Result<Option<PagedSession>, QueryError>> + Send;

    /// All segments of a session, however large: for analyses of a whole
    /// session (RCA). API reads of one session page ([`Self::session_page`]).
    fn session(&self, tenant: &TenantId, id: &CorrelationId) -> impl Future<Output = Result<Option<SessionData>, QueryError>> + Send {
        async move { Ok(self.session_page(tenant, id, Page::ALL).await?.map(|p| p.data)) }
    }

    /// The session a trace belongs to.
    fn session_of_trace(
        &self,
        tenant: &TenantId,
        trace_id: TraceId,
    ) -> impl Future<Output = Result<Option<CorrelationId>, QueryError>> + Send;

    /// Recent sessions, newest first (live and archived), from a bounded
    /// scan: the listing says where to resume when the scan stopped early.
    fn session_listing(&self, tenant: &TenantId, filter: &SessionFilter)
        -> impl Future<Output = Result<SessionListing, QueryError>> + Send;

    /// The rows of [`Self::session_listing`] (callers that read what one
    /// bounded scan finds).
    fn recent_sessions(
        &self,
        tenant: &TenantId,
        filter: &SessionFilter,
    ) -> impl Future<Output = Result<Vec<SessionListItem>, QueryError>> + Send {
        async move { Ok(self.session_listing(tenant, filter).await?.sessions) }
    }

    /// The mergeable aggregate of every session whose event time overlaps
    /// the window (per-incident RCA and window anomalies). The default
    /// reads this node's sessions ([`collect_window`]);
    /// a cluster backend overrides it to ask every node for its
    /// [`Collected`](crate::rca::incident::Collected) and fold them with
    /// [`Collected::merge`](crate::rca::incident::Collected::merge).
    fn window_aggregate(
        &self,
        tenant: &TenantId,
        query: &crate::rca::incident::WindowQuery,
    ) -> impl Future<Output = Result<crate::rca::incident::Collected, QueryError>> + Send {
        collect_window(self, tenant, query)
    }

    /// Exemplars of a metric in an event-time window, oldest first.
    fn exemplars(&self, tenant: &TenantId, filter: &ExemplarFilter) -> impl Future<Output = Result<Vec<ExemplarHit>, QueryError>> + Send;

    /// The node's metrics in Prometheus text format.
    fn render_metrics(&self) -> String;

    /// Ready to serve (WAL replayed, listeners up).
    fn is_ready(&self) -> bool;
}

/// Reads every session of the window (see the module doc).
pub async fn collect_window<B: QueryBackend + ?Sized>(backend: &B, tenant: &TenantId, q: &WindowQuery) -> Result<Collected, QueryError> {
    let filter = SessionFilter {
        event_overlap_unix_nano: Some((q.start_unix_nano, q.end_unix_nano)),
        limit: q.sessions_max.saturating_add(1),
        ..Default::default()
    };
    let listing = backend.session_listing(tenant, &filter).await?;
    let mut listed = listing.sessions;
    let mut reasons = Vec::new();
    // The listing's scan is bounded: say what it did not look at.
    if let Some(before) = listing.resume_before_unix_ms {
        reasons.push(format!("the session index was read back to {before} (Unix ms); sessions archived before then were not read"));
    }
    if listed.len() > q.sessions_max {
        reasons.push(format!("more than {} sessions in the window: the {} most recently active were read", q.sessions_max, q.sessions_max));
        listed.truncate(q.sessions_max);
    }
    let mut aggregate = WindowAggregate::new(q.keys_max);
    let mut unreadable = 0usize;
    for chunk in listed.chunks(BATCH_SESSIONS) {
        let mut batch = Vec::with_capacity(chunk.len());
        for item in chunk {
            match backend.session(tenant, &item.correlation_id).await {
                Ok(Some(data)) => batch.push(data),
                Ok(None) => {}
                Err(e) => {
                    unreadable += 1;
                    tracing::warn!(error = %e, id = %item.correlation_id, "window session unreadable");
                }
            }
        }
        let (start, end, keys_max) = (q.start_unix_nano, q.end_unix_nano, q.keys_max);
        let part = ollystack_cluster::blocking::unblock(move || fold(&batch, start, end, keys_max))
            .await
            .map_err(|e| QueryError::Storage(format!("window aggregation task failed: {e}")))?;
        aggregate.merge(&part);
    }
    if unreadable > 0 {
        reasons.push(format!("{unreadable} session(s) could not be read"));
    }
    if aggregate.dropped > 0 {
        reasons.push(format!("{} span(s) and log(s) of keys beyond the {} key bound were left out", aggregate.dropped, q.keys_max));
    }
    Ok(Collected { aggregate, partial: (!reasons.is_empty()).then(|| reasons.join("; ")) })
}
