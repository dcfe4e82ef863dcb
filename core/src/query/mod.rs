//! Queries: answer "everything about this correlation ID" from the segments
//! of a session (live and archived), plus the lookups the API needs.
//!
//! The builders here are pure functions over [`Segment`]s; the node's
//! `QueryBackend` trait is how its API reaches live actors and storage.
//! Reads of one session are paged (`page.rs`): a backend loads the records
//! of one [`Page`] and counts the rest, so memory per request is bounded
//! by the page, not by the session.

mod attrs;
pub use attrs::{any_value_json, body_text};
mod build;
/// Sessions and spans to build tests from (the node's tests use them too).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
mod impact;
mod merge;
pub mod nlq;
mod page;
mod signal;
pub use signal::{kind_view, status_view};
mod time;
mod timeline;
mod view;

pub use crate::session::segment::Segment;
pub use build::{correlate, correlate_page, exemplars_view, page_view, trace_view};
pub use impact::impact;
pub use merge::{merge, Merged, MergedLog, MergedSpan};
pub use page::{is_truncated, next_offset, page_session, Counts, Page, Pager, PAGE_LIMIT_MAX};
pub use time::{format_rfc3339_nanos, parse_rfc3339_nanos};
pub use timeline::timeline;
pub use view::{
    CorrelateResponse, ErrorView, ExemplarView, ExemplarsResponse, ImpactResponse, LogView, MetricView, OperationImpact, PageView,
    RootSpanView, SignalKind, SpanKindView, SpanView, StatusView, Summary, TimeRange, TimelineEntry, TimelineResponse, TraceResponse,
};

use ollystack_proto::store::StoredExemplar;

use crate::model::{CorrelationId, TenantId};

/// Everything stored under one correlation ID.
#[derive(Debug, Clone)]
pub struct SessionData {
    /// The ID the data lives under. Differs from the ID asked for when that
    /// was a trace-derived ID whose trace joined an explicit session.
    pub id: CorrelationId,
    pub segments: Vec<Segment>,
    /// Why part of the stored data is missing (storage out of reach).
    pub partial: Option<String>,
    /// Trace-derived IDs merged into this session, as far as the answering
    /// node knows (another node may hold data under them).
    pub aliases: Vec<CorrelationId>,
}

/// One page of a session ([`Page`]): the records in it, and how many the
/// whole session holds.
#[derive(Debug, Clone)]
pub struct PagedSession {
    /// Only the records of the page (see [`Pager`] for their order).
    pub data: SessionData,
    pub page: Page,
    /// Records of the whole session, per kind, as stored (a record held
    /// twice at once, live and archived, is counted twice).
    pub total: Counts,
}

/// The most rows a listing answers (API and routed queries alike).
pub const LIMIT_MAX: usize = 1000;

/// Filter for `GET /api/v1/sessions`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SessionFilter {
    /// Only sessions that touched this service.
    pub service: Option<String>,
    /// Only sessions with at least one error.
    pub errors_only: bool,
    /// Only sessions last seen (node clock) at or after this time.
    pub since_unix_ms: Option<u64>,
    /// Only sessions whose event time (first to last signal) overlaps
    /// `[start, end)` (Unix ns): windows of per-incident RCA, which must
    /// find incidents replayed with their original timestamps.
    pub event_overlap_unix_nano: Option<(u64, u64)>,
    /// At most this many, newest first.
    pub limit: usize,
    /// Continues a listing that stopped at its scan bound: only archived
    /// segments finished before this time (node clock, Unix ms), and no
    /// live sessions (the first call listed them).
    #[serde(default)]
    pub before_unix_ms: Option<u64>,
}

impl SessionFilter {
    /// Whether a session with this summary, last active at
    /// `last_seen_unix_ms` (node clock), passes the filter.
    pub fn matches(&self, summary: &crate::session::Summary, last_seen_unix_ms: u64) -> bool {
        self.service.as_ref().is_none_or(|s| summary.service(s).is_some())
            && (!self.errors_only || summary.errors > 0)
            && self.since_unix_ms.is_none_or(|t| last_seen_unix_ms >= t)
            && self.event_overlap_unix_nano.is_none_or(|(start, end)| {
                summary.last_unix_nano.is_some_and(|last| last >= start) && summary.first_unix_nano.is_some_and(|first| first < end)
            })
    }
}

/// One row of `GET /api/v1/sessions`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SessionListItem {
    pub correlation_id: CorrelationId,
    pub tenant_id: TenantId,
    pub live: bool,
    /// Event time of the earliest signal (RFC 3339).
    pub start: String,
    /// Event time of the latest signal (RFC 3339).
    pub end: String,
    pub duration_ms: f64,
    pub total_spans: u64,
    pub total_logs: u64,
    pub total_metrics: u64,
    pub error_count: u64,
    pub services: Vec<String>,
    /// Name of the root span (no parent), if one was seen.
    pub root_span: Option<String>,
    /// Node clock time of the last signal (Unix ms), used for `since`.
    pub last_seen_unix_ms: u64,
}

/// A session listing, and where to resume it when the scan behind it
/// stopped at its bound ([`crate::store::listing`]).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SessionListing {
    pub sessions: Vec<SessionListItem>,
    /// Set when archived sessions finished before this time (Unix ms) were
    /// not looked at: ask again with [`SessionFilter::before_unix_ms`].
    pub resume_before_unix_ms: Option<u64>,
}

/// Filter for `GET /api/v1/metrics/{name}/exemplars`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ExemplarFilter {
    pub metric_name: String,
    /// Event time bounds (Unix nanoseconds), inclusive.
    pub start_unix_nano: Option<u64>,
    pub end_unix_nano: Option<u64>,
    pub service: Option<String>,
    pub limit: usize,
}

/// An exemplar and the session it belongs to.
#[derive(Debug, Clone)]
pub struct ExemplarHit {
    pub correlation_id: CorrelationId,
    pub exemplar: StoredExemplar,
}
