//! The rewriting of attributes by limiter verdicts, alone and inside
//! prepare, with a fake limiter.

use std::collections::{BTreeMap, BTreeSet};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use parking_lot::Mutex;
use prost::Message;

use super::*;
use crate::correlate::CorrelationSettings;
use crate::ingest::prepare::{prepare_logs, prepare_traces, Signal};
use crate::ingest::AttrLimits;

/// Admits the first `limit` distinct values of each limited key; values of
/// a key in `undecided` must wait.
#[derive(Debug, Default)]
struct FakeLimiter {
    limits: BTreeMap<&'static str, usize>,
    undecided: BTreeSet<&'static str>,
    seen: Mutex<BTreeMap<String, BTreeSet<String>>>,
    asked: Mutex<Vec<(String, String)>>,
}

impl FakeLimiter {
    fn new(limits: &[(&'static str, usize)]) -> Self {
        Self { limits: limits.iter().copied().collect(), ..Self::default() }
    }
}

impl AttributeLimiter for FakeLimiter {
    fn limits(&self, key: &str) -> bool {
        self.limits.contains_key(key)
    }

    fn admit(&self, key: &str, value: &str) -> Verdict {
        self.asked.lock().push((key.to_owned(), value.to_owned()));
        if self.undecided.contains(key) {
            return Verdict::Wait;
        }
        let mut seen = self.seen.lock();
        let values = seen.entry(key.to_owned()).or_default();
        if values.contains(value) || values.len() < self.limits[key] {
            values.insert(value.to_owned());
            Verdict::Keep
        } else {
            Verdict::Overflow
        }
    }
}

fn string(v: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(Value::StringValue(v.to_owned())) })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue { key: key.to_owned(), value, ..Default::default() }
}

fn text_of(kv: &KeyValue) -> Option<&str> {
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

#[test]
fn limit_replaces_values_past_the_limit_with_the_marker() {
    let limiter = FakeLimiter::new(&[("http.route", 2)]);
    let mut attrs: Vec<KeyValue> = ["/a", "/b", "/c", "/a"].iter().map(|r| kv("http.route", string(r))).collect();
    attrs.push(kv("other", string("/z")));
    assert_eq!(limit_attributes(&limiter, &mut attrs), Ok(1));
    let texts: Vec<_> = attrs.iter().filter_map(text_of).collect();
    assert_eq!(texts, ["/a", "/b", OVERFLOW_VALUE, "/a", "/z"]);
    assert!(limiter.asked.lock().iter().all(|(key, _)| key == "http.route"), "unlimited keys are not asked about");
}

#[test]
fn limit_counts_scalars_by_their_text_and_passes_compound_values() {
    let limiter = FakeLimiter::new(&[("code", 1)]);
    let array = AnyValue { value: Some(Value::ArrayValue(Default::default())) };
    let mut attrs = vec![
        kv("code", Some(AnyValue { value: Some(Value::IntValue(200)) })),
        kv("code", Some(AnyValue { value: Some(Value::BoolValue(true)) })),
        kv("code", Some(array.clone())),
        kv("code", None),
    ];
    assert_eq!(limit_attributes(&limiter, &mut attrs), Ok(1));
    assert_eq!(*limiter.asked.lock(), [("code".to_owned(), "200".to_owned()), ("code".to_owned(), "true".to_owned())]);
    assert_eq!(attrs[0].value, Some(AnyValue { value: Some(Value::IntValue(200)) }), "a kept scalar keeps its type");
    assert_eq!(text_of(&attrs[1]), Some(OVERFLOW_VALUE));
    assert_eq!(attrs[2].value, Some(array));
}

#[test]
fn limit_wait_stops_at_the_value_and_names_the_attribute() {
    let mut limiter = FakeLimiter::new(&[("user.id", 10)]);
    limiter.undecided.insert("user.id");
    let mut attrs = vec![kv("user.id", string("u1")), kv("user.id", string("u2"))];
    assert_eq!(limit_attributes(&limiter, &mut attrs), Err(MustWait { attribute: "user.id".to_owned() }));
    assert_eq!(limiter.asked.lock().len(), 1);
    assert_eq!(text_of(&attrs[0]), Some("u1"), "an undecided value is never replaced");
}

fn spans(routes: &[&str]) -> ExportTraceServiceRequest {
    let spans = routes
        .iter()
        .enumerate()
        .map(|(i, route)| Span {
            trace_id: vec![1; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            attributes: vec![kv("http.route", string(route)), kv("correlation_id", string(&format!("order-{i}")))],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", string("web"))], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn encoded_route(signal: &Signal) -> String {
    let Signal::Span(input) = signal else { panic!("a span") };
    let span = Span::decode(&input.encoded[..]).expect("decodes");
    let route = span.attributes.iter().find(|kv| kv.key == "http.route").expect("route kept");
    text_of(route).expect("a string").to_owned()
}

#[test]
fn limit_in_prepare_rewrites_the_encoded_span_but_not_its_session() {
    let limiter = FakeLimiter::new(&[("http.route", 2), ("correlation_id", 1), ("service.name", 1)]);
    let batch =
        prepare_traces(&CorrelationSettings::default(), &AttrLimits::default(), &limiter, spans(&["/a", "/b", "/c"])).expect("decided");
    let routes: Vec<String> = batch.items.iter().map(|p| encoded_route(&p.signal)).collect();
    assert_eq!(routes, ["/a", "/b", OVERFLOW_VALUE]);
    // The correlation ID is read before limits apply: sessions stay apart.
    let candidates: Vec<_> = batch.items.iter().map(|p| p.candidate.as_ref().map(|c| c.raw.clone())).collect();
    assert_eq!(candidates, [Some("order-0".to_owned()), Some("order-1".to_owned()), Some("order-2".to_owned())]);
    // Resource attributes are not limited.
    assert!(limiter.asked.lock().iter().all(|(key, _)| key != "service.name"));
}

#[test]
fn limit_wait_in_prepare_refuses_the_batch_as_overloaded() {
    let mut limiter = FakeLimiter::new(&[("http.route", 2)]);
    limiter.undecided.insert("http.route");
    let refused = prepare_traces(&CorrelationSettings::default(), &AttrLimits::default(), &limiter, spans(&["/a"])).expect_err("must wait");
    assert!(matches!(refused, IngestError::Overloaded { .. }), "{refused:?}");
    assert!(refused.retry_after_secs().is_some());
    // The client's error says why, naming the attribute.
    assert_eq!(refused.to_string(), "no cardinality-limit quota for a new `http.route` value yet; retry in 1000 ms");
}

#[test]
fn limit_applies_to_log_record_attributes() {
    let limiter = FakeLimiter::new(&[("user.id", 1)]);
    let logs = (0..3).map(|i| LogRecord { attributes: vec![kv("user.id", string(&format!("u{i}")))], ..Default::default() }).collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs { scope_logs: vec![ScopeLogs { log_records: logs, ..Default::default() }], ..Default::default() }],
    };
    let batch = prepare_logs(&CorrelationSettings::default(), &AttrLimits::default(), &limiter, request).expect("decided");
    let users: Vec<String> = batch
        .items
        .iter()
        .map(|p| {
            let Signal::Log(input) = &p.signal else { panic!("a log") };
            let log = LogRecord::decode(&input.encoded[..]).expect("decodes");
            text_of(&log.attributes[0]).expect("a string").to_owned()
        })
        .collect();
    assert_eq!(users, ["u0", OVERFLOW_VALUE, OVERFLOW_VALUE]);
}
