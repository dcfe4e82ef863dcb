//! Hand-built sessions for query and API tests (test builds only).

use ollystack_proto::store::{Label, StoredExemplar, StoredLog, StoredSpan};
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span, Status};
use prost::Message;

use super::{Segment, SessionData};
use crate::model::CorrelationId;

/// 2023-11-14T22:13:20Z in Unix nanoseconds.
pub const T0: u64 = 1_700_000_000_000_000_000;
/// One millisecond in nanoseconds.
pub const MS: u64 = 1_000_000;

/// A trace ID made of one repeated byte.
pub fn trace_bytes(n: u8) -> Vec<u8> {
    vec![n; 16]
}

/// A span ID made of one repeated byte.
pub fn span_bytes(n: u8) -> Vec<u8> {
    vec![n; 8]
}

pub fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start_ns: u64, end_ns: u64) -> Span {
    Span {
        trace_id: trace_bytes(trace),
        span_id: span_bytes(id),
        parent_span_id: parent.map(span_bytes).unwrap_or_default(),
        name: name.to_owned(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: end_ns,
        ..Default::default()
    }
}

/// `span` with status ERROR and a message.
pub fn failed(mut span: Span, message: &str) -> Span {
    span.status = Some(Status { message: message.to_owned(), code: StatusCode::Error as i32 });
    span
}

pub fn with_kind(mut span: Span, kind: SpanKind) -> Span {
    span.kind = kind as i32;
    span
}

pub fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(Any::StringValue(value.to_owned())) }), ..Default::default() }
}

pub fn stored_span(service: &str, span: &Span) -> StoredSpan {
    StoredSpan { service_name: service.to_owned(), span: span.encode_to_vec() }
}

pub fn log(trace: u8, span: u8, time_ns: u64, severity_number: i32, body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: time_ns,
        severity_number,
        body: Some(AnyValue { value: Some(Any::StringValue(body.to_owned())) }),
        trace_id: trace_bytes(trace),
        span_id: span_bytes(span),
        ..Default::default()
    }
}

pub fn stored_log(service: &str, log: &LogRecord) -> StoredLog {
    StoredLog { service_name: service.to_owned(), log: log.encode_to_vec() }
}

pub fn exemplar(service: &str, metric: &str, time_ns: u64, value: f64, trace: u8, span: u8) -> StoredExemplar {
    StoredExemplar {
        service_name: service.to_owned(),
        metric_name: metric.to_owned(),
        time_unix_nano: time_ns,
        value,
        trace_id: trace_bytes(trace),
        span_id: span_bytes(span),
        labels: vec![Label { key: "route".into(), value: "/checkout".into() }],
    }
}

pub fn session(id: &str, segments: Vec<Segment>) -> SessionData {
    SessionData { id: CorrelationId::from_trusted(id), segments, partial: None, aliases: Vec::new() }
}

/// A checkout flow over three services in two segments: the archived one
/// (listed first) holds the payments span, an info log and a stale copy of
/// the `charge` span; the live one holds the root, the current `charge`
/// (failed), an error log and an exemplar.
///
/// Expected: 3 spans, 2 logs, 1 metric, 2 errors, services
/// checkout/frontend/payments, range T0 .. T0+100ms, live.
pub fn checkout_session(id: &str) -> SessionData {
    let root = with_kind(span(1, 1, None, "GET /checkout", T0, T0 + 100 * MS), SpanKind::Server);
    let mut root = root;
    root.attributes.push(string_attr("http.route", "/checkout"));
    let charge = failed(with_kind(span(1, 2, Some(1), "charge", T0 + 10 * MS, T0 + 60 * MS), SpanKind::Client), "card declined");
    let stale_charge = span(1, 2, Some(1), "charge (stale)", T0 + 10 * MS, T0 + 40 * MS);
    let pay = with_kind(span(1, 3, Some(2), "POST /pay", T0 + 20 * MS, T0 + 50 * MS), SpanKind::Server);
    let archived = Segment {
        live: false,
        spans: vec![stored_span("payments", &pay), stored_span("checkout", &stale_charge)],
        logs: vec![stored_log("frontend", &log(1, 1, T0 + 5 * MS, 9, "request received"))],
        exemplars: vec![],
    };
    let live = Segment {
        live: true,
        spans: vec![stored_span("frontend", &root), stored_span("checkout", &charge)],
        logs: vec![stored_log("payments", &log(1, 3, T0 + 30 * MS, 17, "payment failed"))],
        exemplars: vec![exemplar("frontend", "http.server.duration", T0 + 100 * MS, 0.1, 1, 1)],
    };
    session(id, vec![archived, live])
}
