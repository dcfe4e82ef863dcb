//! The JSON shapes of query answers (snake_case). Built by the pure
//! functions of this module's siblings; the API serializes them as they are.
//!
//! Times are RFC 3339 strings in UTC with nanoseconds; IDs are lowercase hex
//! (empty string when absent).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::CorrelationId;

/// `GET /api/v1/correlate/{id}`: everything stored under one correlation ID.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorrelateResponse {
    /// The ID the session lives under (may differ from the ID asked for).
    pub correlation_id: CorrelationId,
    /// True when a live session actor contributed signals.
    pub live: bool,
    /// True when part of the stored data could not be read (the reason is
    /// in `partial_reason`); the rest of the answer is what could be.
    pub partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    /// Earliest to latest event time; `None` when the session holds no
    /// timestamped signal.
    pub time_range: Option<TimeRange>,
    pub summary: Summary,
    /// Spans, by start time.
    pub traces: Vec<SpanView>,
    /// Log records, by time.
    pub logs: Vec<LogView>,
    /// Metric exemplars, by time.
    pub metrics: Vec<MetricView>,
    /// Distinct service names, sorted.
    pub services: Vec<String>,
    /// Failed spans and error logs, by time.
    pub errors: Vec<ErrorView>,
    /// Every signal as one time-ordered list.
    pub timeline: Vec<TimelineEntry>,
    /// Stored records that could not be decoded and are missing here.
    pub skipped_records: u64,
    /// True when this answer leaves out records of the session: `page`
    /// says which part it holds and how to get the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<PageView>,
}

/// Which records of a session an answer holds (`?offset=&limit=`): records
/// `[offset, offset + limit)` of each kind in storage order. With
/// `truncated`, `summary`'s `total_*` counts are the whole session's;
/// the other fields describe the records of this page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageView {
    pub offset: u64,
    pub limit: u64,
    /// Records of the whole session, as stored.
    pub session_spans: u64,
    pub session_logs: u64,
    pub session_metrics: u64,
    /// Path and query of the next page; `None` on the last.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeRange {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub total_spans: u64,
    pub total_logs: u64,
    /// Exemplars (the metric signals that point at this session).
    pub total_metrics: u64,
    /// Spans with status ERROR plus logs with severity ERROR or worse.
    pub error_count: u64,
    pub service_count: u64,
    /// Length of `time_range` in milliseconds.
    pub duration_ms: f64,
}

/// The kind of a span, lowercase (`SPAN_KIND_SERVER` → `server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKindView {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// A span's status code, lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusView {
    Unset,
    Ok,
    Error,
}

/// One span, as `traces[]` and `GET /api/v1/traces/{id}` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanView {
    /// Start time.
    pub timestamp: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub span_name: String,
    pub span_kind: SpanKindView,
    pub service_name: String,
    pub duration_ns: u64,
    pub status_code: StatusView,
    pub status_message: String,
    pub attributes: Map<String, Value>,
    /// Attributes the sender or this node's attribute limits dropped
    /// (OTLP `dropped_attributes_count`): `attributes` is not the whole set.
    pub dropped_attributes_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogView {
    /// Event time, or observed time when the event time is unset.
    pub timestamp: String,
    pub trace_id: String,
    pub span_id: String,
    pub severity_text: String,
    pub severity_number: i32,
    pub service_name: String,
    /// String bodies as they are; other bodies as JSON text.
    pub body: String,
    pub attributes: Map<String, Value>,
    /// As for spans: attributes dropped by the sender or the limits.
    pub dropped_attributes_count: u32,
}

/// One metric exemplar.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricView {
    pub timestamp: String,
    pub metric_name: String,
    pub value: f64,
    pub trace_id: String,
    pub span_id: String,
    pub service_name: String,
    pub labels: BTreeMap<String, String>,
}

/// Which signal an error or timeline entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalKind {
    Span,
    Log,
    Metric,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorView {
    pub timestamp: String,
    /// `span` or `log`.
    #[serde(rename = "type")]
    pub kind: SignalKind,
    pub service: String,
    /// The span's status message (its name when that is empty) or the log body.
    pub message: String,
    pub span_id: String,
    pub trace_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub timestamp: String,
    #[serde(rename = "type")]
    pub kind: SignalKind,
    pub service: String,
    /// Span name, log body (at most 200 characters) or `metric = value`.
    pub description: String,
    pub span_id: String,
    /// Spans only.
    pub duration_ms: Option<f64>,
    /// Log severity (lowercase), `error` for failed spans, else `None`.
    pub level: Option<String>,
    pub is_error: bool,
}

/// `GET /api/v1/correlate/{id}/timeline`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineResponse {
    pub correlation_id: CorrelationId,
    pub live: bool,
    /// As in [`CorrelateResponse`].
    pub partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    pub timeline: Vec<TimelineEntry>,
    /// As in [`CorrelateResponse`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<PageView>,
}

/// `GET /api/v1/correlate/{id}/impact`: what the request touched and what broke.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactResponse {
    pub correlation_id: CorrelationId,
    pub live: bool,
    /// As in [`CorrelateResponse`].
    pub partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    /// Distinct services, sorted.
    pub services: Vec<String>,
    /// Per (service, span name), sorted by service then operation.
    pub operations: Vec<OperationImpact>,
    /// Error spans plus error logs, for every service (zero included).
    pub errors_by_service: BTreeMap<String, u64>,
    /// The entry point of the flow, if one was seen.
    pub root_span: Option<RootSpanView>,
    /// True when a root span (of any trace in the session) failed: the
    /// caller of the flow saw the error.
    pub user_facing_failed: bool,
    /// As in [`CorrelateResponse`]: the figures above are of this page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<PageView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationImpact {
    pub service: String,
    /// The span name.
    pub operation: String,
    pub calls: u64,
    /// Calls with status ERROR.
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RootSpanView {
    pub span_name: String,
    pub service_name: String,
    pub failed: bool,
    pub duration_ms: f64,
}

/// `GET /api/v1/traces/{trace_id}`: the spans of one trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceResponse {
    /// The session the trace belongs to.
    pub correlation_id: CorrelationId,
    pub trace_id: String,
    pub live: bool,
    /// By start time.
    pub spans: Vec<SpanView>,
    /// As in [`CorrelateResponse`]: pages are of the session's records,
    /// this trace's spans among them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<PageView>,
}

/// `GET /api/v1/metrics/{name}/exemplars`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExemplarsResponse {
    pub metric_name: String,
    pub exemplars: Vec<ExemplarView>,
}

/// An exemplar and the session it leads to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExemplarView {
    pub correlation_id: CorrelationId,
    #[serde(flatten)]
    pub exemplar: MetricView,
}
