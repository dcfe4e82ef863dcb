//! The ClickHouse storage path against real ClickHouse SQL (chdb behind the
//! test HTTP front, see `tools/chdb-http`): sessions ingested over OTLP
//! finish, flush to `otel_traces` / `otel_logs` / `sessions`, and the API
//! answers the same before and after; injected insert failures and an
//! outage lose nothing and duplicate nothing.

mod common;

use std::time::Duration;

use common::chdb::ChdbServer;
use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::Value;

const DB: &str = "olly";

async fn start_ch_node(chdb: &ChdbServer, idle_ms: u64) -> TestNode {
    let _ = tracing_subscriber::fmt().with_env_filter(std::env::var("RUST_LOG").unwrap_or_default()).try_init();
    let url = chdb.url.clone();
    start_node(move |f| {
        f.storage.backend = "clickhouse".into();
        f.clickhouse.url = url;
        f.clickhouse.database = DB.into();
        f.clickhouse.compression = false;
        f.clickhouse.batch_max_delay_ms = 50;
        f.clickhouse.retry_initial_ms = 50;
        f.clickhouse.retry_max_ms = 400;
        f.session.idle_timeout_ms = idle_ms;
    })
    .await
}

/// Waits until the node applied every migration.
async fn migrated(chdb: &ChdbServer) {
    let want = ollystack_node::store::clickhouse::MIGRATIONS.len() as u64;
    let table = format!("SELECT count() FROM system.tables WHERE database = '{DB}' AND name = 'ollystack_migrations'");
    eventually(Duration::from_secs(60), || async {
        (count(chdb, &table) == 1 && count(chdb, &format!("SELECT count() FROM {DB}.ollystack_migrations")) == want).then_some(())
    })
    .await;
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(V::StringValue(v.into())) }), ..Default::default() }
}

fn log_request(service: &str, id: &str, trace: [u8; 16], body: &str) -> ExportLogsServiceRequest {
    let record = LogRecord {
        time_unix_nano: 1_700_000_000_000_000_500,
        severity_text: "ERROR".into(),
        severity_number: 17,
        body: Some(AnyValue { value: Some(V::StringValue(body.into())) }),
        attributes: vec![kv("correlation_id", id)],
        trace_id: trace.to_vec(),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource { attributes: vec![kv("service.name", service)], ..Default::default() }),
            scope_logs: vec![ScopeLogs { log_records: vec![record], ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// Sends one session: spans from three services and an error log.
async fn send_session(node: &TestNode, id: &str, trace: [u8; 16]) {
    let client = reqwest::Client::new();
    let traces = format!("{}/v1/traces", node.otlp_http());
    for (i, service) in ["web", "checkout", "payments"].into_iter().enumerate() {
        let req = trace_request(service, Some(id), trace, i as u64 * 10, 2);
        assert_eq!(post_protobuf(&client, &traces, req.encode_to_vec()).await.status(), 200);
    }
    let logs = format!("{}/v1/logs", node.otlp_http());
    let req = log_request("payments", id, trace, "card declined");
    assert_eq!(post_protobuf(&client, &logs, req.encode_to_vec()).await.status(), 200);
}

/// One number from a query (TabSeparated).
fn count(chdb: &ChdbServer, sql: &str) -> u64 {
    chdb.query(sql).trim().parse().unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn metric(node: &TestNode, name: &str) -> u64 {
    let text = reqwest::get(node.api("/metrics")).await.expect("metrics").text().await.expect("text");
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(0)
}

/// Waits until ClickHouse holds `sessions` session rows and nothing waits.
async fn flushed(node: &TestNode, chdb: &ChdbServer, sessions: u64) {
    eventually(Duration::from_secs(60), || async {
        let rows = count(chdb, &format!("SELECT count() FROM {DB}.sessions"));
        let waiting = metric(node, "ollystack_clickhouse_pending_segments ").await;
        (rows >= sessions && waiting == 0).then_some(())
    })
    .await;
}

fn without_live(mut v: Value) -> Value {
    v.as_object_mut().expect("object").remove("live");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_session_flushes_and_answers_the_same() {
    let chdb = ChdbServer::start();
    let node = start_ch_node(&chdb, 400).await;
    migrated(&chdb).await;
    send_session(&node, "order-1", [0x11; 16]).await;
    let live = correlate_until(&node, "order-1", |b| b["live"] == true && b["summary"]["total_spans"] == 6).await;

    flushed(&node, &chdb, 1).await;
    let (status, after) = get_json(&node.api("/api/v1/correlate/order-1")).await;
    assert_eq!(status, 200);
    assert_eq!(after["live"], false);
    assert_eq!(without_live(after), without_live(live), "same answer before and after the flush");

    // The rows, as Grafana reads them.
    let q = |sql: &str| count(&chdb, sql);
    assert_eq!(q(&format!("SELECT count() FROM {DB}.otel_traces WHERE correlation_id = 'order-1'")), 6);
    assert_eq!(q(&format!("SELECT uniqExact(ServiceName) FROM {DB}.otel_traces WHERE correlation_id = 'order-1'")), 3);
    assert_eq!(q(&format!("SELECT count() FROM {DB}.otel_traces WHERE TraceId = '{}'", "11".repeat(16))), 6);
    assert_eq!(q(&format!("SELECT count() FROM {DB}.otel_logs WHERE correlation_id = 'order-1' AND SeverityText = 'ERROR'")), 1);
    let row = chdb.query(&format!(
        "SELECT correlation_id, span_count, log_count, error_count, arrayStringConcat(services, ',') FROM {DB}.sessions FORMAT TSV"
    ));
    assert_eq!(row.trim(), "order-1\t6\t1\t1\tcheckout,payments,web");

    // Listing and the other endpoints answer from ClickHouse too.
    for path in [
        "/api/v1/sessions?limit=10",
        "/api/v1/sessions?service=payments&status=error&since=2000-01-01T00:00:00Z&limit=5",
        "/api/v1/correlate/order-1/timeline",
        "/api/v1/correlate/order-1/impact",
    ] {
        let (status, body) = get_json(&node.api(path)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // Every statement the node issues ran against the migrated schema: the
    // answers above are 200s, and these are the node's own statements.
    let statements = chdb.statements();
    for (what, needle) in [
        ("session read", "FROM sessions WHERE tenant_id = 'default' AND correlation_id = 'order-1'"),
        ("listing", "FROM sessions WHERE tenant_id = 'default' AND ('payments' = '' OR has(services, 'payments'))"),
        ("spans insert", "INSERT INTO `otel_traces`"),
        ("logs insert", "INSERT INTO `otel_logs`"),
        ("sessions insert", "INSERT INTO `sessions`"),
    ] {
        assert!(statements.iter().any(|s| s.contains(needle)), "no {what} statement ({needle}) in {statements:#?}");
    }
    // Windows of per-incident RCA select ClickHouse sessions by event time.
    let client = reqwest::Client::new();
    for (start, sessions) in [(1_699_999_999_000_000_000u64, 1), (1_700_000_100_000_000_000, 0)] {
        let window = serde_json::json!({"start": start, "end": start + 2_000_000_000});
        let resp = client.post(node.api("/api/v1/ai/analyze")).json(&window).send().await.expect("post");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["sessions"]["incident"], sessions, "{body}");
    }
    assert!(chdb.statements().iter().any(|s| s.contains("last_seen >= fromUnixTimestamp64Nano(1699999999000000000)")));
    let (_, list) = get_json(&node.api("/api/v1/sessions?service=payments&status=error")).await;
    assert_eq!(list["sessions"][0]["correlation_id"], "order-1", "{list}");
    let (_, none) = get_json(&node.api("/api/v1/sessions?service=nope")).await;
    assert_eq!(none["sessions"].as_array().map(Vec::len), Some(0), "{none}");
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_failures_lose_nothing_and_duplicate_nothing() {
    let chdb = ChdbServer::start();
    let node = start_ch_node(&chdb, 300).await;
    // Let migrations finish so the faults hit the flusher's inserts.
    migrated(&chdb).await;
    // The logs insert fails twice after the traces insert committed (an
    // error mid-batch), then the sessions insert commits but its reply is
    // lost: every retry carries the same token.
    chdb.set_faults(serde_json::json!({
        "fail_inserts": 2, "fail_inserts_table": "otel_logs",
        "lose_reply_inserts": 1, "lose_reply_inserts_table": "sessions",
    }));
    for i in 0..5u8 {
        send_session(&node, &format!("order-{i}"), [i + 1; 16]).await;
    }
    flushed(&node, &chdb, 5).await;
    let q = |sql: &str| count(&chdb, sql);
    assert_eq!(q(&format!("SELECT count() FROM {DB}.sessions")), 5);
    assert_eq!(q(&format!("SELECT count() FROM {DB}.otel_traces")), 30, "no span lost or duplicated");
    assert_eq!(q(&format!("SELECT uniqExact(TraceId, SpanId) FROM {DB}.otel_traces")), 30);
    assert_eq!(q(&format!("SELECT count() FROM {DB}.otel_logs")), 5);
    let faults = chdb.faults();
    assert_eq!(faults["fail_inserts"], 0, "both failures were injected: {faults}");
    assert_eq!(faults["lose_reply_inserts"], 0, "the lost reply was injected: {faults}");
    assert!(metric(&node, "ollystack_flush_failures_total ").await >= 3);
    for i in 0..5 {
        let body = correlate_until(&node, &format!("order-{i}"), |b| b["live"] == false).await;
        assert_eq!(body["summary"]["total_spans"], 6);
    }
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_backs_up_and_drains() {
    let chdb = ChdbServer::start();
    let node = start_ch_node(&chdb, 300).await;
    migrated(&chdb).await;
    chdb.set_faults(serde_json::json!({ "down": true }));
    for i in 0..4u8 {
        send_session(&node, &format!("down-{i}"), [0x40 + i; 16]).await;
    }
    // Finished, waiting for ClickHouse, and still answered.
    eventually(Duration::from_secs(30), || async { (metric(&node, "ollystack_clickhouse_pending_segments ").await == 4).then_some(()) })
        .await;
    let body = correlate_until(&node, "down-2", |b| b["live"] == false).await;
    assert_eq!(body["summary"]["total_spans"], 6);
    assert!(metric(&node, "ollystack_wal_bytes ").await > 0, "the backlog is held in the WAL");

    chdb.set_faults(serde_json::json!({ "down": false }));
    flushed(&node, &chdb, 4).await;
    assert_eq!(count(&chdb, &format!("SELECT count() FROM {DB}.otel_traces")), 24);
    assert_eq!(count(&chdb, &format!("SELECT count() FROM {DB}.sessions")), 4);
    let body = correlate_until(&node, "down-2", |b| b["live"] == false).await;
    assert_eq!(body["summary"]["total_spans"], 6);
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_over_the_wal_bound_sheds_load_and_keeps_what_was_acknowledged() {
    let chdb = ChdbServer::start();
    chdb.set_faults(serde_json::json!({ "down": true }));
    let url = chdb.url.clone();
    let node = start_node(move |f| {
        f.storage.backend = "clickhouse".into();
        f.storage.wal_max_bytes = 1 << 20;
        f.clickhouse.url = url;
        f.clickhouse.database = DB.into();
        f.clickhouse.compression = false;
        f.clickhouse.batch_max_delay_ms = 50;
        f.clickhouse.retry_initial_ms = 50;
        f.clickhouse.retry_max_ms = 200;
        f.session.idle_timeout_ms = 200;
    })
    .await;
    let client = reqwest::Client::new();
    let traces = format!("{}/v1/traces", node.otlp_http());
    let (mut acknowledged, mut shed) = (0u64, false);
    for i in 0..400u64 {
        let mut trace = [0u8; 16];
        trace[..8].copy_from_slice(&(i + 1).to_be_bytes());
        let req = trace_request("web", Some(&format!("bulk-{i}")), trace, 0, 200);
        let resp = post_protobuf(&client, &traces, req.encode_to_vec()).await;
        match resp.status().as_u16() {
            200 => acknowledged += 1,
            429 => {
                assert!(resp.headers().contains_key("retry-after"), "429 says when to retry");
                shed = true;
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(shed, "ingest sheds once the WAL holds more than its bound");
    assert!(acknowledged > 0);

    chdb.set_faults(serde_json::json!({ "down": false }));
    migrated(&chdb).await;
    flushed(&node, &chdb, acknowledged).await;
    assert_eq!(count(&chdb, &format!("SELECT count() FROM {DB}.sessions")), acknowledged);
    assert_eq!(count(&chdb, &format!("SELECT count() FROM {DB}.otel_traces")), acknowledged * 200, "every acknowledged span, once");
    // Drained: ingest is accepted again.
    let req = trace_request("web", Some("after"), [0xee; 16], 0, 1);
    assert_eq!(post_protobuf(&client, &traces, req.encode_to_vec()).await.status(), 200);
    node.node.shutdown().await;
}
