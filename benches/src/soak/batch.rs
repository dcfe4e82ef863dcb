//! The OTLP/HTTP protobuf body of soak request `seq`, as an instrumented
//! service's exporter would send it: one resource (service) per correlation
//! ID slot, one trace per slot, every span carrying its `correlation_id`
//! attribute and the HTTP attributes such a span has.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use super::plan::{correlation_id, span_id, Layout};

const SERVICES: [&str; 6] = ["web", "checkout", "payments", "inventory", "shipping", "users"];

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(value: &str) -> Value {
    Value::StringValue(value.into())
}

/// The encoded request body. Deterministic in `seq`, so a retry sends the
/// same spans (the node de-duplicates them).
pub fn body(layout: &Layout, seq: u64) -> Vec<u8> {
    request(layout, seq).encode_to_vec()
}

pub fn request(layout: &Layout, seq: u64) -> ExportTraceServiceRequest {
    let base_ns = 1_764_000_000_000_000_000 + seq * 1_000_000;
    let resource_spans = (0..layout.ids_per_request)
        .map(|slot| {
            let id = layout.id_of(seq, slot);
            let cid = correlation_id(id);
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&seq.to_be_bytes());
            trace_id[8..].copy_from_slice(&(0x5eed_0000_0000_0000 | slot).to_be_bytes());
            let mut parent = Vec::new();
            let spans = layout
                .spans_of_slot(slot)
                .enumerate()
                .map(|(depth, index)| {
                    let id_bytes = span_id(seq, index).to_be_bytes().to_vec();
                    let start = base_ns + depth as u64 * 1_000;
                    Span {
                        trace_id: trace_id.to_vec(),
                        span_id: id_bytes.clone(),
                        parent_span_id: std::mem::replace(&mut parent, id_bytes),
                        name: "POST /api/v1/orders/{id}".into(),
                        kind: SpanKind::Server as i32,
                        start_time_unix_nano: start,
                        end_time_unix_nano: start + 2_000_000 + (index % 7) * 1_000_000,
                        attributes: vec![
                            kv("correlation_id", text(&cid)),
                            kv("http.request.method", text("POST")),
                            kv("http.route", text("/api/v1/orders/{id}")),
                            kv("http.response.status_code", Value::IntValue(200)),
                            kv("url.path", text("/api/v1/orders/93172")),
                            kv("server.address", text("orders.internal.example.com")),
                        ],
                        status: Some(Status { code: 0, message: String::new() }),
                        ..Default::default()
                    }
                })
                .collect();
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", text(SERVICES[(id % SERVICES.len() as u64) as usize])),
                        kv("host.name", text("soak-1")),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_carries_the_layouts_ids_and_spans() {
        let layout = Layout::new(100, 4, 12).expect("valid");
        let req = request(&layout, 7);
        assert_eq!(req.resource_spans.len(), 4);
        for (slot, rs) in req.resource_spans.iter().enumerate() {
            let id = layout.id_of(7, slot as u64);
            let spans = &rs.scope_spans[0].spans;
            let ids: Vec<u64> = spans.iter().map(|s| u64::from_be_bytes(s.span_id.as_slice().try_into().expect("8 bytes"))).collect();
            assert_eq!(ids, layout.span_ids(7, id).collect::<Vec<_>>());
            let cid = correlation_id(id);
            assert!(spans.iter().all(|s| s.attributes[0].value == Some(AnyValue { value: Some(text(&cid)) })));
        }
        assert_eq!(body(&layout, 7), body(&layout, 7), "deterministic, so retries are de-duplicated");
    }
}
