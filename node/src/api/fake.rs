//! A [`QueryBackend`] over fixed data and request helpers, for testing the
//! API layer without storage, sockets or clocks (test builds only).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use parking_lot::Mutex;
use tower::ServiceExt;

use super::{router, ApiState};
use crate::clock::Clock;
use crate::model::{CorrelationId, TenantId, TraceId};
use crate::query::{
    page_session, ExemplarFilter, ExemplarHit, Page, PagedSession, QueryBackend, QueryError, SessionData, SessionFilter, SessionListItem,
    SessionListing,
};

/// Node-clock time the fake clock always reads (Unix ms).
pub const NOW_UNIX_MS: u64 = 1_700_000_600_000;

/// A clock stopped at [`NOW_UNIX_MS`].
#[derive(Debug)]
pub struct FixedClock;

impl Clock for FixedClock {
    fn now_unix_ms(&self) -> u64 {
        NOW_UNIX_MS
    }

    fn sleep(&self, _duration: Duration) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Fixed answers, per tenant, plus a record of what the API asked.
#[derive(Default)]
pub struct FakeBackend {
    /// Sessions by (tenant, correlation ID).
    pub sessions: HashMap<(String, String), SessionData>,
    /// Trace → session, by tenant.
    pub traces: HashMap<(String, TraceId), CorrelationId>,
    pub listed: Vec<SessionListItem>,
    pub hits: Vec<ExemplarHit>,
    pub ready: bool,
    /// When set, every lookup fails with it.
    pub failure: Option<QueryError>,
    /// Number of lookups made (session, trace, list, exemplars).
    pub lookups: AtomicUsize,
    pub last_session_filter: Mutex<Option<SessionFilter>>,
    pub last_exemplar_filter: Mutex<Option<ExemplarFilter>>,
    /// Where listings say to resume.
    pub resume_before_unix_ms: Option<u64>,
    /// The page of the last session read.
    pub last_page: Mutex<Option<Page>>,
}

impl FakeBackend {
    pub fn with_session(mut self, tenant: &str, data: SessionData) -> Self {
        self.sessions.insert((tenant.to_owned(), data.id.to_string()), data);
        self
    }

    pub fn with_trace(mut self, tenant: &str, trace: TraceId, id: &str) -> Self {
        self.traces.insert((tenant.to_owned(), trace), CorrelationId::from_trusted(id));
        self
    }

    fn begin(&self) -> Result<(), QueryError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.failure.clone().map_or(Ok(()), Err)
    }
}

impl QueryBackend for FakeBackend {
    async fn session_page(&self, tenant: &TenantId, id: &CorrelationId, page: Page) -> Result<Option<PagedSession>, QueryError> {
        self.begin()?;
        *self.last_page.lock() = Some(page);
        Ok(self.sessions.get(&(tenant.to_string(), id.to_string())).cloned().map(|data| page_session(data, page)))
    }

    async fn session_of_trace(&self, tenant: &TenantId, trace_id: TraceId) -> Result<Option<CorrelationId>, QueryError> {
        self.begin()?;
        Ok(self.traces.get(&(tenant.to_string(), trace_id)).cloned())
    }

    async fn session_listing(&self, _tenant: &TenantId, filter: &SessionFilter) -> Result<SessionListing, QueryError> {
        self.begin()?;
        *self.last_session_filter.lock() = Some(filter.clone());
        // Event-time windows are applied as the node does, from the rows' times.
        let overlaps = |item: &SessionListItem| {
            filter.event_overlap_unix_nano.is_none_or(|(start, end)| {
                let time = |t: &str| crate::query::parse_rfc3339_nanos(t).unwrap_or(0);
                time(&item.end) >= start && time(&item.start) < end
            })
        };
        let sessions = self.listed.iter().filter(|i| overlaps(i)).take(filter.limit.max(1)).cloned().collect();
        Ok(SessionListing { sessions, resume_before_unix_ms: self.resume_before_unix_ms })
    }

    async fn exemplars(&self, _tenant: &TenantId, filter: &ExemplarFilter) -> Result<Vec<ExemplarHit>, QueryError> {
        self.begin()?;
        *self.last_exemplar_filter.lock() = Some(filter.clone());
        Ok(self.hits.clone())
    }

    fn render_metrics(&self) -> String {
        "# TYPE ollystack_test_total counter\nollystack_test_total 1\n".to_owned()
    }

    fn is_ready(&self) -> bool {
        self.ready
    }
}

/// The router over `backend`, with IDs up to 100 bytes.
pub fn app(backend: FakeBackend, tenancy_enabled: bool) -> (Router, Arc<FakeBackend>) {
    let (app, backend, _) = app_with_state(backend, tenancy_enabled);
    (app, backend)
}

/// [`app`] and the state it serves, for tests that hold its permits.
pub fn app_with_state(backend: FakeBackend, tenancy_enabled: bool) -> (Router, Arc<FakeBackend>, ApiState<FakeBackend>) {
    let backend = Arc::new(backend);
    let state = ApiState {
        backend: Arc::clone(&backend),
        tenancy_enabled,
        max_id_length: 100,
        clock: Arc::new(FixedClock),
        baselines: Arc::new(crate::rca::Baselines::default()),
        explainer: Arc::new(crate::llm::Explainer::off()),
        session_reads: crate::api::session_reads(),
    };
    (router(state.clone()), backend, state)
}

/// An answer: status, headers and body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// The `error.code` and `error.message` of an error answer.
    pub fn error(&self) -> (String, String) {
        let json = self.json();
        let field = |name: &str| json["error"][name].as_str().expect("error field").to_owned();
        (field("code"), field("message"))
    }
}

/// Sends `GET uri` with `headers` through the router (no socket).
pub async fn get(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body").to_vec();
    Reply { status, headers, body }
}
