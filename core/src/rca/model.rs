//! The small input model every RCA algorithm reads: spans, logs and
//! exemplars with only the fields analysis needs, decoded once from the
//! merged session. Tests build it directly.

use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};

use crate::model::{SpanId, TraceId};
use crate::query::{body_text, Merged, SpanKindView};

/// Lowest OTLP severity number of the ERROR range (ERROR..FATAL4 = 17..=24).
pub const SEVERITY_ERROR_MIN: i32 = 17;

/// Attributes naming the peer of a client or producer span whose callee is
/// not instrumented (a database, a queue, a third-party API), best first.
const PEER_ATTRIBUTES: [&str; 6] = ["peer.service", "db.system.name", "db.system", "messaging.system", "server.address", "net.peer.name"];

/// One span.
#[derive(Debug, Clone, PartialEq)]
pub struct RcaSpan {
    pub service: String,
    /// The span name.
    pub operation: String,
    pub kind: SpanKindView,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span (or when the parent ID is malformed).
    pub parent_id: Option<SpanId>,
    pub start_ns: u64,
    /// Never before `start_ns` (a span that ends before it starts is read
    /// as lasting zero).
    pub end_ns: u64,
    /// Status ERROR, or an HTTP 5xx response on a server span.
    pub is_error: bool,
    /// Status message, else the message of an `exception` event.
    pub message: String,
    /// Who a client/producer span talks to, when an attribute says so.
    pub peer: Option<String>,
}

impl RcaSpan {
    pub fn duration_ns(&self) -> u64 {
        self.end_ns - self.start_ns
    }
}

/// One log record.
#[derive(Debug, Clone, PartialEq)]
pub struct RcaLog {
    pub service: String,
    /// Event time, else observed time (Unix ns).
    pub time_ns: u64,
    pub severity: i32,
    pub body: String,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
}

impl RcaLog {
    pub fn is_error(&self) -> bool {
        self.severity >= SEVERITY_ERROR_MIN
    }
}

/// One metric exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct RcaExemplar {
    pub service: String,
    pub metric: String,
    pub value: f64,
    pub time_ns: u64,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
}

/// Everything one analysis reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RcaInput {
    pub spans: Vec<RcaSpan>,
    pub logs: Vec<RcaLog>,
    pub exemplars: Vec<RcaExemplar>,
}

impl RcaInput {
    /// The analysis input of a merged session. Spans without valid trace
    /// and span IDs cannot be placed in a tree and are left out.
    pub fn from_merged(merged: &Merged) -> Self {
        let spans = merged.spans.iter().filter_map(|m| rca_span(&m.service_name, &m.span)).collect();
        let logs = merged
            .logs
            .iter()
            .map(|m| RcaLog {
                service: m.service_name.clone(),
                time_ns: if m.log.time_unix_nano != 0 { m.log.time_unix_nano } else { m.log.observed_time_unix_nano },
                severity: m.log.severity_number,
                body: body_text(m.log.body.as_ref()),
                trace_id: TraceId::from_bytes(&m.log.trace_id),
                span_id: SpanId::from_bytes(&m.log.span_id),
            })
            .collect();
        let exemplars = merged
            .exemplars
            .iter()
            .map(|e| RcaExemplar {
                service: e.service_name.clone(),
                metric: e.metric_name.clone(),
                value: e.value,
                time_ns: e.time_unix_nano,
                trace_id: TraceId::from_bytes(&e.trace_id),
                span_id: SpanId::from_bytes(&e.span_id),
            })
            .collect();
        Self { spans, logs, exemplars }
    }
}

/// A decoded OTLP span as an [`RcaSpan`]; `None` without valid IDs.
pub fn rca_span(service: &str, span: &Span) -> Option<RcaSpan> {
    let kind = crate::query::kind_view(span.kind);
    let status_error = span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32);
    let http_5xx = kind == SpanKindView::Server && int_attr(&span.attributes, "http.response.status_code").is_some_and(|c| c >= 500);
    let message = span
        .status
        .as_ref()
        .map(|s| s.message.clone())
        .filter(|m| !m.is_empty())
        .or_else(|| span.events.iter().filter(|e| e.name == "exception").find_map(|e| str_attr(&e.attributes, "exception.message")))
        .unwrap_or_default();
    let peer = matches!(kind, SpanKindView::Client | SpanKindView::Producer)
        .then(|| PEER_ATTRIBUTES.iter().find_map(|key| str_attr(&span.attributes, key)))
        .flatten();
    Some(RcaSpan {
        service: service.to_owned(),
        operation: span.name.clone(),
        kind,
        trace_id: TraceId::from_bytes(&span.trace_id)?,
        span_id: SpanId::from_bytes(&span.span_id)?,
        parent_id: SpanId::from_bytes(&span.parent_span_id),
        start_ns: span.start_time_unix_nano,
        end_ns: span.end_time_unix_nano.max(span.start_time_unix_nano),
        is_error: status_error || http_5xx,
        message,
        peer,
    })
}

fn str_attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Any::StringValue(text) if !text.is_empty() => Some(text.clone()),
        _ => None,
    })
}

fn int_attr(attributes: &[KeyValue], key: &str) -> Option<i64> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Any::IntValue(n) => Some(*n),
        Any::StringValue(text) => text.parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::fixtures::{checkout_session, failed, span, string_attr, with_kind, MS, T0};
    use crate::query::merge;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};

    #[test]
    fn merged_session_converts_once_per_signal() {
        let input = RcaInput::from_merged(&merge(&checkout_session("s")));
        assert_eq!((input.spans.len(), input.logs.len(), input.exemplars.len()), (3, 2, 1));
        let charge = input.spans.iter().find(|s| s.operation == "charge").expect("charge");
        assert_eq!((charge.kind, charge.is_error, charge.message.as_str()), (SpanKindView::Client, true, "card declined"));
        assert_eq!(charge.parent_id, SpanId::from_bytes(&[1; 8]));
        assert!(input.logs.iter().any(|l| l.is_error() && l.body == "payment failed"));
    }

    #[test]
    fn http_5xx_server_spans_fail_and_exception_events_give_the_message() {
        let mut raw = with_kind(span(1, 2, Some(1), "GET /x", T0, T0 + MS), SpanKind::Server);
        raw.attributes.push(KeyValue {
            key: "http.response.status_code".into(),
            value: Some(AnyValue { value: Some(Any::IntValue(503)) }),
            ..Default::default()
        });
        raw.events.push(Event {
            name: "exception".into(),
            attributes: vec![string_attr("exception.message", "pool empty")],
            ..Default::default()
        });
        let s = rca_span("api", &raw).expect("valid");
        assert!(s.is_error);
        assert_eq!(s.message, "pool empty");
    }

    #[test]
    fn peers_come_from_attributes_and_bad_times_are_clamped() {
        let mut raw = with_kind(span(1, 2, Some(1), "SELECT", T0 + 5, T0), SpanKind::Client);
        raw.attributes.push(string_attr("db.system", "postgresql"));
        let s = rca_span("payments", &raw).expect("valid");
        assert_eq!(s.peer.as_deref(), Some("postgresql"));
        assert_eq!(s.duration_ns(), 0);
        let status_only = failed(span(1, 3, None, "r", T0, T0), "");
        assert!(rca_span("a", &status_only).expect("valid").is_error);
        let mut no_ids = span(1, 3, None, "r", T0, T0);
        no_ids.span_id.clear();
        assert!(rca_span("a", &no_ids).is_none());
    }
}
