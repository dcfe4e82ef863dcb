//! Bad input gets a clear error (or its ID replaced and counted) and loses
//! nothing else; overload answers "retry later" and drops nothing accepted.

mod common;

use common::*;
use prost::Message;

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_huge_ids_and_nul_bytes() {
    let node = start_node(|_| {}).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", node.otlp_http());

    let resp = post_protobuf(&client, &url, b"\xff\xff\xff garbage that is not protobuf".to_vec()).await;
    assert_eq!(resp.status(), 400);

    let huge = "x".repeat(5 * 1024 * 1024);
    let req = trace_request("api", Some(&huge), [3; 16], 0, 1);
    assert_eq!(post_protobuf(&client, &url, req.encode_to_vec()).await.status(), 200);
    let req = trace_request("api", Some("evil\0id"), [4; 16], 0, 1);
    assert_eq!(post_protobuf(&client, &url, req.encode_to_vec()).await.status(), 200);
    let req = trace_request("api", Some("<script>alert(1)</script>"), [5; 16], 0, 1);
    assert_eq!(post_protobuf(&client, &url, req.encode_to_vec()).await.status(), 200);

    // Each span kept, under its trace-derived ID.
    for t in [3u8, 4, 5] {
        let (s, b) = get_json(&node.api(&format!("/api/v1/traces/{}", hex::encode([t; 16])))).await;
        assert_eq!(s, 200, "{b}");
        assert!(b["correlation_id"].as_str().expect("id").starts_with("olly-"));
    }
    let (_, m) = get_json(&node.api("/metrics")).await;
    let m = m.as_str().expect("text").to_owned();
    assert_eq!(metric(&m, "ollystack_correlation_ids_rejected_total{reason=\"too_long\"}"), 1, "{m}");
    assert_eq!(metric(&m, "ollystack_correlation_ids_rejected_total{reason=\"control_bytes\"}"), 1, "{m}");
    assert_eq!(metric(&m, "ollystack_ingest_items_total{signal=\"spans\"}"), 3, "{m}");

    // Invalid IDs in the API are a 400, unknown ones a 404 — as JSON.
    let (s, b) = get_json(&node.api("/api/v1/correlate/bad%20id")).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = get_json(&node.api("/api/v1/correlate/nobody-knows-me")).await;
    assert_eq!(s, 404, "{b}");
    assert!(b["error"]["message"].is_string());
    let (s, _) = get_json(&node.api("/healthz")).await;
    assert_eq!(s, 200);
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_retryable_and_keeps_what_was_accepted() {
    let node = start_node(|f| f.session.memory_budget_bytes = 1 << 20).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", node.otlp_http());
    let mut accepted = 0u64;
    let mut refused = false;
    for i in 0..200u64 {
        let req = trace_request("api", Some("heavy"), [9; 16], i * 100, 100);
        let resp = post_protobuf(&client, &url, req.encode_to_vec()).await;
        match resp.status().as_u16() {
            200 => accepted += 100,
            429 => {
                assert!(resp.headers().get("retry-after").is_some(), "429 carries Retry-After");
                refused = true;
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(refused, "a 1 MiB budget must refuse some of 20k spans");
    assert!(accepted > 0);
    let body = correlate_until(&node, "heavy", |b| b["summary"]["total_spans"].as_u64().is_some()).await;
    assert_eq!(body["summary"]["total_spans"].as_u64(), Some(accepted));
    let (s, _) = get_json(&node.api("/healthz")).await;
    assert_eq!(s, 200);
    node.node.shutdown().await;
}
