use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::*;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(Value::StringValue(v.into())) }), ..Default::default() }
}

fn span(trace: u8, id: u8) -> Span {
    Span {
        trace_id: if trace == 0 { vec![0; 3] } else { vec![trace; 16] },
        span_id: vec![id; 8],
        name: format!("s{id}"),
        ..Default::default()
    }
}

fn request() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource { attributes: vec![kv("service.name", "a")], ..Default::default() }),
                scope_spans: vec![ScopeSpans { spans: vec![span(1, 1), span(2, 2), span(1, 3)], ..Default::default() }],
                schema_url: "x".into(),
            },
            ResourceSpans {
                resource: Some(Resource { attributes: vec![kv("service.name", "b")], ..Default::default() }),
                scope_spans: vec![ScopeSpans { spans: vec![span(2, 4), span(0, 5)], ..Default::default() }],
                schema_url: String::new(),
            },
        ],
    }
}

/// Trace 1 lives on node 10, trace 2 on node 20; this node is 1.
fn home(_: &[KeyValue], _: &[KeyValue], t: TraceId) -> NodeId {
    NodeId(t.0[0] as u64 * 10)
}

fn names(r: &ExportTraceServiceRequest) -> Vec<(String, String)> {
    r.resource_spans
        .iter()
        .flat_map(|rs| {
            let service = rs.resource.as_ref().map(|r| format!("{:?}", r.attributes[0].value)).unwrap_or_default();
            rs.scope_spans.iter().flat_map(move |ss| {
                ss.spans.iter().map({
                    let service = service.clone();
                    move |s| (service.clone(), s.name.clone())
                })
            })
        })
        .collect()
}

#[test]
fn spans_go_to_their_trace_home_with_their_resource() {
    let parts = split_by_home(request(), NodeId(1), home);
    assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![NodeId(1), NodeId(10), NodeId(20)]);
    let on = |n: u64| names(&parts[&NodeId(n)]).into_iter().map(|(_, s)| s).collect::<Vec<_>>();
    assert_eq!(on(10), vec!["s1", "s3"], "both spans of trace 1, in order");
    assert_eq!(on(20), vec!["s2", "s4"]);
    assert_eq!(on(1), vec!["s5"], "an invalid trace ID stays here to be rejected");
    let to_20 = &parts[&NodeId(20)];
    assert_eq!(to_20.resource_spans.len(), 2, "one resource entry per source resource");
    assert_eq!(to_20.resource_spans[0].schema_url, "x");
    let total: usize = parts.values().map(|r| names(r).len()).sum();
    assert_eq!(total, 5, "nothing lost, nothing doubled");
}

#[test]
fn logs_without_a_trace_stay_here() {
    let log = |trace: Vec<u8>, body: &str| LogRecord {
        trace_id: trace,
        body: Some(AnyValue { value: Some(Value::StringValue(body.into())) }),
        ..Default::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: None,
            scope_logs: vec![ScopeLogs {
                log_records: vec![log(vec![1; 16], "a"), log(vec![], "b"), log(vec![2; 16], "c")],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    };
    let parts = split_by_home(request, NodeId(1), home);
    let bodies = |n: u64| -> Vec<String> {
        parts[&NodeId(n)].resource_logs[0].scope_logs[0].log_records.iter().map(|l| crate::query::body_text(l.body.as_ref())).collect()
    };
    assert_eq!(bodies(10), vec!["a"]);
    assert_eq!(bodies(1), vec!["b"]);
    assert_eq!(bodies(20), vec!["c"]);
}
