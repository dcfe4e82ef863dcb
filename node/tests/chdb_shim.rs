//! The ClickHouse HTTP front over chdb (tools/chdb-http) serves the real
//! `clickhouse` crate: DDL, validated RowBinaryWithNamesAndTypes inserts and
//! fetches of the column types the schema uses (Map, DateTime64(9), Array,
//! LowCardinality, Nested), bound and server-side parameters, ClickHouse's
//! error text, insert deduplication tokens, and each injected fault.

mod common;

use std::future::Future;
use std::time::Duration;

use clickhouse::{Client, Row};
use common::chdb::ChdbServer;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct SpanRow {
    #[serde(rename = "Timestamp")]
    timestamp: i64,
    #[serde(rename = "TraceId")]
    trace_id: String,
    #[serde(rename = "ServiceName")]
    service_name: String,
    #[serde(rename = "DurationNs")]
    duration_ns: u64,
    #[serde(rename = "Score")]
    score: f64,
    #[serde(rename = "Attributes")]
    attributes: Vec<(String, String)>,
    #[serde(rename = "Tags")]
    tags: Vec<String>,
    #[serde(rename = "Events.Timestamp")]
    events_timestamp: Vec<i64>,
    #[serde(rename = "Events.Name")]
    events_name: Vec<String>,
}

const CREATE_SPANS: &str = "CREATE TABLE spans (
    Timestamp DateTime64(9),
    TraceId String,
    ServiceName LowCardinality(String),
    DurationNs UInt64,
    Score Float64,
    Attributes Map(LowCardinality(String), String),
    Tags Array(LowCardinality(String)),
    Events Nested(Timestamp DateTime64(9), Name LowCardinality(String))
) ENGINE = MergeTree ORDER BY (ServiceName, Timestamp)
SETTINGS non_replicated_deduplication_window = 1000";

fn span(i: u64, service: &str) -> SpanRow {
    let ts = 1_700_000_000_123_456_789 + i as i64;
    SpanRow {
        timestamp: ts,
        trace_id: format!("trace-{i}"),
        service_name: service.into(),
        duration_ns: 1_000 * i,
        score: i as f64 + 0.5,
        attributes: vec![("correlation_id".into(), format!("c-{i}")), ("http.method".into(), "GET".into())],
        tags: vec!["a".into(), format!("t{i}")],
        events_timestamp: vec![ts + 1, ts + 2],
        events_name: vec!["start".into(), "end".into()],
    }
}

/// Every test stops by itself: a hung shim fails the test instead.
async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), fut).await.expect("test step finished within 120 s")
}

/// A shim with database `db` holding the `spans` table, and a client on `db`.
async fn setup() -> (ChdbServer, Client) {
    let server = ChdbServer::start();
    server.client().query("CREATE DATABASE db").execute().await.expect("create database");
    let client = server.client().with_database("db");
    client.query(CREATE_SPANS).execute().await.expect("create table");
    (server, client)
}

async fn insert(client: &Client, rows: &[SpanRow], token: Option<&str>) -> clickhouse::error::Result<()> {
    let mut insert = client.insert::<SpanRow>("spans").await?;
    if let Some(token) = token {
        insert = insert.with_option("insert_deduplication_token", token);
    }
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}

async fn count(client: &Client) -> u64 {
    client.query("SELECT count() FROM spans").fetch_one::<u64>().await.expect("count")
}

#[tokio::test]
async fn round_trip_of_schema_types_with_bound_parameters() {
    bounded(async {
        let (server, client) = setup().await;
        let rows = vec![span(1, "checkout"), span(2, "checkout"), span(3, "payments")];
        insert(&client, &rows, None).await.expect("insert");

        let got = client
            .query("SELECT ?fields FROM spans WHERE ServiceName = ? AND DurationNs >= ? ORDER BY Timestamp")
            .bind("checkout")
            .bind(1_000u64)
            .fetch_all::<SpanRow>()
            .await
            .expect("fetch");
        assert_eq!(got, rows[..2]);

        // A bound value stays one string literal.
        let none =
            client.query("SELECT ?fields FROM spans WHERE TraceId = ?").bind("x' OR 1=1 --").fetch_all::<SpanRow>().await.expect("fetch");
        assert!(none.is_empty());

        // Server-side parameters (`param_*` URL parameters).
        let n = client
            .query("SELECT count() FROM spans WHERE ServiceName = {svc:String}")
            .param("svc", "payments")
            .fetch_one::<u64>()
            .await
            .expect("param query");
        assert_eq!(n, 1);

        // The harness sees the same data, and every statement was logged.
        let tsv = server.query("SELECT TraceId, Attributes['correlation_id'], Events.Name FROM db.spans ORDER BY Timestamp");
        assert_eq!(tsv, "trace-1\tc-1\t['start','end']\ntrace-2\tc-2\t['start','end']\ntrace-3\tc-3\t['start','end']\n");
        let statements = server.statements();
        assert!(statements.iter().any(|s| s.starts_with("CREATE TABLE spans")), "{statements:?}");
        assert!(statements.iter().any(|s| s.starts_with("DESCRIBE TABLE `spans`")), "{statements:?}");
        assert!(statements.iter().any(|s| s.starts_with("INSERT INTO `spans`(`Timestamp`,")), "{statements:?}");
        assert_eq!(server.faults()["inserts"]["spans"], 1);
    })
    .await
}

#[tokio::test]
async fn errors_carry_the_clickhouse_message() {
    bounded(async {
        let (server, client) = setup().await;
        let err = client.query("SELECT count() FROM missing").fetch_one::<u64>().await.expect_err("missing table").to_string();
        assert!(err.contains("Code: 60. DB::Exception:") && err.contains("UNKNOWN_TABLE"), "{err}");

        // The client's schema lookup (DESCRIBE TABLE) fails the same way.
        let err = client.insert::<SpanRow>("missing").await.err().expect("insert into a missing table fails").to_string();
        assert!(err.contains("Code: 60.") && err.contains("missing"), "{err}");

        let err = client.query("SELEC 1").execute().await.expect_err("syntax error").to_string();
        assert!(err.contains("Code: 62.") && err.contains("SYNTAX_ERROR"), "{err}");

        let err = client.clone().with_database("nodb").query("SELECT 1").execute().await.expect_err("missing database").to_string();
        assert!(err.contains("Code: 81.") && err.contains("UNKNOWN_DATABASE"), "{err}");

        // A client asking for compression gets a clear refusal.
        let lz4 = client.clone().with_compression(clickhouse::Compression::Lz4);
        let err = lz4.query("SELECT 1").execute().await.expect_err("compression refused").to_string();
        assert!(err.contains("does not implement compressed responses"), "{err}");

        // The session is unharmed: database and settings do not leak.
        assert_eq!(server.query("SELECT currentDatabase()"), "default\n");
        assert_eq!(count(&client).await, 0);
    })
    .await
}

#[tokio::test]
async fn insert_deduplication_token_deduplicates() {
    bounded(async {
        let (server, client) = setup().await;
        insert(&client, &[span(1, "a"), span(2, "a")], Some("batch-1")).await.expect("first insert");
        // A retry of "the same batch" with other rows: dropped by the token.
        insert(&client, &[span(3, "a")], Some("batch-1")).await.expect("deduplicated insert answers OK");
        let traces = server.query("SELECT TraceId FROM db.spans ORDER BY TraceId");
        assert_eq!(traces, "trace-1\ntrace-2\n");
        // Another token lands, and the token does not stick to later requests.
        insert(&client, &[span(3, "a")], Some("batch-2")).await.expect("insert");
        insert(&client, &[span(4, "a")], None).await.expect("insert");
        assert_eq!(count(&client).await, 4);
        assert_eq!(server.query("SELECT getSetting('insert_deduplication_token')"), "\n");
    })
    .await
}

#[tokio::test]
async fn fail_inserts_fault_fails_without_writing() {
    bounded(async {
        let (server, client) = setup().await;
        client.query("CREATE TABLE other AS spans").execute().await.expect("create other");
        server.set_faults(json!({"fail_inserts": 1, "fail_inserts_table": "spans"}));

        let mut other = client.insert::<SpanRow>("other").await.expect("insert other");
        other.write(&span(9, "x")).await.expect("write other");
        other.end().await.expect("other tables are not faulted");

        let err = insert(&client, &[span(1, "a")], None).await.expect_err("faulted insert").to_string();
        assert!(err.contains("Injected fault") && err.contains("Code: 1002."), "{err}");
        assert_eq!(count(&client).await, 0);

        insert(&client, &[span(1, "a")], None).await.expect("the next insert succeeds");
        assert_eq!(count(&client).await, 1);
        let faults = server.faults();
        assert_eq!(faults["fail_inserts"], 0);
        assert_eq!(faults["insert_attempts"]["spans"], 2);
        assert_eq!(faults["inserts"]["spans"], 1);
        assert_eq!(faults["inserts"]["other"], 1);
    })
    .await
}

#[tokio::test]
async fn lose_reply_fault_commits_but_the_client_errors() {
    bounded(async {
        let (server, client) = setup().await;
        server.set_faults(json!({"lose_reply_inserts": 1}));
        let err = insert(&client, &[span(1, "a"), span(2, "a")], None).await.expect_err("reply lost");
        assert!(!matches!(err, clickhouse::error::Error::BadResponse(_)), "a transport error, not an answer: {err}");
        assert_eq!(count(&client).await, 2, "the rows were committed");
        let faults = server.faults();
        assert_eq!(faults["lose_reply_inserts"], 0);
        assert_eq!(faults["inserts"]["spans"], 1);
        assert_eq!(faults["insert_attempts"]["spans"], 1);
    })
    .await
}

#[tokio::test]
async fn down_fault_closes_every_connection_until_lifted() {
    bounded(async {
        let (server, client) = setup().await;
        assert_eq!(count(&client).await, 0);
        server.set_faults(json!({"down": true}));
        let err = client.query("SELECT 1").execute().await.expect_err("server down");
        assert!(!matches!(err, clickhouse::error::Error::BadResponse(_)), "{err}");
        assert!(insert(&client, &[span(1, "a")], None).await.is_err());
        assert_eq!(server.faults()["down"], true);
        server.set_faults(json!({"down": false}));
        insert(&client, &[span(1, "a")], None).await.expect("insert after the fault is lifted");
        assert_eq!(count(&client).await, 1);
    })
    .await
}
