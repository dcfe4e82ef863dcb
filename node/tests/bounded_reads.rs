//! Reads that must stay bounded however much a session or the archive
//! holds (the network-safety issue): one correlation ID with 30,000 spans
//! is answered in pages of at most 10,000 that say what was left out, and
//! following `next` visits every span exactly once; a session listing
//! whose filter matches nothing answers at once, from the indexes.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::Value;

const SPANS: u64 = 30_000;
const BATCH: u64 = 3_000;
const PAGE_MAX: usize = 10_000;
const TRACE: [u8; 16] = [7; 16];

async fn send(node: &TestNode, client: &reqwest::Client, request: ExportTraceServiceRequest) {
    let reply = post_protobuf(client, &format!("{}/v1/traces", node.otlp_http()), request.encode_to_vec()).await;
    assert_eq!(reply.status(), 200, "ingest accepted");
}

fn span_ids(page: &Value) -> Vec<String> {
    page["traces"].as_array().expect("traces").iter().map(|s| s["span_id"].as_str().expect("span_id").to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_session_is_paged_and_every_span_comes_once() {
    // Segments of 9,000 (three batches) get archived as they fill, so the
    // pages cross archived segments and the live one.
    let node = start_node(|f| f.session.max_spans = 7_000).await;
    let client = reqwest::Client::new();
    for first in (0..SPANS).step_by(BATCH as usize) {
        send(&node, &client, trace_request("checkout", Some("huge-1"), TRACE, first, BATCH)).await;
    }
    // Until every span is readable (archiving settles).
    let counted = node.api("/api/v1/correlate/huge-1?limit=1");
    eventually(Duration::from_secs(30), || {
        let url = counted.clone();
        async move {
            let (status, body) = get_json(&url).await;
            (status == 200 && body["page"]["session_spans"] == SPANS).then_some(())
        }
    })
    .await;

    let (status, first) = get_json(&node.api("/api/v1/correlate/huge-1")).await;
    assert_eq!(status, 200);
    assert_eq!(span_ids(&first).len(), PAGE_MAX, "the default page is the cap");
    assert_eq!(first["truncated"], true);
    assert_eq!(first["summary"]["total_spans"], SPANS, "the summary counts the whole session");
    assert_eq!(first["page"]["next"], "/api/v1/correlate/huge-1?offset=10000&limit=10000");

    let mut seen = HashSet::new();
    let mut next = Some("/api/v1/correlate/huge-1".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let started = Instant::now();
        let (status, page) = get_json(&node.api(&path)).await;
        eprintln!("page {pages}: {path} answered in {:?}", started.elapsed());
        assert_eq!(status, 200, "{path}");
        let ids = span_ids(&page);
        assert!(ids.len() <= PAGE_MAX, "{path}: {} spans", ids.len());
        assert_eq!(page["truncated"], true, "{path}");
        for id in ids {
            assert!(seen.insert(id.clone()), "span {id} answered twice");
        }
        next = page["page"]["next"].as_str().map(str::to_owned);
        pages += 1;
        assert!(pages <= 4, "paging ends");
    }
    assert_eq!((pages, seen.len() as u64), (3, SPANS), "every span exactly once");

    // A smaller page on request; the views page the same way.
    let (_, small) = get_json(&node.api("/api/v1/correlate/huge-1/timeline?limit=100&offset=29950")).await;
    assert_eq!(small["timeline"].as_array().map(Vec::len), Some(50));
    assert_eq!((small["truncated"].clone(), small["page"]["next"].clone()), (Value::Bool(true), Value::Null));
    let (status, impact) = get_json(&node.api("/api/v1/correlate/huge-1/impact?limit=10")).await;
    assert_eq!((status, impact["operations"].as_array().map(Vec::len)), (200, Some(10)));
    // The trace's spans too.
    let (status, trace) = get_json(&node.api(&format!("/api/v1/traces/{}", hex::encode(TRACE)))).await;
    assert_eq!(status, 200);
    assert_eq!((trace["spans"].as_array().map(Vec::len), trace["truncated"].clone()), (Some(PAGE_MAX), Value::Bool(true)));
    let (status, _) = get_json(&node.api("/api/v1/correlate/huge-1?limit=10001")).await;
    assert_eq!(status, 400, "no page above the cap");
    node.node.shutdown().await;
}

/// One request holding one span for each of `ids` (each its own session
/// and trace) from `service`.
fn many_sessions(service: &str, ids: impl Iterator<Item = u64>) -> ExportTraceServiceRequest {
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(V::StringValue(v.into())) }),
        ..Default::default()
    };
    let spans = ids
        .map(|i| Span {
            trace_id: [&[1u8; 8][..], &i.to_be_bytes()].concat(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            name: "GET /".into(),
            start_time_unix_nano: 1_700_000_000_000_000_000 + i,
            end_time_unix_nano: 1_700_000_000_000_000_000 + i + 500,
            attributes: vec![kv("correlation_id", &format!("list-{i}"))],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", service)], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_matches_nothing_answers_at_once() {
    const SESSIONS: u64 = 3_000;
    let node = start_node(|f| f.session.idle_timeout_ms = 200).await;
    let client = reqwest::Client::new();
    for chunk in (0..SESSIONS).step_by(500) {
        send(&node, &client, many_sessions("bulk", chunk..chunk + 500)).await;
    }
    send(&node, &client, many_sessions("rare", SESSIONS..SESSIONS + 1)).await;
    // Until every session finished and is listed from the archive.
    let rare = node.api("/api/v1/sessions?service=rare");
    let archived = eventually(Duration::from_secs(60), || {
        let (url, all) = (rare.clone(), node.api("/api/v1/sessions?limit=1000"));
        async move {
            let (_, rare) = get_json(&url).await;
            let (_, all) = get_json(&all).await;
            let rows = all["sessions"].as_array()?;
            let settled = rare["sessions"][0]["live"] == false && rows.len() == 1000 && rows.iter().all(|r| r["live"] == false);
            settled.then_some(rare)
        }
    })
    .await;
    let ids: Vec<&Value> = archived["sessions"].as_array().expect("rows").iter().map(|r| &r["correlation_id"]).collect();
    assert_eq!(ids, ["list-3000"], "the one session of that service, from the service index");

    let mut worst = Duration::ZERO;
    for query in ["service=nowhere", "service=nowhere&status=error", "status=error", "service=bulk&status=error"] {
        let started = Instant::now();
        let (status, body) = get_json(&node.api(&format!("/api/v1/sessions?{query}"))).await;
        worst = worst.max(started.elapsed());
        assert_eq!(status, 200, "{query}");
        assert_eq!(body["sessions"], serde_json::json!([]), "{query}");
        assert_eq!((body["stopped_early"].clone(), body["next"].clone()), (Value::Bool(false), Value::Null), "{query}");
    }
    eprintln!("listings over {SESSIONS} archived sessions matching nothing: slowest answered in {worst:?}");
    assert!(worst < Duration::from_secs(5), "answered promptly: {worst:?}");
    let (_, bulk) = get_json(&node.api("/api/v1/sessions?service=bulk&limit=7")).await;
    assert_eq!(bulk["sessions"].as_array().map(Vec::len), Some(7));
    node.node.shutdown().await;
}
