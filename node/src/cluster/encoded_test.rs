use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use proptest::prelude::*;
use prost::Message;

use super::*;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }), ..Default::default() }
}

fn span(trace: u8, name: &str) -> Span {
    Span { trace_id: vec![trace; 16], span_id: vec![1; 8], name: name.into(), attributes: vec![kv("k", name)], ..Default::default() }
}

/// Resources of scopes of spans, each span named by its trace's byte.
fn request(resources: &[&[&[u8]]]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: resources
            .iter()
            .enumerate()
            .map(|(r, scopes)| ResourceSpans {
                resource: Some(Resource { attributes: vec![kv("service.name", &format!("svc{r}"))], ..Default::default() }),
                scope_spans: scopes
                    .iter()
                    .enumerate()
                    .map(|(s, traces)| ScopeSpans {
                        scope: Some(InstrumentationScope { name: format!("scope{s}"), ..Default::default() }),
                        spans: traces.iter().enumerate().map(|(i, t)| span(*t, &format!("{r}.{s}.{i}"))).collect(),
                        schema_url: format!("https://scope/{s}"),
                    })
                    .collect(),
                schema_url: format!("https://resource/{r}"),
            })
            .collect(),
    }
}

/// Each resource's trace IDs, as the scan saw them.
fn scanned_traces(body: &[u8], scanned: &Scanned) -> Vec<Vec<Vec<u8>>> {
    scanned.resources.iter().map(|r| r.items.iter().map(|i| i.trace_id(body).to_vec()).collect()).collect()
}

/// Each resource's trace IDs, as a decode sees them.
fn decoded_traces(request: &ExportTraceServiceRequest) -> Vec<Vec<Vec<u8>>> {
    request.resource_spans.iter().map(|r| r.scope_spans.iter().flat_map(|s| &s.spans).map(|x| x.trace_id.clone()).collect()).collect()
}

#[test]
fn scan_finds_every_item_and_its_trace() {
    let req = request(&[&[&[1, 2], &[3]], &[&[4]], &[]]);
    let body = req.encode_to_vec();
    let scanned = scan(&body, TRACES, false).expect("scans");
    assert_eq!(scanned_traces(&body, &scanned), vec![vec![vec![1; 16], vec![2; 16], vec![3; 16]], vec![vec![4; 16]], vec![]]);
    assert!(scanned.resources[0].attributes.is_empty(), "attributes only when asked");
    assert!(scanned.resources[0].items[0].attributes.is_empty());
}

#[test]
fn scan_decodes_attributes_when_asked() {
    let req = request(&[&[&[1, 2]]]);
    let body = req.encode_to_vec();
    let scanned = scan(&body, TRACES, true).expect("scans");
    assert_eq!(scanned.resources[0].attributes, vec![kv("service.name", "svc0")]);
    assert_eq!(scanned.resources[0].items[1].attributes, vec![kv("k", "0.0.1")]);
}

/// Appends a length-delimited field with a one-byte key.
fn put(out: &mut Vec<u8>, number: u32, value: &[u8]) {
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

#[test]
fn repeated_fields_are_read_as_a_decode_reads_them() {
    // A span whose trace_id field comes twice (the last one counts), and a
    // resource field twice, after the scopes (their attributes append).
    let mut span_bytes = span(1, "a").encode_to_vec();
    put(&mut span_bytes, 1, &[7; 16]);
    let mut scope = Vec::new();
    put(&mut scope, SCOPE_ITEMS, &span_bytes);
    let mut resource = Vec::new();
    put(&mut resource, RESOURCE_RESOURCE, &Resource { attributes: vec![kv("early", "yes")], ..Default::default() }.encode_to_vec());
    put(&mut resource, RESOURCE_SCOPES, &scope);
    put(&mut resource, RESOURCE_RESOURCE, &Resource { attributes: vec![kv("late", "yes")], ..Default::default() }.encode_to_vec());
    let mut body = Vec::new();
    put(&mut body, REQUEST_RESOURCES, &resource);

    let decoded = ExportTraceServiceRequest::decode(body.as_slice()).expect("decodes");
    let scanned = scan(&body, TRACES, true).expect("scans");
    assert_eq!(scanned_traces(&body, &scanned), decoded_traces(&decoded));
    assert_eq!(scanned.resources[0].items[0].trace_id(&body), [7; 16]);
    assert_eq!(Some(scanned.resources[0].attributes.clone()), decoded.resource_spans[0].resource.as_ref().map(|r| r.attributes.clone()));
}

#[test]
fn logs_scan_by_their_own_field_numbers() {
    let record = |t: u8| LogRecord { trace_id: vec![t; 16], attributes: vec![kv("a", "b")], ..Default::default() };
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: None,
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: vec![record(1), record(2), LogRecord::default()],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let body = req.encode_to_vec();
    let scanned = scan(&body, LOGS, true).expect("scans");
    let items = &scanned.resources[0].items;
    assert_eq!(items.iter().map(|i| i.trace_id(&body).to_vec()).collect::<Vec<_>>(), vec![vec![1; 16], vec![2; 16], vec![]]);
    assert_eq!(items[0].attributes, vec![kv("a", "b")]);
    assert!(scanned.resources[0].attributes.is_empty(), "no resource");
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    let body = request(&[&[&[1, 2]]]).encode_to_vec();
    for end in 1..body.len() {
        let cut = &body[..end];
        if let Ok(scanned) = scan(cut, TRACES, true) {
            // A cut that happens to end between fields: the decode agrees.
            let decoded = ExportTraceServiceRequest::decode(cut).expect("a cut the scan takes decodes");
            assert_eq!(scanned_traces(cut, &scanned), decoded_traces(&decoded));
        }
    }
    assert!(scan(&body[..body.len() - 1], TRACES, false).is_err(), "a cut item");
    assert_eq!(scan(&[0x00], TRACES, false), Err(ScanError("field number 0")));
    assert!(scan(&[0x0b, 0x0c], TRACES, false).is_err(), "a group");
    assert!(scan(&[0x08, 0x01], TRACES, false).is_err(), "resources as a varint");
    assert!(scan(&[0x0a, 0x80], TRACES, false).is_err(), "a truncated length");
    assert!(scan(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], TRACES, false).is_err(), "a length past 64 bits");
    assert_eq!(scan(&[], TRACES, false), Ok(Scanned::default()));
}

proptest! {
    /// Whatever the bytes, the scan does not panic, and whatever both the
    /// scan and a decode take, they see the same traces.
    #[test]
    fn scan_agrees_with_decoding(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let (Ok(scanned), Ok(decoded)) = (scan(&body, TRACES, true), ExportTraceServiceRequest::decode(body.as_slice())) {
            prop_assert_eq!(scanned_traces(&body, &scanned), decoded_traces(&decoded));
        }
    }

    /// Mutations of a real request: one a decode takes, the scan takes
    /// too (else its sender pays a full decode), with the same traces and
    /// attributes.
    #[test]
    fn mutated_requests_scan_as_they_decode(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4)) {
        let mut body = request(&[&[&[1, 2], &[3]], &[&[2, 1]]]).encode_to_vec();
        for (at, byte) in flips {
            let at = at % body.len();
            body[at] = byte;
        }
        if let Ok(decoded) = ExportTraceServiceRequest::decode(body.as_slice()) {
            let scanned = scan(&body, TRACES, true);
            let Ok(scanned) = scanned else { return Err(TestCaseError::fail(format!("{scanned:?}"))) };
            prop_assert_eq!(scanned_traces(&body, &scanned), decoded_traces(&decoded));
            let attributes: Vec<Vec<KeyValue>> = decoded.resource_spans.iter().map(|r| r.resource.clone().unwrap_or_default().attributes).collect();
            prop_assert_eq!(scanned.resources.iter().map(|r| r.attributes.clone()).collect::<Vec<_>>(), attributes);
            let span_attributes: Vec<Vec<KeyValue>> = decoded.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).map(|x| x.attributes.clone()).collect();
            prop_assert_eq!(scanned.resources.iter().flat_map(|r| &r.items).map(|i| i.attributes.clone()).collect::<Vec<_>>(), span_attributes);
        }
    }
}
