//! Bounds on live sessions, as the network-safety issue found them missing:
//! 200,000 distinct IDs took 2.1 GB while the budget counted 29.6 MB (a
//! session's own overhead was not counted, and nothing capped how many
//! were live); 500,000 spans under one ID became one segment although
//! `max_spans` is 10,000.

mod common;

use std::time::Duration;

use common::*;
use prost::Message;

/// One request with a span for each of `ids` distinct correlation IDs.
fn many_ids(prefix: &str, ids: u64) -> Vec<u8> {
    let mut req = trace_request("checkout", None, [0; 16], 0, 0);
    for i in 0..ids {
        let mut trace = [1u8; 16];
        trace[..8].copy_from_slice(&(i + 1).to_be_bytes());
        for (t, b) in trace[8..].iter_mut().zip(prefix.bytes()) {
            *t = b;
        }
        let one = trace_request("checkout", Some(&format!("{prefix}-{i}")), trace, i, 1);
        req.resource_spans.extend(one.resource_spans);
    }
    req.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sessions_are_capped_with_a_retryable_answer() {
    let node = start_node(|f| {
        f.session.max_live_sessions = 50;
        f.session.idle_timeout_ms = 500;
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", node.otlp_http());
    // More sessions than the cap in one batch: refused whole, retryably.
    let refused = post_protobuf(&client, &url, many_ids("wide", 80)).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    // Within the cap: taken.
    assert_eq!(post_protobuf(&client, &url, many_ids("first", 40)).await.status(), 200);
    // 40 live + 40 new passes the cap: refused until the first ones finish.
    assert_eq!(post_protobuf(&client, &url, many_ids("second", 40)).await.status(), 429);
    eventually(Duration::from_secs(20), || {
        let (client, url) = (client.clone(), url.clone());
        async move { (post_protobuf(&client, &url, many_ids("second", 40)).await.status() == 200).then_some(()) }
    })
    .await;
    for id in ["first-0", "first-39", "second-0", "second-39"] {
        let body = correlate_until(&node, id, |b| b["summary"]["total_spans"].as_u64() == Some(1)).await;
        assert_eq!(body["summary"]["total_spans"], 1, "{id}");
    }
    let text = metrics_text(&node).await;
    assert!(metric(&text, "ollystack_ingest_overloaded_total").unwrap_or(0) >= 2, "{text}");
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_live_session_counts_against_the_memory_budget() {
    // Room for about 85 sessions' overhead (12 KiB each).
    let node = start_node(|f| f.session.memory_budget_bytes = 1 << 20).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", node.otlp_http());
    assert_eq!(post_protobuf(&client, &url, many_ids("a", 60)).await.status(), 200);
    let text = metrics_text(&node).await;
    let used = metric(&text, "ollystack_memory_used_bytes").expect("memory gauge");
    assert!(used >= 60 * 12 * 1024, "60 live sessions hold at least their overhead; used {used}");
    // Another 60 do not fit: refused before anything is written.
    let refused = post_protobuf(&client, &url, many_ids("b", 60)).await;
    assert_eq!(refused.status(), 429);
    let (status, _) = get_json(&node.api("/api/v1/correlate/b-0")).await;
    assert_eq!(status, 404, "a refused batch leaves nothing behind");
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_huge_batch_for_one_id_becomes_bounded_segments() {
    let node = start_node(|f| {
        f.session.max_spans = 100;
        f.session.idle_timeout_ms = 300;
    })
    .await;
    let client = reqwest::Client::new();
    let body = trace_request("checkout", Some("order-huge"), [9; 16], 0, 1_050).encode_to_vec();
    assert_eq!(post_protobuf(&client, &format!("{}/v1/traces", node.otlp_http()), body).await.status(), 200);
    let body = correlate_until(&node, "order-huge", |b| b["summary"]["total_spans"].as_u64() == Some(1_050)).await;
    assert_eq!(body["summary"]["total_spans"], 1_050);
    // Every segment finished at the span cap or (the last) when idle, and
    // none holds more than twice the cap.
    let finished = eventually(Duration::from_secs(20), || {
        let node = &node;
        async move {
            let text = metrics_text(node).await;
            let by_cap = metric(&text, "ollystack_sessions_finished_total{reason=\"span_cap\"}").unwrap_or(0);
            let idle = metric(&text, "ollystack_sessions_finished_total{reason=\"idle\"}").unwrap_or(0);
            (by_cap + idle >= 6 && idle >= 1).then_some((by_cap, idle))
        }
    })
    .await;
    assert!(finished.0 >= 5, "1,050 spans with max_spans 100 finished in {finished:?} (span cap, idle) segments");
    let body = correlate_until(&node, "order-huge", |b| b["summary"]["total_spans"].as_u64() == Some(1_050)).await;
    assert_eq!(body["traces"].as_array().map(Vec::len), Some(1_050), "every span once, across segments");
    node.node.shutdown().await;
}
