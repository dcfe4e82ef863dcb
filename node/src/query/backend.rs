//! How the API reaches live sessions and the archive: the [`QueryBackend`]
//! trait, implemented by the node (and by the cluster's routing backend).

use std::future::Future;

use super::window::collect_window;
use crate::model::{CorrelationId, TenantId, TraceId};
use crate::query::{ExemplarFilter, ExemplarHit, Page, PagedSession, SessionData, SessionFilter, SessionListItem, SessionListing};

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
