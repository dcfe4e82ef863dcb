//! Realistic OTLP span batches: each request holds `spans_per_request`
//! spans of several traces and services, with the attributes an HTTP/DB
//! instrumented service emits.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, ResourceSpans, ScopeSpans, Span, Status};
use rand::{Rng, SeedableRng};

const SERVICES: [&str; 6] = ["web", "checkout", "payments", "inventory", "shipping", "users"];

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

/// One request: `traces` traces of `spans_per_request / traces` spans,
/// grouped per service as SDKs do. `session_of` maps a trace number to the
/// correlation ID put on its root span (None: trace-derived).
pub fn request(
    seed: u64,
    spans_per_request: usize,
    traces: usize,
    session_of: impl Fn(u64) -> Option<String>,
) -> ExportTraceServiceRequest {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let per_trace = (spans_per_request / traces.max(1)).max(1);
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
    for t in 0..traces as u64 {
        let trace_id: [u8; 16] = rng.random();
        let mut parent = Vec::new();
        let base: u64 = 1_764_000_000_000_000_000 + rng.random_range(0..1_000_000_000_000);
        for i in 0..per_trace {
            let span_id: [u8; 8] = rng.random();
            let svc = i % SERVICES.len();
            let mut attributes = vec![
                kv("http.request.method", s("POST")),
                kv("http.route", s("/api/v1/orders/{id}")),
                kv("http.response.status_code", Value::IntValue(200)),
                kv("server.address", s("orders.internal.example.com")),
                kv("url.path", s("/api/v1/orders/93172")),
                kv("user_agent.original", s("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")),
                kv("net.peer.port", Value::IntValue(8443)),
                kv("thread.id", Value::IntValue(rng.random_range(1..64))),
            ];
            if i == 0 {
                if let Some(id) = session_of(t) {
                    attributes.push(kv("correlation_id", s(&id)));
                }
            }
            if i % 3 == 2 {
                attributes.push(kv("db.statement", s("SELECT id, total FROM orders WHERE customer_id = 4411 AND status = 'open'")));
            }
            by_service[svc].push(Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id: parent.clone(),
                name: format!("{} /api/v1/orders/{{id}}", SERVICES[svc]),
                kind: SpanKind::Server as i32,
                start_time_unix_nano: base + i as u64 * 1_000,
                end_time_unix_nano: base + i as u64 * 1_000 + rng.random_range(100_000..50_000_000),
                attributes,
                status: Some(Status { code: 0, message: String::new() }),
                ..Default::default()
            });
            parent = span_id.to_vec();
        }
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(i, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s(SERVICES[i])), kv("host.name", s("node-17"))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            })
            .collect(),
    }
}

/// Bytes of the spans themselves on the wire (each span's encoded length).
pub fn span_wire_bytes(req: &ExportTraceServiceRequest) -> u64 {
    use prost::Message;
    req.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).map(|s| s.encoded_len() as u64).sum()
}

pub fn span_count(req: &ExportTraceServiceRequest) -> u64 {
    req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum()
}
