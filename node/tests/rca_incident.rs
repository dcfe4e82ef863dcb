//! Per-incident RCA, window anomalies and natural-language search on a
//! running node, with traffic whose timestamps are four months old (a
//! recorded incident replayed with its original times): an hour of normal
//! checkouts, then an hour where db got slow. Sessions go through real
//! OTLP/HTTP and finish into the archive before the questions are asked.

mod common;

use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{json, Value};

const MS: u64 = 1_000_000;
const HOUR: u64 = 3_600_000 * MS;
/// Requests per window.
const REQUESTS: u64 = 30;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(V::StringValue(value.into())) }), ..Default::default() }
}

/// web `GET /checkout` → api `POST /orders` → api `call db` (client) → db `query`.
fn checkout(n: u64, at: u64, db_ms: u64) -> ExportTraceServiceRequest {
    let id = format!("req-{n}");
    let mut trace = [0u8; 16];
    trace[..8].copy_from_slice(&0xfeed_u64.to_be_bytes());
    trace[8..].copy_from_slice(&(n + 1).to_be_bytes());
    let jitter = n % 3;
    let db_end = 6 + db_ms + jitter;
    // (service, name, kind, span, parent, start ms, end ms)
    let spans = [
        ("web", "GET /checkout", SpanKind::Server, 1u64, None, 0, db_end + 6),
        ("api", "POST /orders", SpanKind::Server, 2, Some(1), 1, db_end + 4),
        ("api", "call db", SpanKind::Client, 3, Some(2), 4, db_end + 1),
        ("db", "query", SpanKind::Server, 4, Some(3), 5, db_end),
    ];
    let resource_spans = spans
        .iter()
        .map(|&(service, name, kind, span, parent, start, end)| ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", service)], ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: trace.to_vec(),
                    span_id: span.to_be_bytes().to_vec(),
                    parent_span_id: parent.map(|p: u64| p.to_be_bytes().to_vec()).unwrap_or_default(),
                    name: name.into(),
                    kind: kind as i32,
                    start_time_unix_nano: at + start * MS,
                    end_time_unix_nano: at + end * MS,
                    attributes: vec![kv("correlation_id", &id)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let resp = client.post(url).json(&body).send().await.expect("post");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_months_old_incident_replayed_is_analysed_by_event_time() {
    let node = start_node(|f| {
        f.session.idle_timeout_ms = 200;
        f.session.tick_interval_ms = 20;
    })
    .await;
    let client = reqwest::Client::new();
    let traces = format!("{}/v1/traces", node.otlp_http());
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let t0 = (now_ns - 120 * 24 * HOUR) / HOUR * HOUR;
    for n in 0..2 * REQUESTS {
        let incident = n >= REQUESTS;
        let at = t0 + (n % REQUESTS) * 60_000 * MS + if incident { HOUR } else { 0 };
        let body = checkout(n, at, if incident { 60 } else { 4 }).encode_to_vec();
        assert_eq!(post_protobuf(&client, &traces, body).await.status(), 200);
    }
    // Every session finished into the archive.
    let list = node.api("/api/v1/sessions?limit=100");
    eventually(Duration::from_secs(20), || {
        let list = list.clone();
        async move {
            let (_, body) = get_json(&list).await;
            let rows = body["sessions"].as_array()?;
            (rows.len() == 2 * REQUESTS as usize && rows.iter().all(|r| r["live"] == false)).then_some(())
        }
    })
    .await;

    let window = json!({"start": t0 + HOUR, "end": t0 + 2 * HOUR});
    let (status, r) = post(&client, node.api("/api/v1/ai/rca"), window.clone()).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["sessions"], json!({"baseline": REQUESTS, "incident": REQUESTS}), "{r}");
    assert_eq!((r["partial"].clone(), r["window"]["baseline"].clone()), (json!(false), json!("previous_window")));
    let root = &r["root_cause"];
    assert_eq!(
        (root["service"].as_str(), root["operation"].as_str(), root["kind"].as_str()),
        (Some("db"), Some("query"), Some("latency")),
        "{r}"
    );
    assert!(
        !r["candidates"].as_array().expect("candidates").iter().any(|c| c["service"] == "api" || c["service"] == "web"),
        "callers whose duration rose are not blamed: {}",
        r["candidates"]
    );
    let affected = root["evidence"].as_array().and_then(|e| e.iter().find(|e| e["type"] == "affected_callers")).expect("callers");
    assert!(affected["detail"].as_str().is_some_and(|d| d.contains("api POST /orders") && d.contains("web GET /checkout")), "{affected}");

    let (status, a) = post(&client, node.api("/api/v1/ai/analyze"), window).await;
    assert_eq!(status, 200, "{a}");
    let db = a["anomalies"].as_array().and_then(|x| x.iter().find(|x| x["service"] == "db")).expect("db anomaly").clone();
    assert_eq!(db["departures"], json!(["self_time", "duration"]));
    // A window with nothing in it (before the replay): no sessions, no anomalies.
    let (_, empty) = post(&client, node.api("/api/v1/ai/analyze"), json!({"start": t0 - 2 * HOUR, "end": t0 - HOUR})).await;
    assert_eq!((empty["sessions"]["incident"].clone(), empty["anomalies"].clone()), (json!(0), json!([])));

    let (status, q) = post(&client, node.api("/api/v1/ai/nlq"), json!({"q": "top 3 slowest checkout requests in the last hour"})).await;
    assert_eq!(status, 200, "{q}");
    assert_eq!((q["query"]["order_by"].as_str(), q["query"]["limit"].as_u64()), (Some("duration_desc"), Some(3)));
    assert_eq!(q["query"]["operation"], "checkout", "part of the root operation GET /checkout");
    let results = q["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["duration_ms"].as_f64().is_some_and(|d| d >= 70.0)), "the incident's requests: {q}");
    tokio::time::timeout(Duration::from_secs(30), node.node.shutdown()).await.expect("shutdown");
}
