//! Rows written to ClickHouse, built from a finished segment by pure
//! functions. `otel_traces` and `otel_logs` rows follow the OpenTelemetry
//! Collector's ClickHouse exporter (names, types, and how values are
//! rendered: hex IDs, `Server`/`Error`-style kind and status names, attribute
//! values as text), plus `correlation_id` and `tenant_id`.

use ollystack_proto::store::{ArchivedSegment, StoredExemplar, StoredLog, StoredSpan};
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::query::{any_value_json, body_text, kind_view, status_view, SpanKindView, StatusView};
use crate::store::FinishedSegment;

/// Attribute map as ClickHouse `Map(LowCardinality(String), String)`.
pub type Attrs = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize)]
pub struct TraceRow {
    /// Span start, Unix ns (`DateTime64(9)`).
    #[serde(rename = "Timestamp")]
    pub timestamp: i64,
    #[serde(rename = "TraceId")]
    pub trace_id: String,
    #[serde(rename = "SpanId")]
    pub span_id: String,
    #[serde(rename = "ParentSpanId")]
    pub parent_span_id: String,
    #[serde(rename = "TraceState")]
    pub trace_state: String,
    #[serde(rename = "SpanName")]
    pub span_name: String,
    #[serde(rename = "SpanKind")]
    pub span_kind: &'static str,
    #[serde(rename = "ServiceName")]
    pub service_name: String,
    #[serde(rename = "ResourceAttributes")]
    pub resource_attributes: Attrs,
    /// The instrumentation scope is not kept per span (empty).
    #[serde(rename = "ScopeName")]
    pub scope_name: String,
    #[serde(rename = "ScopeVersion")]
    pub scope_version: String,
    #[serde(rename = "SpanAttributes")]
    pub span_attributes: Attrs,
    #[serde(rename = "Duration")]
    pub duration: u64,
    #[serde(rename = "StatusCode")]
    pub status_code: &'static str,
    #[serde(rename = "StatusMessage")]
    pub status_message: String,
    #[serde(rename = "Events.Timestamp")]
    pub events_timestamp: Vec<i64>,
    #[serde(rename = "Events.Name")]
    pub events_name: Vec<String>,
    #[serde(rename = "Events.Attributes")]
    pub events_attributes: Vec<Attrs>,
    #[serde(rename = "Links.TraceId")]
    pub links_trace_id: Vec<String>,
    #[serde(rename = "Links.SpanId")]
    pub links_span_id: Vec<String>,
    #[serde(rename = "Links.TraceState")]
    pub links_trace_state: Vec<String>,
    #[serde(rename = "Links.Attributes")]
    pub links_attributes: Vec<Attrs>,
    #[serde(rename = "correlation_id")]
    pub correlation_id: String,
    #[serde(rename = "tenant_id")]
    pub tenant_id: String,
}

#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize)]
pub struct LogRow {
    #[serde(rename = "Timestamp")]
    pub timestamp: i64,
    #[serde(rename = "TraceId")]
    pub trace_id: String,
    #[serde(rename = "SpanId")]
    pub span_id: String,
    #[serde(rename = "TraceFlags")]
    pub trace_flags: u8,
    #[serde(rename = "SeverityText")]
    pub severity_text: String,
    #[serde(rename = "SeverityNumber")]
    pub severity_number: u8,
    #[serde(rename = "ServiceName")]
    pub service_name: String,
    #[serde(rename = "Body")]
    pub body: String,
    #[serde(rename = "ResourceAttributes")]
    pub resource_attributes: Attrs,
    /// Schema URLs and the instrumentation scope are not kept per record.
    #[serde(rename = "ResourceSchemaUrl")]
    pub resource_schema_url: String,
    #[serde(rename = "ScopeSchemaUrl")]
    pub scope_schema_url: String,
    #[serde(rename = "ScopeName")]
    pub scope_name: String,
    #[serde(rename = "ScopeVersion")]
    pub scope_version: String,
    #[serde(rename = "ScopeAttributes")]
    pub scope_attributes: Attrs,
    #[serde(rename = "LogAttributes")]
    pub log_attributes: Attrs,
    #[serde(rename = "EventName")]
    pub event_name: String,
    #[serde(rename = "correlation_id")]
    pub correlation_id: String,
    #[serde(rename = "tenant_id")]
    pub tenant_id: String,
}

#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize)]
pub struct ExemplarRow {
    pub tenant_id: String,
    pub correlation_id: String,
    pub metric_name: String,
    pub service_name: String,
    pub timestamp: i64,
    pub value: f64,
    pub trace_id: String,
    pub span_id: String,
    pub labels: Attrs,
}

/// One finished session segment (the `sessions` table).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct SessionRow {
    pub tenant_id: String,
    pub correlation_id: String,
    pub node_id: String,
    pub segment_seq: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Node clock, Unix ms (`DateTime64(3)`).
    pub finished_at: i64,
    pub last_activity: i64,
    pub finish_reason: String,
    pub services: Vec<String>,
    pub span_count: u64,
    pub log_count: u64,
    pub exemplar_count: u64,
    pub error_count: u64,
    pub duration_ms: f64,
    pub root_service: String,
    pub root_span: String,
    pub root_failed: bool,
    /// The running summary as JSON.
    pub summary: String,
    /// The encoded `ArchivedSegment`.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// All rows of a set of segments, per table.
#[derive(Debug, Default)]
pub struct Rows {
    pub traces: Vec<TraceRow>,
    pub logs: Vec<LogRow>,
    pub exemplars: Vec<ExemplarRow>,
    pub sessions: Vec<SessionRow>,
}

impl Rows {
    /// Empty rows with room for `segments`' rows.
    pub fn for_segments(segments: &[std::sync::Arc<FinishedSegment>]) -> Self {
        let (mut spans, mut logs, mut exemplars) = (0, 0, 0);
        for s in segments {
            spans += s.summary.spans as usize;
            logs += s.summary.logs as usize;
            exemplars += s.summary.exemplars as usize;
        }
        Self {
            traces: Vec::with_capacity(spans),
            logs: Vec::with_capacity(logs),
            exemplars: Vec::with_capacity(exemplars),
            sessions: Vec::with_capacity(segments.len()),
        }
    }

    pub fn len(&self) -> usize {
        self.traces.len() + self.logs.len() + self.exemplars.len() + self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds every row of one segment. Records that do not decode (they
    /// were decoded once at ingest, so this means corruption) are skipped
    /// and counted in the return value; the segment's payload keeps them.
    /// `node_column`: the storing node's ID as the `node_id` column holds
    /// it (`NodeId::hex`).
    pub fn add_segment(&mut self, node_column: &str, seg: &FinishedSegment) -> usize {
        let mut skipped = 0;
        let (tenant, id) = (seg.key.tenant.as_str(), seg.key.id.as_str());
        self.sessions.push(session_row(node_column, seg));
        let Ok(archived) = ArchivedSegment::decode(seg.encoded.as_slice()) else {
            return 1;
        };
        for s in &archived.spans {
            match trace_row(s, tenant, id) {
                Some(row) => self.traces.push(row),
                None => skipped += 1,
            }
        }
        for l in &archived.logs {
            match log_row(l, tenant, id) {
                Some(row) => self.logs.push(row),
                None => skipped += 1,
            }
        }
        self.exemplars.extend(archived.exemplars.iter().map(|e| exemplar_row(e, tenant, id)));
        skipped
    }
}

/// Rows a segment adds (for batch bounds, without building them).
pub fn row_count(seg: &FinishedSegment) -> usize {
    let s = &seg.summary;
    1 + (s.spans + s.logs + s.exemplars) as usize
}

pub fn session_row(node_column: &str, seg: &FinishedSegment) -> SessionRow {
    let s = &seg.summary;
    let root = s.root.as_ref();
    SessionRow {
        tenant_id: seg.key.tenant.as_str().to_owned(),
        correlation_id: seg.key.id.as_str().to_owned(),
        node_id: node_column.to_owned(),
        segment_seq: seg.seq,
        first_seen: ticks(s.first_unix_nano.unwrap_or(0)),
        last_seen: ticks(s.last_unix_nano.unwrap_or(0)),
        finished_at: ticks(seg.finished_unix_ms),
        last_activity: ticks(seg.last_activity_unix_ms),
        finish_reason: seg.reason.to_owned(),
        services: s.service_names().map(str::to_owned).collect(),
        span_count: s.spans,
        log_count: s.logs,
        exemplar_count: s.exemplars,
        error_count: s.errors,
        duration_ms: s.duration_ms(),
        root_service: root.map(|r| r.service.clone()).unwrap_or_default(),
        root_span: root.map(|r| r.name.clone()).unwrap_or_default(),
        root_failed: root.is_some_and(|r| r.failed),
        // Serializing plain data to a string cannot fail.
        summary: serde_json::to_string(s).unwrap_or_default(),
        payload: seg.encoded.clone(),
    }
}

pub fn trace_row(stored: &StoredSpan, tenant: &str, id: &str) -> Option<TraceRow> {
    let span = Span::decode(stored.span.as_slice()).ok()?;
    let status = span.status.as_ref();
    Some(TraceRow {
        timestamp: ticks(span.start_time_unix_nano),
        trace_id: hex::encode(&span.trace_id),
        span_id: hex::encode(&span.span_id),
        parent_span_id: hex::encode(&span.parent_span_id),
        trace_state: span.trace_state.clone(),
        span_kind: span_kind(span.kind),
        service_name: stored.service_name.clone(),
        resource_attributes: service_resource(&stored.service_name),
        scope_name: String::new(),
        scope_version: String::new(),
        span_attributes: attrs_owned(span.attributes),
        duration: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano),
        status_code: status_code(status.map_or(0, |s| s.code)),
        status_message: status.map(|s| s.message.clone()).unwrap_or_default(),
        events_timestamp: span.events.iter().map(|e| ticks(e.time_unix_nano)).collect(),
        events_name: span.events.iter().map(|e| e.name.clone()).collect(),
        events_attributes: span.events.iter().map(|e| attrs(&e.attributes)).collect(),
        links_trace_id: span.links.iter().map(|l| hex::encode(&l.trace_id)).collect(),
        links_span_id: span.links.iter().map(|l| hex::encode(&l.span_id)).collect(),
        links_trace_state: span.links.iter().map(|l| l.trace_state.clone()).collect(),
        links_attributes: span.links.iter().map(|l| attrs(&l.attributes)).collect(),
        span_name: span.name,
        correlation_id: id.to_owned(),
        tenant_id: tenant.to_owned(),
    })
}

pub fn log_row(stored: &StoredLog, tenant: &str, id: &str) -> Option<LogRow> {
    let log = LogRecord::decode(stored.log.as_slice()).ok()?;
    let time = if log.time_unix_nano > 0 { log.time_unix_nano } else { log.observed_time_unix_nano };
    Some(LogRow {
        timestamp: ticks(time),
        trace_id: hex::encode(&log.trace_id),
        span_id: hex::encode(&log.span_id),
        trace_flags: (log.flags & 0xff) as u8,
        severity_number: log.severity_number.clamp(0, 255) as u8,
        service_name: stored.service_name.clone(),
        body: body_text(log.body.as_ref()),
        resource_attributes: service_resource(&stored.service_name),
        resource_schema_url: String::new(),
        scope_schema_url: String::new(),
        scope_name: String::new(),
        scope_version: String::new(),
        scope_attributes: Vec::new(),
        log_attributes: attrs_owned(log.attributes),
        event_name: log.event_name.clone(),
        severity_text: log.severity_text,
        correlation_id: id.to_owned(),
        tenant_id: tenant.to_owned(),
    })
}

pub fn exemplar_row(e: &StoredExemplar, tenant: &str, id: &str) -> ExemplarRow {
    ExemplarRow {
        tenant_id: tenant.to_owned(),
        correlation_id: id.to_owned(),
        metric_name: e.metric_name.clone(),
        service_name: e.service_name.clone(),
        timestamp: ticks(e.time_unix_nano),
        value: e.value,
        trace_id: hex::encode(&e.trace_id),
        span_id: hex::encode(&e.span_id),
        labels: e.labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect(),
    }
}

/// Attribute values as the exporter renders them: strings as they are,
/// everything else as its JSON text.
pub fn attrs(kvs: &[KeyValue]) -> Attrs {
    kvs.iter().map(|kv| (kv.key.clone(), value_text(kv.value.as_ref()))).collect()
}

/// [`attrs`], consuming the decoded attributes (no copies of strings).
fn attrs_owned(kvs: Vec<KeyValue>) -> Attrs {
    kvs.into_iter()
        .map(|kv| {
            let value = match kv.value {
                Some(AnyValue { value: Some(Any::StringValue(s)) }) => s,
                other => value_text(other.as_ref()),
            };
            (kv.key, value)
        })
        .collect()
}

fn value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(_) => match value.map(any_value_json) {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        },
    }
}

/// The resource attributes a node keeps per signal: its service name.
fn service_resource(service: &str) -> Attrs {
    vec![("service.name".to_owned(), service.to_owned())]
}

/// A span kind as the exporter names it (`Server`): the API's kind
/// ([`kind_view`]), capitalized.
pub fn span_kind(kind: i32) -> &'static str {
    match kind_view(kind) {
        SpanKindView::Unspecified => "Unspecified",
        SpanKindView::Internal => "Internal",
        SpanKindView::Server => "Server",
        SpanKindView::Client => "Client",
        SpanKindView::Producer => "Producer",
        SpanKindView::Consumer => "Consumer",
    }
}

/// A status code as the exporter names it (`Error`): the API's status
/// ([`status_view`]), capitalized.
pub fn status_code(code: i32) -> &'static str {
    match status_view(code) {
        StatusView::Unset => "Unset",
        StatusView::Ok => "Ok",
        StatusView::Error => "Error",
    }
}

/// Unix ns (or ms) as ClickHouse's signed `DateTime64` ticks.
fn ticks(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
