//! Tests of the precedence of ID sources.

use super::super::attr::test_util::*;
use super::*;
use proptest::prelude::*;

fn settings() -> CorrelationSettings {
    CorrelationSettings::default()
}

fn found(raw: &str, source: IdSource) -> Option<Candidate> {
    Some(Candidate { raw: raw.to_owned(), source })
}

/// Attributes carrying every source at once, each with a distinct value.
fn everything() -> (Vec<KeyValue>, Vec<KeyValue>) {
    let resource = vec![kvs("correlation_id", "res"), kvs("baggage", "correlation_id=bag-res")];
    let signal = vec![
        kvs("baggage", "correlation_id=bag-sig"),
        kvs("http.request.header.x-request-id", "hdr-2"),
        kv("http.request.header.x-correlation-id", arr(&["", "hdr-1"])),
        kvs("correlation_id", "sig"),
    ];
    (resource, signal)
}

#[test]
fn precedence_is_resource_signal_header_baggage() {
    let s = settings();
    let (mut resource, mut signal) = everything();
    assert_eq!(span_candidate(&s, &resource, &signal), found("res", IdSource::ResourceAttribute));
    resource.remove(0);
    assert_eq!(span_candidate(&s, &resource, &signal), found("sig", IdSource::SpanAttribute));
    signal.pop();
    assert_eq!(span_candidate(&s, &resource, &signal), found("hdr-1", IdSource::Header));
    signal.pop();
    assert_eq!(span_candidate(&s, &resource, &signal), found("hdr-2", IdSource::Header));
    signal.pop();
    assert_eq!(span_candidate(&s, &resource, &signal), found("bag-sig", IdSource::Baggage));
    signal.pop();
    assert_eq!(span_candidate(&s, &resource, &signal), found("bag-res", IdSource::Baggage));
    assert_eq!(span_candidate(&s, &[], &[]), None);
}

#[test]
fn empty_and_non_scalar_values_do_not_count() {
    let s = settings();
    let resource = vec![kvs("correlation_id", "")];
    let signal = vec![kv("correlation_id", arr(&["x"])), kvs("http.request.header.x-correlation-id", "h")];
    assert_eq!(span_candidate(&s, &resource, &signal), found("h", IdSource::Header));
}

#[test]
fn numeric_attributes_count() {
    let signal = vec![kv("correlation_id", i(12345))];
    assert_eq!(span_candidate(&settings(), &[], &signal), found("12345", IdSource::SpanAttribute));
}

#[test]
fn the_attribute_name_is_configurable() {
    let s = CorrelationSettings { attribute: "session.id".into(), ..settings() };
    let signal = vec![kvs("correlation_id", "old"), kvs("session.id", "new")];
    assert_eq!(span_candidate(&s, &[], &signal), found("new", IdSource::SpanAttribute));
}

#[test]
fn exemplars_use_the_same_precedence() {
    let s = settings();
    let (resource, signal) = everything();
    assert_eq!(exemplar_candidate(&s, &resource, &signal), found("res", IdSource::ResourceAttribute));
    assert_eq!(exemplar_candidate(&s, &[], &signal), found("sig", IdSource::SpanAttribute));
}

#[test]
fn logs_fall_back_to_a_json_body() {
    let s = settings();
    let body = s_body(r#"{"msg":"hi","requestId":"r-1","correlationId":"c-1"}"#);
    assert_eq!(log_candidate(&s, &[], &[], Some(&body)), found("c-1", IdSource::LogBody));
    let numeric = s_body(r#" {"request_id": 42}"#);
    assert_eq!(log_candidate(&s, &[], &[], Some(&numeric)), found("42", IdSource::LogBody));
    let signal = vec![kvs("correlation_id", "attr")];
    assert_eq!(log_candidate(&s, &[], &signal, Some(&body)), found("attr", IdSource::SpanAttribute));
}

#[test]
fn log_bodies_that_are_not_objects_are_ignored() {
    let s = settings();
    for text in [r#"correlation_id=abc"#, r#"["correlation_id"]"#, r#"{"correlation_id": "#, r#"{"correlation_id": ""}"#] {
        assert_eq!(log_candidate(&s, &[], &[], Some(&s_body(text))), None, "{text}");
    }
    let nested = s_body(r#"{"correlation_id": {"x": 1}, "requestId": "r"}"#);
    assert_eq!(log_candidate(&s, &[], &[], Some(&nested)), found("r", IdSource::LogBody));
    assert_eq!(log_candidate(&s, &[], &[], Some(&i(5))), None);
    assert_eq!(log_candidate(&s, &[], &[], None), None);
}

#[test]
fn huge_json_bodies_are_not_parsed() {
    let mut text = r#"{"correlation_id":"c","pad":""#.to_owned();
    text.push_str(&"x".repeat(JSON_BODY_BYTES_MAX));
    text.push_str(r#""}"#);
    assert_eq!(log_candidate(&settings(), &[], &[], Some(&s_body(&text))), None);
}

#[test]
fn logs_read_kvlist_bodies() {
    let body = kvlist(vec![kvs("level", "info"), kv("request_id", i(7)), kvs("correlationId", "")]);
    assert_eq!(log_candidate(&settings(), &[], &[], Some(&body)), found("7", IdSource::LogBody));
}

fn s_body(text: &str) -> AnyValue {
    s(text)
}

proptest! {
    #[test]
    fn extraction_never_panics(
        keys in proptest::collection::vec("(correlation_id|baggage|http\\.request\\.header\\.x-request-id|k)", 0..6),
        values in proptest::collection::vec(".{0,40}", 6),
        body in ".{0,80}",
    ) {
        let s = settings();
        let attrs: Vec<KeyValue> = keys.iter().zip(&values).map(|(k, v)| kvs(k, v)).collect();
        if let Some(c) = log_candidate(&s, &attrs, &attrs, Some(&s_body(&body))) {
            prop_assert!(!c.raw.is_empty());
            prop_assert!(c.source.is_explicit());
        }
    }
}
