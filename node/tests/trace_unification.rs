//! Trace unification across batches and segment boundaries: spans of a
//! trace that arrive without an ID land in the trace-derived session; when
//! the root span arrives later with an explicit ID, everything joins that
//! session — also when the derived session was already finished and
//! archived, and also after a restart (the alias is replayed from the WAL).

mod common;

use common::*;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_root_pulls_archived_and_live_children_into_its_session() {
    let node = start_node(|f| {
        f.session.idle_timeout_ms = 300;
        f.session.max_age_ms = 600_000;
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", node.otlp_http());
    let trace = [0x42; 16];

    // Children without an ID: trace-derived session, finished and archived.
    let children = trace_request("inventory", None, trace, 1, 3);
    assert_eq!(post_protobuf(&client, &url, children.encode_to_vec()).await.status(), 200);
    let (_, t) = get_json(&node.api(&format!("/api/v1/traces/{}", hex::encode(trace)))).await;
    let derived = t["correlation_id"].as_str().expect("derived id").to_owned();
    assert!(derived.starts_with("olly-"));
    correlate_until(&node, &derived, |b| b["live"] == false && b["summary"]["total_spans"] == 3).await;

    // The root arrives last, with the explicit ID.
    let root = trace_request("web", Some("checkout-77"), trace, 0, 1);
    assert_eq!(post_protobuf(&client, &url, root.encode_to_vec()).await.status(), 200);
    let body = correlate_until(&node, "checkout-77", |b| b["summary"]["total_spans"] == 4).await;
    assert_eq!(strs(&body["services"]), vec!["inventory", "web"]);

    // More spans of the trace without an ID follow the trace's explicit ID.
    let late = trace_request("inventory", None, trace, 10, 2);
    assert_eq!(post_protobuf(&client, &url, late.encode_to_vec()).await.status(), 200);
    correlate_until(&node, "checkout-77", |b| b["summary"]["total_spans"] == 6).await;

    // The derived ID now answers with the explicit session.
    let (s, b) = get_json(&node.api(&format!("/api/v1/correlate/{derived}"))).await;
    assert_eq!(s, 200);
    assert_eq!(b["correlation_id"], "checkout-77");

    // After a restart on the same data dir, nothing is split.
    let dir = node.dir;
    node.node.shutdown().await;
    let cfg = test_config(dir.path(), |f| f.session.idle_timeout_ms = 300).build_and_validate().expect("config");
    let node = TestNode { node: ollystack_node::server::start(cfg).await.expect("restart"), dir };
    let body = correlate_until(&node, "checkout-77", |b| b["summary"]["total_spans"] == 6).await;
    let mut ids: Vec<&str> = body["traces"].as_array().expect("traces").iter().filter_map(|t| t["span_id"].as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "every span once");
    node.node.shutdown().await;
}
