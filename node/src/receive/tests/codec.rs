//! Pure codec tests: content negotiation, bounded gzip, OTLP/JSON as the
//! spec writes it (checked against the `with-serde` impls), and encoding of
//! responses and error bodies.

use std::time::Duration;

use proptest::prelude::*;
use prost::Message;

use super::fixtures::{gzip, SPAN_ID, TRACE_ID};
use crate::ingest::Accepted;
use crate::receive::codec::{
    decode_request, encode_response, gunzip_bounded, DecodeError, Encoding, Format, RetryInfo, RpcStatus, RETRY_INFO_TYPE_URL,
};
use crate::receive::signal::{Logs, Metrics, Signal, Traces};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};

const LIMIT: usize = 1024 * 1024;

fn json<G: Signal>(body: &str) -> Result<G::Request, DecodeError> {
    decode_request::<G>(body.as_bytes(), Format::Json, Encoding::Identity, LIMIT)
}

#[test]
fn content_type_ignores_parameters_and_case() {
    assert_eq!(Format::from_content_type("application/x-protobuf"), Some(Format::Protobuf));
    assert_eq!(Format::from_content_type("Application/JSON; charset=utf-8"), Some(Format::Json));
    assert_eq!(Format::from_content_type("text/plain"), None);
    assert_eq!(Format::from_content_type("application/protobuf"), None);
    assert_eq!(Format::from_content_type(""), None);
}

#[test]
fn content_encoding_is_identity_or_gzip() {
    assert_eq!(Encoding::from_header(None), Some(Encoding::Identity));
    assert_eq!(Encoding::from_header(Some("identity")), Some(Encoding::Identity));
    assert_eq!(Encoding::from_header(Some("GZIP")), Some(Encoding::Gzip));
    assert_eq!(Encoding::from_header(Some("br")), None);
}

/// The example of the OTLP spec, with int64 both as strings and numbers,
/// enums as integers, an empty parent span ID and an unknown field.
pub(super) const SPEC_TRACES_JSON: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
    "scopeSpans": [{
      "scope": {"name": "manual", "version": "1.0.0"},
      "spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "",
        "name": "GET /cart",
        "kind": 2,
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": 1544712661000000000,
        "attributes": [
          {"key": "http.status_code", "value": {"intValue": "200"}},
          {"key": "retries", "value": {"intValue": 3}},
          {"key": "ratio", "value": {"doubleValue": 0.5}}
        ],
        "events": [{"timeUnixNano": "1544712660500000000", "name": "cache miss"}],
        "status": {"code": 2, "message": "boom"},
        "futureField": {"ignored": true}
      }]
    }]
  }]
}"#;

#[test]
fn json_traces_follow_the_otlp_json_encoding() {
    let request = json::<Traces>(SPEC_TRACES_JSON).expect("spec-shaped OTLP/JSON decodes");
    let resource_spans = &request.resource_spans[0];
    let resource = resource_spans.resource.as_ref().expect("resource");
    assert_eq!(resource.attributes[0].key, "service.name");
    let span = &resource_spans.scope_spans[0].spans[0];
    assert_eq!(span.trace_id, TRACE_ID);
    assert_eq!(span.span_id, SPAN_ID);
    assert!(span.parent_span_id.is_empty());
    assert_eq!(span.name, "GET /cart");
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    let values: Vec<_> = span.attributes.iter().map(|kv| kv.value.clone().unwrap().value).collect();
    assert_eq!(values[0], Some(Value::IntValue(200)));
    assert_eq!(values[1], Some(Value::IntValue(3)));
    assert_eq!(values[2], Some(Value::DoubleValue(0.5)));
    assert_eq!(span.events[0].time_unix_nano, 1_544_712_660_500_000_000);
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
}

#[test]
fn json_logs_follow_the_otlp_json_encoding() {
    let body = r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1544712660300000000",
        "severityNumber": 9, "severityText": "INFO",
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "body": {"stringValue": "cart loaded"},
        "attributes": [{"key": "items", "value": {"arrayValue": {"values": [{"intValue": "1"}]}}}]
    }]}]}]}"#;
    let request = json::<Logs>(body).expect("spec-shaped OTLP/JSON decodes");
    let record = &request.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.trace_id, TRACE_ID);
    assert_eq!(record.span_id, SPAN_ID);
    assert_eq!(record.severity_number, 9);
    assert_eq!(record.time_unix_nano, 1_544_712_660_300_000_000);
    let body = record.body.as_ref().and_then(|b| b.value.clone());
    assert_eq!(body, Some(Value::StringValue("cart loaded".to_owned())));
}

#[test]
fn json_metrics_follow_the_otlp_json_encoding() {
    let body = r#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [
      {"name": "requests", "sum": {"aggregationTemporality": 2, "isMonotonic": true,
        "dataPoints": [{"asInt": "5", "timeUnixNano": "1544712660300000000"}]}},
      {"name": "load", "gauge": {"dataPoints": [{"asDouble": 0.25}]}},
      {"name": "latency", "histogram": {"aggregationTemporality": 1, "dataPoints": [
        {"count": "3", "sum": 2.5, "bucketCounts": ["1", 2], "explicitBounds": [1.0]}]}}
    ]}]}]}"#;
    let request = json::<Metrics>(body).expect("spec-shaped OTLP/JSON decodes");
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    let Some(metric::Data::Sum(sum)) = &metrics[0].data else { panic!("sum expected, got {:?}", metrics[0].data) };
    assert_eq!(sum.aggregation_temporality, 2);
    assert!(sum.is_monotonic);
    assert_eq!(sum.data_points[0].value, Some(number_data_point::Value::AsInt(5)));
    let Some(metric::Data::Gauge(gauge)) = &metrics[1].data else { panic!("gauge expected, got {:?}", metrics[1].data) };
    assert_eq!(gauge.data_points[0].value, Some(number_data_point::Value::AsDouble(0.25)));
    let Some(metric::Data::Histogram(histogram)) = &metrics[2].data else { panic!("histogram expected, got {:?}", metrics[2].data) };
    assert_eq!(histogram.data_points[0].count, 3);
    assert_eq!(histogram.data_points[0].bucket_counts, vec![1, 2]);
}

#[test]
fn empty_requests_decode_in_both_formats() {
    assert!(json::<Traces>("{}").unwrap().resource_spans.is_empty());
    let empty = decode_request::<Logs>(&[], Format::Protobuf, Encoding::Identity, LIMIT);
    assert!(empty.unwrap().resource_logs.is_empty());
}

#[test]
fn json_errors_name_the_message_and_the_problem() {
    let bad_hex = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#;
    let err = json::<Traces>(bad_hex).unwrap_err();
    assert!(matches!(err, DecodeError::Json { .. }), "{err}");
    assert!(err.to_string().contains("ExportTraceServiceRequest"), "{err}");
    // The spec requires enums as integers; names are refused, not guessed.
    let enum_name = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]}"#;
    assert!(json::<Traces>(enum_name).is_err());
    assert!(json::<Traces>("{\"resourceSpans\": [").is_err());
}

#[test]
fn garbage_protobuf_is_a_protobuf_error() {
    let garbage = [0xff_u8; 64];
    let err = decode_request::<Traces>(&garbage, Format::Protobuf, Encoding::Identity, LIMIT).unwrap_err();
    assert!(matches!(err, DecodeError::Protobuf { .. }), "{err}");
    assert!(err.to_string().contains("protobuf ExportTraceServiceRequest"), "{err}");
}

#[test]
fn gzip_is_bounded_after_decompression() {
    let plain = vec![7_u8; 10_000];
    let compressed = gzip(&plain);
    assert_eq!(gunzip_bounded(&compressed, 10_000).unwrap(), plain);
    let err = gunzip_bounded(&compressed, 9_999).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { limit_bytes: 9_999 }), "{err}");
    let err = gunzip_bounded(b"not gzip at all", 10_000).unwrap_err();
    assert!(matches!(err, DecodeError::Gzip(_)), "{err}");
}

#[test]
fn gzip_members_are_concatenated() {
    let mut two_members = gzip(b"hello ");
    two_members.extend(gzip(b"world"));
    assert_eq!(gunzip_bounded(&two_members, 100).unwrap(), b"hello world");
}

#[test]
fn identity_bodies_over_the_limit_are_too_large() {
    let err = decode_request::<Traces>(&[0; 11], Format::Protobuf, Encoding::Identity, 10).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { limit_bytes: 10 }), "{err}");
}

#[test]
fn json_response_is_empty_on_full_success_and_names_rejections() {
    let full = Traces::response(&Accepted::default());
    assert_eq!(encode_response::<Traces>(&full, Format::Json).unwrap(), b"{}");
    let partial = Logs::response(&Accepted { rejected_items: 2, error_message: "no body".to_owned() });
    let body = encode_response::<Logs>(&partial, Format::Json).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["partialSuccess"]["rejectedLogRecords"], 2);
    assert_eq!(value["partialSuccess"]["errorMessage"], "no body");
}

#[test]
fn rejected_counts_saturate_at_int64() {
    let response = Metrics::response(&Accepted { rejected_items: u64::MAX, error_message: String::new() });
    assert_eq!(response.partial_success.unwrap().rejected_data_points, i64::MAX);
}

#[test]
fn error_status_carries_retry_info_in_both_formats() {
    let status = RpcStatus::new(tonic::Code::ResourceExhausted, "busy".to_owned(), Some(Duration::from_millis(2_500)));
    let decoded = RpcStatus::decode(&status.encode(Format::Protobuf)[..]).unwrap();
    assert_eq!(decoded.code, tonic::Code::ResourceExhausted as i32);
    assert_eq!(decoded.details[0].type_url, RETRY_INFO_TYPE_URL);
    let retry_info = RetryInfo::decode(&decoded.details[0].value[..]).unwrap();
    let delay = retry_info.retry_delay.unwrap();
    assert_eq!((delay.seconds, delay.nanos), (2, 500_000_000));

    let json: serde_json::Value = serde_json::from_slice(&status.encode(Format::Json)).unwrap();
    assert_eq!(json["code"], 8);
    assert_eq!(json["message"], "busy");
    assert_eq!(json["details"][0]["retryDelay"], "2.500000000s");
}

proptest! {
    #[test]
    fn gunzip_returns_the_input_or_too_large(
        plain in proptest::collection::vec(any::<u8>(), 0..4096),
        limit in 0_usize..4096,
    ) {
        match gunzip_bounded(&gzip(&plain), limit) {
            Ok(out) => prop_assert!(plain.len() <= limit && out == plain),
            Err(DecodeError::TooLarge { .. }) => prop_assert!(plain.len() > limit),
            Err(err) => prop_assert!(false, "unexpected error {err}"),
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        for format in [Format::Protobuf, Format::Json] {
            for encoding in [Encoding::Identity, Encoding::Gzip] {
                let _ = decode_request::<Traces>(&body, format, encoding, 256);
                let _ = decode_request::<Metrics>(&body, format, encoding, 256);
            }
        }
    }
}
