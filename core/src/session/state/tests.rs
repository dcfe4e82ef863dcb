use super::*;
use crate::model::{CorrelationId, TenantId};
use opentelemetry_proto::tonic::trace::v1::Status;

fn key() -> SessionKey {
    SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted("abc") }
}

fn span(trace: u8, span: u8, parent: u8, error: bool) -> SpanInput {
    let s = Span {
        trace_id: vec![trace; 16],
        span_id: vec![span; 8],
        parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
        name: format!("op{span}"),
        start_time_unix_nano: 1_000 * u64::from(span),
        end_time_unix_nano: 1_000 * u64::from(span) + 500,
        status: error.then(|| Status { code: StatusCode::Error as i32, message: "boom".into() }),
        ..Default::default()
    };
    let encoded = s.encode_to_vec().into_boxed_slice();
    SpanInput::from_span(Arc::from("svc"), &s, encoded).expect("valid ids")
}

fn log(body: &str) -> LogInput {
    let l = LogRecord { time_unix_nano: 42, severity_number: 17, ..Default::default() };
    let mut l = l;
    l.body = Some(opentelemetry_proto::tonic::common::v1::AnyValue {
        value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(body.into())),
    });
    let encoded = l.encode_to_vec().into_boxed_slice();
    LogInput::from_log(Arc::from("svc"), &l, encoded)
}

#[test]
fn redelivered_spans_and_logs_are_stored_once() {
    let mut st = SessionState::new(key(), 0);
    let input =
        SessionInput { wal_key: Some(1), spans: vec![span(1, 1, 0, false), span(1, 2, 1, true)], logs: vec![log("x")], exemplars: vec![] };
    let again = input.clone();
    let first = st.absorb(input, 10);
    assert_eq!(first, Absorbed::default());
    let second = st.absorb(SessionInput { wal_key: Some(2), ..again }, 20);
    assert_eq!(second.duplicates, 3);
    assert_eq!((st.span_count(), st.log_count()), (2, 1));
    assert_eq!(st.summary.spans, 2);
    assert_eq!(st.summary.errors, 2);
    assert_eq!(st.wal_keys, vec![1, 2]);
    assert_eq!(st.last_activity_unix_ms, 20);
    // Held bytes count each kept item once.
    let seg = st.to_segment();
    let expect: u64 = seg.spans.iter().map(|s| s.span.len() as u64 + ITEM_OVERHEAD_BYTES).sum::<u64>()
        + seg.logs.iter().map(|l| l.log.len() as u64 + ITEM_OVERHEAD_BYTES).sum::<u64>();
    assert_eq!(st.held_bytes, expect);
}

#[test]
fn distinct_logs_with_same_service_are_kept() {
    let mut st = SessionState::new(key(), 0);
    st.absorb(SessionInput { logs: vec![log("a"), log("b"), log("a")], ..Default::default() }, 1);
    assert_eq!(st.log_count(), 2);
}

#[test]
fn segment_round_trips_through_storage_form() {
    let mut st = SessionState::new(key(), 0);
    st.absorb(SessionInput { spans: vec![span(3, 1, 0, false)], logs: vec![log("x")], ..Default::default() }, 1);
    let archived = st.to_archived(7, 100, "idle");
    assert_eq!(archived.correlation_id, "abc");
    assert_eq!(st.encode_archived(7, 100, "idle"), archived.encode_to_vec(), "hand encoding equals prost's");
    let wal = WalEntry { spans: archived.spans.clone(), logs: archived.logs.clone(), ..Default::default() };
    let back = SessionInput::from_wal(9, &wal);
    assert_eq!(back.spans.len(), 1);
    assert_eq!(back.spans[0].root_name.as_deref(), Some("op1"));
    assert_eq!(back.logs.len(), 1);
    assert!(back.logs[0].is_error);
}

#[test]
fn merging_segments_keeps_everything_once() {
    let mut a = SessionState::new(key(), 5);
    a.absorb(SessionInput { wal_key: Some(1), spans: vec![span(1, 1, 0, false)], ..Default::default() }, 5);
    let mut b = SessionState::new(key(), 1);
    b.absorb(SessionInput { wal_key: Some(2), spans: vec![span(1, 1, 0, false), span(1, 2, 1, false)], ..Default::default() }, 1);
    let out = a.absorb_segment(b, 9);
    assert_eq!(out.duplicates, 1);
    assert_eq!(a.span_count(), 2);
    assert_eq!(a.wal_keys, vec![1, 2]);
    assert_eq!(a.opened_unix_ms, 1);
}

#[test]
fn a_large_input_splits_into_bounded_parts_keeping_everything() {
    let spans: Vec<SpanInput> = (1..=25).map(|i| span(1, i, 0, false)).collect();
    let logs: Vec<LogInput> = (0..7).map(|i| log(&i.to_string())).collect();
    let input = SessionInput { wal_key: None, spans, logs, exemplars: vec![StoredExemplar::default()] };
    let cost = input.cost_bytes();
    let parts = input.split(10, 3);
    assert_eq!(
        parts.iter().map(|p| (p.spans.len(), p.logs.len(), p.exemplars.len())).collect::<Vec<_>>(),
        vec![(10, 3, 1), (10, 3, 0), (5, 1, 0)]
    );
    assert_eq!(parts.iter().map(SessionInput::cost_bytes).sum::<u64>(), cost, "the reservation splits with the data");
    let ids: Vec<SpanId> = parts.iter().flat_map(|p| p.spans.iter().map(|s| s.span_id)).collect();
    assert_eq!(ids, (1..=25).map(|i| SpanId::from_bytes(&[i; 8]).expect("id")).collect::<Vec<_>>(), "order kept");
}

#[test]
fn an_input_within_bounds_stays_whole() {
    let input = SessionInput { wal_key: Some(4), spans: vec![span(1, 1, 0, false)], ..Default::default() };
    let parts = input.split(1, 1);
    assert_eq!((parts.len(), parts[0].wal_key, parts[0].spans.len()), (1, Some(4), 1));
}
