//! One decoded signal as its view (span, log record, exemplar), paired with
//! the event time answers are ordered by.

use ollystack_proto::store::StoredExemplar;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};

use super::attrs::{attributes_json, body_text};
use super::merge::{MergedLog, MergedSpan};
use super::time::format_rfc3339_nanos;
use super::view::{LogView, MetricView, SpanKindView, SpanView, StatusView};

/// Lowest OTLP severity number of the ERROR range (ERROR..FATAL4 = 17..=24).
pub const SEVERITY_ERROR_MIN: i32 = 17;

/// A view and the event time (Unix ns) it is ordered by.
#[derive(Debug, Clone)]
pub struct Timed<T> {
    pub unix_nano: u64,
    pub view: T,
}

/// Sorts by event time; equal times keep their input order.
pub fn sort_by_time<T>(items: &mut [Timed<T>]) {
    items.sort_by_key(|item| item.unix_nano);
}

pub fn span_view(merged: &MergedSpan) -> Timed<SpanView> {
    let span = &merged.span;
    let status = span.status.as_ref();
    let view = SpanView {
        timestamp: format_rfc3339_nanos(span.start_time_unix_nano),
        trace_id: hex::encode(&span.trace_id),
        span_id: hex::encode(&span.span_id),
        parent_span_id: hex::encode(&span.parent_span_id),
        span_name: span.name.clone(),
        span_kind: kind_view(span.kind),
        service_name: merged.service_name.clone(),
        duration_ns: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano),
        status_code: status.map_or(StatusView::Unset, |s| status_view(s.code)),
        status_message: status.map(|s| s.message.clone()).unwrap_or_default(),
        attributes: attributes_json(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
    };
    Timed { unix_nano: span.start_time_unix_nano, view }
}

pub fn log_view(merged: &MergedLog) -> Timed<LogView> {
    let log = &merged.log;
    let unix_nano = log_time(log.time_unix_nano, log.observed_time_unix_nano);
    let view = LogView {
        timestamp: format_rfc3339_nanos(unix_nano),
        trace_id: hex::encode(&log.trace_id),
        span_id: hex::encode(&log.span_id),
        severity_text: log.severity_text.clone(),
        severity_number: log.severity_number,
        service_name: merged.service_name.clone(),
        body: body_text(log.body.as_ref()),
        attributes: attributes_json(&log.attributes),
        dropped_attributes_count: log.dropped_attributes_count,
    };
    Timed { unix_nano, view }
}

pub fn metric_view(exemplar: &StoredExemplar) -> Timed<MetricView> {
    let view = MetricView {
        timestamp: format_rfc3339_nanos(exemplar.time_unix_nano),
        metric_name: exemplar.metric_name.clone(),
        value: exemplar.value,
        trace_id: hex::encode(&exemplar.trace_id),
        span_id: hex::encode(&exemplar.span_id),
        service_name: exemplar.service_name.clone(),
        labels: exemplar.labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect(),
    };
    Timed { unix_nano: exemplar.time_unix_nano, view }
}

/// Event time of a log: its time, else when it was observed (OTLP says
/// either may be unset).
pub fn log_time(time_unix_nano: u64, observed_time_unix_nano: u64) -> u64 {
    if time_unix_nano != 0 {
        time_unix_nano
    } else {
        observed_time_unix_nano
    }
}

pub fn is_error_log(log: &LogView) -> bool {
    log.severity_number >= SEVERITY_ERROR_MIN
}

/// Lowercase level of a log: its severity text, else the OTLP range its
/// number falls in; `None` when both are unset.
pub fn log_level(log: &LogView) -> Option<String> {
    if !log.severity_text.is_empty() {
        return Some(log.severity_text.to_lowercase());
    }
    let level = match log.severity_number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    };
    Some(level.to_owned())
}

/// An OTLP span kind as the API names it.
pub fn kind_view(kind: i32) -> SpanKindView {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Internal) => SpanKindView::Internal,
        Ok(SpanKind::Server) => SpanKindView::Server,
        Ok(SpanKind::Client) => SpanKindView::Client,
        Ok(SpanKind::Producer) => SpanKindView::Producer,
        Ok(SpanKind::Consumer) => SpanKindView::Consumer,
        Ok(SpanKind::Unspecified) | Err(_) => SpanKindView::Unspecified,
    }
}

/// An OTLP status code as the API names it.
pub fn status_view(code: i32) -> StatusView {
    match StatusCode::try_from(code) {
        Ok(StatusCode::Ok) => StatusView::Ok,
        Ok(StatusCode::Error) => StatusView::Error,
        Ok(StatusCode::Unset) | Err(_) => StatusView::Unset,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use serde_json::json;

    #[test]
    fn span_fields_are_rendered() {
        let raw = failed(with_kind(span(1, 2, Some(1), "charge", T0, T0 + 5 * MS), SpanKind::Client), "declined");
        let timed = span_view(&MergedSpan { service_name: "checkout".into(), span: raw });
        let v = timed.view;
        assert_eq!(timed.unix_nano, T0);
        assert_eq!(v.timestamp, "2023-11-14T22:13:20.000000000Z");
        assert_eq!(v.trace_id, "01".repeat(16));
        assert_eq!((v.span_id.as_str(), v.parent_span_id.as_str()), ("0202020202020202", "0101010101010101"));
        assert_eq!((v.span_kind, v.status_code, v.duration_ns), (SpanKindView::Client, StatusView::Error, 5 * MS));
        assert_eq!(v.status_message, "declined");
        let json = serde_json::to_value(&v).expect("serializes");
        assert_eq!((json["span_kind"].clone(), json["status_code"].clone()), (json!("client"), json!("error")));
    }

    #[test]
    fn root_span_has_empty_parent_and_unknown_enums_fall_back() {
        let mut raw = span(1, 1, None, "root", T0, T0 - 1);
        raw.kind = 42;
        let v = span_view(&MergedSpan { service_name: "a".into(), span: raw }).view;
        assert_eq!(v.parent_span_id, "");
        assert_eq!((v.span_kind, v.status_code, v.duration_ns), (SpanKindView::Unspecified, StatusView::Unset, 0));
    }

    #[test]
    fn log_time_falls_back_to_observed_and_level_to_number() {
        let raw = LogRecord { observed_time_unix_nano: T0 + 7, severity_number: 18, ..log(1, 1, 0, 18, "boom") };
        let timed = log_view(&MergedLog { service_name: "a".into(), log: raw });
        assert_eq!(timed.unix_nano, T0 + 7);
        assert_eq!(log_level(&timed.view).as_deref(), Some("error"));
        assert!(is_error_log(&timed.view));
        let texted = LogView { severity_text: "WARN".into(), ..timed.view.clone() };
        assert_eq!(log_level(&texted).as_deref(), Some("warn"));
        let unset = LogView { severity_number: 0, ..timed.view };
        assert_eq!(log_level(&unset), None);
    }

    #[test]
    fn exemplar_labels_become_an_object() {
        let v = metric_view(&exemplar("frontend", "latency", T0, 0.25, 1, 1)).view;
        assert_eq!(v.labels.get("route").map(String::as_str), Some("/checkout"));
        assert_eq!(v.value, 0.25);
    }
}
