//! Tests of `correlate`, `trace_view` and `exemplars_view` on hand-built
//! sessions.

use super::super::fixtures::*;
use super::super::{ExemplarHit, Segment};
use super::*;
use crate::model::CorrelationId;

#[test]
fn checkout_session_is_merged_summarized_and_ordered() {
    let resp = correlate(&checkout_session("order-42"));
    assert_eq!(resp.correlation_id.as_str(), "order-42");
    assert!(resp.live);
    let s = &resp.summary;
    assert_eq!((s.total_spans, s.total_logs, s.total_metrics), (3, 2, 1));
    assert_eq!((s.error_count, s.service_count, s.duration_ms), (2, 3, 100.0));
    assert_eq!(
        resp.time_range,
        Some(TimeRange { start: "2023-11-14T22:13:20.000000000Z".into(), end: "2023-11-14T22:13:20.100000000Z".into() })
    );
    assert_eq!(resp.services, ["checkout", "frontend", "payments"]);
    let names: Vec<&str> = resp.traces.iter().map(|t| t.span_name.as_str()).collect();
    assert_eq!(names, ["GET /checkout", "charge", "POST /pay"], "live copy of charge kept, spans by start");
    let bodies: Vec<&str> = resp.logs.iter().map(|l| l.body.as_str()).collect();
    assert_eq!(bodies, ["request received", "payment failed"]);
    assert_eq!(resp.metrics[0].metric_name, "http.server.duration");
    assert_eq!(resp.skipped_records, 0);
}

#[test]
fn errors_come_from_failed_spans_and_error_logs() {
    let resp = correlate(&checkout_session("order-42"));
    let errors: Vec<(SignalKind, &str, &str)> = resp.errors.iter().map(|e| (e.kind, e.service.as_str(), e.message.as_str())).collect();
    assert_eq!(errors, [(SignalKind::Span, "checkout", "card declined"), (SignalKind::Log, "payments", "payment failed")]);
    assert_eq!(resp.errors[0].span_id, "0202020202020202");
    assert_eq!(resp.errors[1].trace_id, "01".repeat(16));
}

#[test]
fn timeline_interleaves_all_signals_by_time() {
    let resp = correlate(&checkout_session("order-42"));
    let got: Vec<(SignalKind, &str)> = resp.timeline.iter().map(|e| (e.kind, e.description.as_str())).collect();
    assert_eq!(
        got,
        [
            (SignalKind::Span, "GET /checkout"),
            (SignalKind::Log, "request received"),
            (SignalKind::Span, "charge"),
            (SignalKind::Span, "POST /pay"),
            (SignalKind::Log, "payment failed"),
            (SignalKind::Metric, "http.server.duration = 0.1"),
        ]
    );
    let stamps: Vec<&str> = resp.timeline.iter().map(|e| e.timestamp.as_str()).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn failed_span_without_message_reports_its_name() {
    let bare = failed(span(1, 1, None, "work", T0, T0 + MS), "");
    let data = session("s", vec![Segment { live: false, spans: vec![stored_span("a", &bare)], ..Default::default() }]);
    let resp = correlate(&data);
    assert_eq!(resp.errors[0].message, "work");
    assert!(!resp.live);
}

#[test]
fn empty_session_has_no_time_range() {
    let resp = correlate(&session("empty", vec![]));
    assert_eq!(resp.time_range, None);
    assert_eq!((resp.summary.total_spans, resp.summary.duration_ms), (0, 0.0));
    assert!(resp.timeline.is_empty() && resp.services.is_empty());
}

#[test]
fn unset_log_times_do_not_stretch_the_range() {
    let timeless = log(1, 1, 0, 9, "no time");
    let data = session(
        "s",
        vec![Segment {
            live: false,
            spans: vec![stored_span("a", &span(1, 1, None, "r", T0, T0 + 2 * MS))],
            logs: vec![stored_log("a", &timeless)],
            exemplars: vec![],
        }],
    );
    let resp = correlate(&data);
    assert_eq!(resp.summary.duration_ms, 2.0);
    assert_eq!(resp.logs[0].timestamp, "1970-01-01T00:00:00.000000000Z");
}

#[test]
fn trace_view_keeps_one_trace() {
    let mut data = checkout_session("order-42");
    let other = stored_span("frontend", &span(9, 1, None, "other trace", T0, T0 + MS));
    data.segments[0].spans.push(other);
    let trace = TraceId::from_bytes(&trace_bytes(1)).expect("valid trace id");
    let resp = trace_view(trace, &data);
    assert_eq!(resp.correlation_id.as_str(), "order-42");
    assert_eq!(resp.trace_id, "01".repeat(16));
    assert!(resp.live);
    let names: Vec<&str> = resp.spans.iter().map(|s| s.span_name.as_str()).collect();
    assert_eq!(names, ["GET /checkout", "charge", "POST /pay"]);
}

#[test]
fn exemplar_hits_keep_their_session() {
    let hits = vec![ExemplarHit {
        correlation_id: CorrelationId::from_trusted("order-42"),
        exemplar: exemplar("frontend", "latency", T0, 0.5, 1, 1),
    }];
    let resp = exemplars_view("latency", &hits);
    let json = serde_json::to_value(&resp).expect("serializes");
    assert_eq!(json["metric_name"], "latency");
    assert_eq!(json["exemplars"][0]["correlation_id"], "order-42");
    assert_eq!(json["exemplars"][0]["value"], 0.5);
    assert_eq!(json["exemplars"][0]["labels"]["route"], "/checkout");
}

#[test]
fn a_whole_page_counts_each_record_once() {
    // The checkout session holds one span twice (live and archived).
    let data = checkout_session("order-42");
    let paged = crate::query::page_session(data, crate::query::Page::first(100));
    assert!(paged.total.spans > 3, "the raw count sees the copy");
    let answer = correlate_page(&paged, |o| format!("?offset={o}"));
    let page = answer.page.expect("page");
    assert_eq!((answer.truncated, page.session_spans, page.next), (Some(false), 3, None));
}

#[test]
fn a_truncated_page_counts_the_whole_session() {
    let paged = crate::query::page_session(checkout_session("order-42"), crate::query::Page::first(1));
    let answer = correlate_page(&paged, |o| format!("?offset={o}"));
    let page = answer.page.expect("page");
    assert_eq!((answer.truncated, answer.traces.len()), (Some(true), 1));
    assert_eq!(
        (answer.summary.total_spans, page.session_spans, page.next.as_deref()),
        (paged.total.spans, paged.total.spans, Some("?offset=1"))
    );
}
