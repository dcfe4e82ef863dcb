//! `kill -9` a real `ollystack-node` process under load, restart it on the
//! same data dir, and check that every acknowledged span is there exactly
//! once — both those already archived and those only in the WAL.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use prost::Message;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Proc {
    child: Child,
    http: String,
    api: String,
}

async fn spawn_node(dir: &std::path::Path) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ollystack-node"))
        .args([
            "start",
            "--listen-otlp-grpc",
            "127.0.0.1:0",
            "--listen-otlp-http",
            "127.0.0.1:0",
            "--listen-api",
            "127.0.0.1:0",
            "--listen-cluster",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(["--session-idle-timeout-ms", "1500", "--session-tick-interval-ms", "100", "--log", "warn"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line.starts_with("ollystack-node ready:") {
                return line;
            }
        }
        panic!("node exited before it was ready");
    })
    .await
    .expect("node ready in time");
    // "ollystack-node ready: otlp grpc A | otlp http B | api http://C"
    let field = |name: &str| ready.split(name).nth(1).and_then(|s| s.split_whitespace().next()).expect("address").to_owned();
    Proc { child, http: format!("http://{}", field("otlp http ")), api: field("api ") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::Client::new();
    let mut node = spawn_node(dir.path()).await;

    // Phase 1: a session that finishes and is archived before the crash.
    let req = trace_request("api", Some("archived-1"), [1; 16], 0, 20);
    assert_eq!(post_protobuf(&client, &format!("{}/v1/traces", node.http), req.encode_to_vec()).await.status(), 200);
    let api = node.api.clone();
    eventually(Duration::from_secs(20), || {
        let url = format!("{api}/api/v1/correlate/archived-1");
        async move {
            let (s, b) = get_json(&url).await;
            (s == 200 && b["live"] == false).then_some(())
        }
    })
    .await;

    // Phase 2: load that is only in the WAL when the process dies.
    let mut acked = 0u64;
    for i in 0..30u64 {
        let id = format!("live-{}", i % 5);
        let mut trace = [2u8; 16];
        trace[0] = (i % 5) as u8 + 10;
        let req = trace_request("api", Some(&id), trace, i * 10, 10);
        let resp = post_protobuf(&client, &format!("{}/v1/traces", node.http), req.encode_to_vec()).await;
        assert_eq!(resp.status(), 200);
        acked += 10;
    }
    node.child.kill().await.expect("kill -9");

    let node = spawn_node(dir.path()).await;
    let (s, b) = get_json(&format!("{}/api/v1/correlate/archived-1", node.api)).await;
    assert_eq!(s, 200);
    assert_eq!(b["summary"]["total_spans"], 20);
    let mut total = 0;
    for k in 0..5 {
        let (s, b) = get_json(&format!("{}/api/v1/correlate/live-{k}", node.api)).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["summary"]["total_spans"], 60, "live-{k}: {b}");
        let mut ids: Vec<String> =
            b["traces"].as_array().expect("traces").iter().map(|t| t["span_id"].as_str().unwrap_or("").to_owned()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 60, "no span twice");
        total += 60;
    }
    assert_eq!(total, acked);
}
