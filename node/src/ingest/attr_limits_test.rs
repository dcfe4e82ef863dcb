//! The attribute limits on whole spans, log records and resources: counts,
//! cuts at UTF-8 boundaries, nested values, and the `dropped_*` fields.

use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::Status;
use proptest::prelude::*;

use super::*;

fn any(value: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

fn string(text: &str) -> Option<AnyValue> {
    any(Value::StringValue(text.to_owned()))
}

fn int(i: i64) -> AnyValue {
    AnyValue { value: Some(Value::IntValue(i)) }
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue { key: key.to_owned(), value, ..Default::default() }
}

fn array(values: Vec<AnyValue>) -> AnyValue {
    AnyValue { value: Some(Value::ArrayValue(ArrayValue { values })) }
}

fn map(values: Vec<KeyValue>) -> AnyValue {
    AnyValue { value: Some(Value::KvlistValue(KeyValueList { values })) }
}

fn numbered(n: usize) -> Vec<KeyValue> {
    (0..n).map(|i| kv(&format!("attr.{i}"), string("v"))).collect()
}

fn small() -> AttrLimits {
    AttrLimits {
        attribute_count_limit: 4,
        attribute_value_length_limit: 5,
        attribute_value_depth_limit: 2,
        attribute_value_element_limit: 6,
        span_event_count_limit: 2,
        span_link_count_limit: 3,
        log_body_length_limit: 8,
    }
}

fn text_of(value: &Option<AnyValue>) -> &str {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s,
        other => panic!("not a string: {other:?}"),
    }
}

#[test]
fn defaults_follow_the_spec_where_it_has_one() {
    let d = AttrLimits::default();
    assert_eq!((d.attribute_count_limit, d.span_event_count_limit, d.span_link_count_limit), (128, 128, 128));
    assert_eq!(d.attribute_value_length_limit, 65_536);
}

#[test]
fn a_span_within_the_limits_is_left_as_it_is() {
    let mut span = Span { name: "GET /".into(), attributes: numbered(4), ..Default::default() };
    let before = span.clone();
    assert!(limit_span(&small(), &mut span).is_empty());
    assert_eq!(span, before);
}

#[test]
fn a_hundred_thousand_attributes_keep_the_first_128_and_say_so() {
    let mut span = Span { attributes: numbered(100_000), dropped_attributes_count: 3, ..Default::default() };
    let t = limit_span(&AttrLimits::default(), &mut span);
    assert_eq!(span.attributes.len(), 128);
    assert_eq!(span.attributes[127].key, "attr.127");
    // The sender's own count is kept and ours added to it.
    assert_eq!(span.dropped_attributes_count, 3 + 99_872);
    assert_eq!(t, Trimmed { attributes_dropped: 99_872, ..Trimmed::default() });
}

#[test]
fn strings_are_cut_to_characters_at_utf8_boundaries() {
    let limits = AttrLimits { attribute_count_limit: 10, ..small() }; // 5 characters
    let mut span = Span {
        attributes: vec![
            kv("ascii", string("abcdefgh")),
            kv("two_byte", string("ééééééé")),
            kv("four_byte", string("😀😀😀😀😀😀")),
            kv("mixed", string("aé😀bcd")),
            kv("exact", string("ééééé")),
        ],
        ..Default::default()
    };
    let t = limit_span(&limits, &mut span);
    let texts: Vec<&str> = span.attributes.iter().map(|kv| text_of(&kv.value)).collect();
    assert_eq!(texts, ["abcde", "ééééé", "😀😀😀😀😀", "aé😀bc", "ééééé"]);
    assert_eq!(t.values_truncated, 4, "five characters in ten bytes is within the limit");
}

#[test]
fn bytes_are_cut_to_bytes_and_scalars_never() {
    let mut span = Span {
        attributes: vec![
            kv("bytes", any(Value::BytesValue(vec![7; 100]))),
            kv("int", Some(int(i64::MAX))),
            kv("double", any(Value::DoubleValue(1.0e300))),
            kv("bool", any(Value::BoolValue(true))),
        ],
        ..Default::default()
    };
    let t = limit_span(&small(), &mut span);
    assert_eq!(span.attributes[0].value, any(Value::BytesValue(vec![7; 5])));
    assert_eq!(span.attributes[1].value, Some(int(i64::MAX)));
    assert_eq!(t.values_truncated, 1);
}

#[test]
fn each_string_of_an_array_and_each_map_value_is_cut() {
    let nested = map(vec![kv("inner", string("0123456789")), kv("n", Some(int(1)))]);
    let mut span = Span {
        attributes: vec![
            kv("list", Some(array(vec![AnyValue { value: Some(Value::StringValue("0123456789".into())) }, int(2)]))),
            kv("map", Some(nested)),
        ],
        ..Default::default()
    };
    let t = limit_span(&small(), &mut span);
    let list = Some(array(vec![AnyValue { value: Some(Value::StringValue("01234".into())) }, int(2)]));
    assert_eq!(span.attributes[0].value, list);
    assert_eq!(span.attributes[1].value, Some(map(vec![kv("inner", string("01234")), kv("n", Some(int(1)))])));
    assert_eq!(t.values_truncated, 2);
    // The count limit is for top-level attributes only.
    assert_eq!(span.dropped_attributes_count, 0);
}

#[test]
fn nesting_past_the_depth_limit_becomes_an_empty_value() {
    // Depth limit 2: the attribute's array (1) may hold an array (2), whose
    // array (3) is emptied; scalars at depth 3 stay.
    let deep = array(vec![array(vec![int(1), array(vec![int(2)])])]);
    let mut span = Span { attributes: vec![kv("deep", Some(deep))], ..Default::default() };
    let t = limit_span(&small(), &mut span);
    let expected = array(vec![array(vec![int(1), AnyValue { value: None }])]);
    assert_eq!(span.attributes[0].value, Some(expected));
    assert_eq!(t.values_truncated, 1);
}

#[test]
fn a_value_keeps_at_most_the_element_limit_over_all_its_levels() {
    // Limit 6: the outer array's 3 elements, then 3 of the first inner
    // array's 5; the second inner array has none left.
    let inner = || array((0..5).map(int).collect());
    let mut span = Span { attributes: vec![kv("a", Some(array(vec![inner(), inner(), int(9)])))], ..Default::default() };
    let t = limit_span(&small(), &mut span);
    let expected = array(vec![array((0..3).map(int).collect()), array(vec![]), int(9)]);
    assert_eq!(span.attributes[0].value, Some(expected));
    assert_eq!(t.values_truncated, 2);

    let mut huge = Span { attributes: vec![kv("big", Some(array((0..1_000_000).map(int).collect())))], ..Default::default() };
    limit_span(&AttrLimits::default(), &mut huge);
    let Some(Value::ArrayValue(kept)) = huge.attributes[0].value.as_ref().and_then(|v| v.value.as_ref()) else { panic!("array") };
    assert_eq!(kept.values.len(), 1024);
}

#[test]
fn the_element_limit_is_per_value_not_per_record() {
    let six = || Some(array((0..6).map(int).collect()));
    let mut span = Span { attributes: vec![kv("a", six()), kv("b", six())], ..Default::default() };
    assert!(limit_span(&small(), &mut span).is_empty());
}

#[test]
fn over_long_keys_are_dropped_at_the_top_and_inside_maps() {
    let long = "k".repeat(KEY_BYTES_MAX + 1);
    let inside = map(vec![kv(&long, string("x")), kv("ok", string("y"))]);
    let mut span = Span { attributes: vec![kv(&long, string("x")), kv("m", Some(inside))], ..Default::default() };
    let t = limit_span(&small(), &mut span);
    assert_eq!(span.attributes.len(), 1);
    assert_eq!(span.attributes[0].value, Some(map(vec![kv("ok", string("y"))])));
    assert_eq!(span.dropped_attributes_count, 1);
    assert_eq!(t, Trimmed { attributes_dropped: 1, values_truncated: 1, ..Trimmed::default() });
}

#[test]
fn events_and_links_are_counted_and_limited_with_their_attributes() {
    let event = |i: usize| Event { name: format!("event-number-{i}"), attributes: numbered(6), ..Default::default() };
    let link = |_| Link { trace_state: "k=v".into(), attributes: numbered(5), dropped_attributes_count: 1, ..Default::default() };
    let mut span =
        Span { events: (0..10).map(event).collect(), links: (0..4).map(link).collect(), dropped_events_count: 1, ..Default::default() };
    let t = limit_span(&small(), &mut span);
    assert_eq!((span.events.len(), span.dropped_events_count), (2, 1 + 8));
    assert_eq!((span.links.len(), span.dropped_links_count), (3, 1));
    assert_eq!(span.events[1].name, "event");
    assert!(span.events.iter().all(|e| e.attributes.len() == 4 && e.dropped_attributes_count == 2));
    assert!(span.links.iter().all(|l| l.attributes.len() == 4 && l.dropped_attributes_count == 2));
    assert_eq!(t, Trimmed { attributes_dropped: 2 * 2 + 3, values_truncated: 2, events_dropped: 8, links_dropped: 1 });
}

#[test]
fn free_text_beside_attributes_is_cut_too() {
    let mut span = Span {
        name: "a very long operation name".into(),
        trace_state: "vendor=0123456789".into(),
        status: Some(Status { message: "ünïcödé message".into(), code: 2 }),
        ..Default::default()
    };
    let t = limit_span(&small(), &mut span);
    assert_eq!((span.name.as_str(), span.trace_state.as_str()), ("a ver", "vendo"));
    assert_eq!(span.status.map(|s| s.message), Some("ünïcö".to_owned()));
    assert_eq!(t.values_truncated, 3);
}

#[test]
fn log_bodies_have_their_own_length_limit() {
    let mut log = LogRecord {
        body: string("a body longer than eight characters"),
        attributes: vec![kv("a", string("0123456789"))],
        severity_text: "INFORMATIONAL".into(),
        ..Default::default()
    };
    let t = limit_log(&small(), &mut log);
    assert_eq!(text_of(&log.body), "a body l");
    assert_eq!(text_of(&log.attributes[0].value), "01234");
    assert_eq!(log.severity_text, "INFOR");
    assert_eq!(t.values_truncated, 3);

    let mut structured = LogRecord { body: Some(map(vec![kv("msg", string("0123456789ab"))])), ..Default::default() };
    limit_log(&small(), &mut structured);
    assert_eq!(structured.body, Some(map(vec![kv("msg", string("01234567"))])));

    let mut bytes = LogRecord { body: any(Value::BytesValue(vec![1; 20])), ..Default::default() };
    limit_log(&small(), &mut bytes);
    assert_eq!(bytes.body, any(Value::BytesValue(vec![1; 8])));
}

#[test]
fn log_attributes_past_the_count_are_dropped_and_counted() {
    let mut log = LogRecord { attributes: numbered(10), ..Default::default() };
    let t = limit_log(&small(), &mut log);
    assert_eq!((log.attributes.len(), log.dropped_attributes_count, t.attributes_dropped), (4, 6, 6));
}

#[test]
fn a_resource_keeps_the_keys_ollystack_reads_wherever_they_are() {
    let mut attributes = numbered(10);
    attributes.insert(7, kv("service.name", string("checkout")));
    attributes.push(kv("tenant_id", string("acme")));
    // A repeat of a protected key past the limit is not kept twice.
    attributes.push(kv("service.name", string("other")));
    let mut resource = Resource { attributes, ..Default::default() };
    let t = limit_resource(&small(), &["service.name", "tenant_id"], &mut resource);
    let keys: Vec<&str> = resource.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["attr.0", "attr.1", "attr.2", "attr.3", "service.name", "tenant_id"]);
    assert_eq!(text_of(&resource.attributes[4].value), "check");
    assert_eq!((resource.dropped_attributes_count, t.attributes_dropped), (7, 7));
}

#[test]
fn a_protected_key_within_the_count_is_not_kept_again_later() {
    let mut attributes = vec![kv("service.name", string("a"))];
    attributes.extend(numbered(5));
    attributes.push(kv("service.name", string("b")));
    let mut resource = Resource { attributes, ..Default::default() };
    limit_resource(&small(), &["service.name"], &mut resource);
    assert_eq!(resource.attributes.len(), 4);
}

#[test]
fn dropped_counts_saturate_instead_of_wrapping() {
    let mut span = Span { attributes: numbered(10), dropped_attributes_count: u32::MAX - 2, ..Default::default() };
    limit_span(&small(), &mut span);
    assert_eq!(span.dropped_attributes_count, u32::MAX);
}

#[test]
fn a_ten_megabyte_value_is_cut_to_the_default_limit() {
    let mut span = Span { attributes: vec![kv("big", string(&"x".repeat(10 << 20)))], ..Default::default() };
    let t = limit_span(&AttrLimits::default(), &mut span);
    assert_eq!(text_of(&span.attributes[0].value).len(), 65_536);
    assert_eq!(t.values_truncated, 1);
}

proptest! {
    #[test]
    fn truncation_keeps_a_prefix_of_at_most_the_limit(text in "\\PC{0,40}", max in 0usize..30) {
        let mut cut = text.clone();
        let changed = truncate_chars(&mut cut, max);
        prop_assert!(text.starts_with(&cut));
        prop_assert!(cut.chars().count() <= max);
        prop_assert_eq!(changed, text.chars().count() > max);
        if !changed {
            prop_assert_eq!(&cut, &text);
        } else {
            prop_assert_eq!(cut.chars().count(), max);
        }
    }
}

/// Inside prepare: the correlation ID and the service are read before the
/// limits cut anything, and the encoded span (what the memory budget
/// counts) is the limited one.
mod in_prepare {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
    use prost::Message;

    use super::*;
    use crate::correlate::CorrelationSettings;
    use crate::ingest::prepare::{prepare_traces, Signal};
    use crate::ingest::NoLimits;

    #[test]
    fn limits_cut_after_the_id_is_read_and_before_encoding() {
        let mut attributes = numbered(200);
        attributes.push(kv("correlation_id", string("order-far-down-the-list")));
        attributes.push(kv("big", string(&"x".repeat(1 << 20))));
        let span = Span { trace_id: vec![1; 16], span_id: vec![2; 8], attributes, ..Default::default() };
        let mut resource_attributes = numbered(300);
        resource_attributes.push(kv("service.name", string("checkout")));
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource { attributes: resource_attributes, ..Default::default() }),
                scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
                ..Default::default()
            }],
        };
        let batch = prepare_traces(&CorrelationSettings::default(), &AttrLimits::default(), &NoLimits, request).expect("prepared");
        let item = &batch.items[0];
        assert_eq!(item.candidate.as_ref().map(|c| c.raw.as_str()), Some("order-far-down-the-list"));
        let Signal::Span(input) = &item.signal else { panic!("a span") };
        assert_eq!(&*input.service, "checkout");
        let stored = Span::decode(&*input.encoded).expect("decodes");
        assert_eq!((stored.attributes.len(), stored.dropped_attributes_count), (128, 74));
        assert!(item.cost_bytes() < 4096, "the memory cost is the limited span's: {}", item.cost_bytes());
        assert_eq!(batch.trimmed_spans.attributes_dropped, 74);
        assert_eq!(batch.trimmed_resources.attributes_dropped, 300 - 128);
    }

    #[test]
    fn exemplar_labels_are_limited_but_keep_the_correlation_id() {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        use opentelemetry_proto::tonic::metrics::v1::{
            metric::Data, Exemplar, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
        };

        use crate::ingest::prepare::prepare_metrics;

        let mut point_attributes = numbered(100_000);
        point_attributes.push(kv("correlation_id", string("order-exemplar")));
        let exemplar = Exemplar { filtered_attributes: numbered(500), ..Default::default() };
        let point = NumberDataPoint { attributes: point_attributes, exemplars: vec![exemplar.clone(), exemplar], ..Default::default() };
        let metric = Metric { name: "latency".into(), data: Some(Data::Gauge(Gauge { data_points: vec![point] })), ..Default::default() };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics { metrics: vec![metric], ..Default::default() }],
                ..Default::default()
            }],
        };
        let batch = prepare_metrics(&CorrelationSettings::default(), &AttrLimits::default(), &NoLimits, request).expect("prepared");
        assert_eq!(batch.items.len(), 2);
        let item = &batch.items[0];
        assert_eq!(item.candidate.as_ref().map(|c| c.raw.as_str()), Some("order-exemplar"));
        let Signal::Exemplar(stored) = &item.signal else { panic!("an exemplar") };
        // 128 of the point's (plus its protected correlation_id) and 128 of
        // the exemplar's own, the same keys.
        assert_eq!(stored.labels.len(), 129);
        assert_eq!(batch.trimmed_exemplars.attributes_dropped, (100_001 - 129) + 2 * (500 - 128));
    }
}

#[test]
fn trimmed_counts_go_to_the_metrics_by_signal() {
    let m = NodeMetrics::default();
    let span = Trimmed { attributes_dropped: 5, values_truncated: 2, events_dropped: 3, links_dropped: 1 };
    let log = Trimmed { values_truncated: 4, ..Trimmed::default() };
    record_trimmed(&m, &[("span", span), ("log", log), ("resource", Trimmed::default())]);
    record_trimmed(&m, &[("span", span)]);
    let text = m.render();
    assert!(text.contains("ollystack_ingest_attributes_dropped_total{signal=\"span\"} 10"), "{text}");
    assert!(text.contains("ollystack_ingest_values_truncated_total{signal=\"log\"} 4"), "{text}");
    assert!(!text.contains("signal=\"resource\""), "{text}");
    assert!(text.contains("ollystack_ingest_span_events_dropped_total 6"));
    assert!(text.contains("ollystack_ingest_span_links_dropped_total 2"));
}
