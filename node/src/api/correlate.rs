//! `GET /api/v1/correlate/{id}` (everything about a session) and its
//! `timeline` and `impact` views.
//!
//! Answers are paged so that no request loads or answers an unbounded
//! session: `?limit=N` (1 to 10,000, default 10,000) records of each kind
//! (spans, logs, exemplars) from `?offset=K` (default 0), in storage order
//! (see [`crate::query::Pager`]); each page is sorted by time. Every answer
//! carries `truncated` (records of the session are not in it) and `page`:
//! `offset`, `limit`, the session's record counts (`session_spans`,
//! `session_logs`, `session_metrics`) and `next`, the path and query of the
//! next page (`null` on the last). Following `next` until it is `null`
//! visits every record once.
//!
//! Session reads run at most [`SESSION_READS_MAX`] at once; a request that
//! waits longer than [`SESSION_READ_WAIT`] for its turn gets 429 with
//! `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{compute, params, ApiError, ApiState, Tenant};
use crate::model::{CorrelationId, TenantId};
use crate::query::{self, CorrelateResponse, ImpactResponse, Page, PagedSession, QueryBackend, TimelineResponse};

/// Session reads (correlate, timeline, impact, traces) running at once.
/// Each holds at most a page of decoded records (plus one stored segment):
/// with 10,000 records a page, some tens of MB.
pub const SESSION_READS_MAX: usize = 8;
/// How long a session read waits for its turn before answering 429.
pub const SESSION_READ_WAIT: Duration = Duration::from_secs(2);
/// `Retry-After` of that 429, in seconds.
const RETRY_AFTER_S: u64 = 1;

/// The permits of [`ApiState::session_reads`].
pub fn session_reads() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(SESSION_READS_MAX))
}

/// Query parameters of a session page, as text: checked by
/// [`params::page`] so errors name the parameter and value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    offset: Option<String>,
    limit: Option<String>,
    /// Read by the [`Tenant`] extractor; listed so it is not unknown here,
    /// and kept in `next` links.
    tenant: Option<String>,
}

impl PageParams {
    pub fn page(&self) -> Result<Page, ApiError> {
        params::page(self.offset.as_deref(), self.limit.as_deref())
    }

    /// `next` of a page of `path`: the same query from `offset` on.
    pub fn next_link(&self, path: String, limit: u64) -> impl Fn(u64) -> String + Send + 'static {
        let tenant = self.tenant.clone();
        move |offset| match &tenant {
            // Tenants are `[A-Za-z0-9_-]` only (checked by the extractor): safe in a URL.
            Some(t) => format!("{path}?offset={offset}&limit={limit}&tenant={t}"),
            None => format!("{path}?offset={offset}&limit={limit}"),
        }
    }
}

type PageQuery = Result<Query<PageParams>, QueryRejection>;

pub async fn full<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    id: Result<Path<String>, PathRejection>,
    query: PageQuery,
) -> Result<Json<CorrelateResponse>, ApiError> {
    let read = load(&state, &tenant, id, query, "").await?;
    compute(move || read.answer()).await.map(Json)
}

pub async fn timeline<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    id: Result<Path<String>, PathRejection>,
    query: PageQuery,
) -> Result<Json<TimelineResponse>, ApiError> {
    let read = load(&state, &tenant, id, query, "/timeline").await?;
    compute(move || query::timeline(read.answer())).await.map(Json)
}

pub async fn impact<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    id: Result<Path<String>, PathRejection>,
    query: PageQuery,
) -> Result<Json<ImpactResponse>, ApiError> {
    let read = load(&state, &tenant, id, query, "/impact").await?;
    compute(move || query::impact(&read.answer())).await.map(Json)
}

/// `GET /api/v1/correlate/` (no ID): 400 like any other malformed ID,
/// rather than the 404 of an unknown route.
pub async fn empty_id() -> ApiError {
    ApiError::bad_request("correlation id \"\": is empty")
}

/// One page of a session, read while holding a session-read permit (kept
/// until the answer is built).
struct Read {
    paged: PagedSession,
    next_link: Box<dyn Fn(u64) -> String + Send>,
    _permit: OwnedSemaphorePermit,
}

impl Read {
    fn answer(&self) -> CorrelateResponse {
        query::correlate_page(&self.paged, &self.next_link)
    }
}

/// Waits (a bounded time) for a session-read permit.
pub async fn session_read_permit<B>(state: &ApiState<B>) -> Result<OwnedSemaphorePermit, ApiError> {
    match tokio::time::timeout(SESSION_READ_WAIT, Arc::clone(&state.session_reads).acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        // Never closed; a closed semaphore would mean shutting down.
        Ok(Err(_)) | Err(_) => {
            Err(ApiError::busy(format!("too many session reads at once (at most {SESSION_READS_MAX}); retry later"), RETRY_AFTER_S))
        }
    }
}

/// The page of the session named in the path: 400 for a malformed ID or
/// page (before any lookup), 404 when there is none, 429 when too many
/// reads run. `view` is the route's path after the ID, for `next`.
async fn load<B: QueryBackend>(
    state: &ApiState<B>,
    tenant: &TenantId,
    id: Result<Path<String>, PathRejection>,
    query: PageQuery,
    view: &str,
) -> Result<Read, ApiError> {
    let id = params::correlation_id(&params::path(id)?, state.max_id_length)?;
    let params = params::query(query)?;
    let page = params.page()?;
    let permit = session_read_permit(state).await?;
    let paged = state.backend.session_page(tenant, &id, page).await?.ok_or_else(|| not_found(&id))?;
    let next_link = Box::new(params.next_link(format!("/api/v1/correlate/{id}{view}"), page.limit));
    Ok(Read { paged, next_link, _permit: permit })
}

fn not_found(id: &CorrelationId) -> ApiError {
    ApiError::not_found(format!("no session with correlation id {}", params::quoted(id.as_str())))
}

#[cfg(test)]
#[path = "correlate_test.rs"]
mod tests;
