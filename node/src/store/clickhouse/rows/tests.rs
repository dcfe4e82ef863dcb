use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue};
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Status;

use super::*;
use crate::model::{CorrelationId, SessionKey, TenantId};
use crate::session::{SessionInput, SessionState, SpanInput};

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn span() -> Span {
    Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        parent_span_id: vec![],
        name: "GET /checkout".into(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 4_500,
        attributes: vec![kv("http.status", Any::IntValue(500)), kv("user", Any::StringValue("u1".into())), kv("ok", Any::BoolValue(false))],
        events: vec![Event {
            time_unix_nano: 2_000,
            name: "retry".into(),
            attributes: vec![kv("n", Any::IntValue(2))],
            ..Default::default()
        }],
        status: Some(Status { code: StatusCode::Error as i32, message: "boom".into() }),
        ..Default::default()
    }
}

#[test]
fn span_renders_as_the_exporter_does() {
    let stored = StoredSpan { service_name: "checkout".into(), span: span().encode_to_vec() };
    let row = trace_row(&stored, "t1", "order-1").expect("decodes");
    assert_eq!(row.trace_id, "ab".repeat(16));
    assert_eq!(row.span_id, "0101010101010101");
    assert_eq!(row.parent_span_id, "");
    assert_eq!(row.span_kind, "Server");
    assert_eq!(row.status_code, "Error");
    assert_eq!(row.status_message, "boom");
    assert_eq!(row.duration, 3_500);
    assert_eq!(row.timestamp, 1_000);
    assert_eq!(row.service_name, "checkout");
    assert_eq!(row.resource_attributes, vec![("service.name".to_owned(), "checkout".to_owned())]);
    assert_eq!(
        row.span_attributes,
        vec![("http.status".into(), "500".into()), ("user".into(), "u1".into()), ("ok".into(), "false".into())]
    );
    assert_eq!(row.events_name, vec!["retry".to_owned()]);
    assert_eq!(row.events_timestamp, vec![2_000]);
    assert_eq!(row.events_attributes, vec![vec![("n".to_owned(), "2".to_owned())]]);
    assert_eq!((row.correlation_id.as_str(), row.tenant_id.as_str()), ("order-1", "t1"));
}

#[test]
fn garbage_records_are_skipped_not_fatal() {
    assert!(trace_row(&StoredSpan { service_name: "s".into(), span: vec![0xff, 0xff, 0xff] }, "t", "i").is_none());
    assert!(log_row(&StoredLog { service_name: "s".into(), log: vec![0xff, 0xff, 0xff] }, "t", "i").is_none());
}

#[test]
fn log_falls_back_to_observed_time() {
    let log = LogRecord {
        observed_time_unix_nano: 77,
        severity_text: "ERROR".into(),
        severity_number: 17,
        body: Some(AnyValue { value: Some(Any::StringValue("card declined".into())) }),
        trace_id: vec![1; 16],
        flags: 0x101,
        ..Default::default()
    };
    let row = log_row(&StoredLog { service_name: "payments".into(), log: log.encode_to_vec() }, "t", "i").expect("decodes");
    assert_eq!(row.timestamp, 77);
    assert_eq!(row.trace_flags, 1);
    assert_eq!((row.severity_text.as_str(), row.severity_number), ("ERROR", 17));
    assert_eq!(row.body, "card declined");
    assert_eq!(row.span_id, "");
}

#[test]
fn a_segment_yields_its_session_row_and_signal_rows() {
    let key = SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted("order-1") };
    let mut st = SessionState::new(key, 10);
    let s = span();
    let input = SpanInput::from_span("checkout".into(), &s, s.encode_to_vec().into_boxed_slice()).expect("ids");
    st.absorb(SessionInput { wal_key: Some(3), spans: vec![input], ..Default::default() }, 20);
    let seg = st.to_finished(42, 5_000, "idle");
    assert_eq!(row_count(&seg), 2);
    let mut rows = Rows::default();
    assert_eq!(rows.add_segment("node-a", &seg), 0);
    assert_eq!((rows.traces.len(), rows.logs.len(), rows.sessions.len()), (1, 0, 1));
    let session = &rows.sessions[0];
    assert_eq!(session.correlation_id, "order-1");
    assert_eq!((session.node_id.as_str(), session.segment_seq), ("node-a", 42));
    assert_eq!((session.first_seen, session.last_seen, session.finished_at, session.last_activity), (1_000, 4_500, 5_000, 20));
    assert_eq!(session.services, vec!["checkout".to_owned()]);
    assert_eq!((session.span_count, session.error_count), (1, 1));
    assert_eq!((session.root_span.as_str(), session.root_failed), ("GET /checkout", true));
    assert_eq!(session.payload, seg.encoded);
    let summary: crate::session::Summary = serde_json::from_str(&session.summary).expect("summary json");
    assert_eq!(summary, seg.summary);
}
