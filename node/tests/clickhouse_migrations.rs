//! The ClickHouse schema (`migrations/`) and its runner against a real
//! ClickHouse engine (chdb behind the HTTP front, see `common::chdb`):
//! applying on an empty database, re-running as a no-op, refusing edited
//! files, naming the failing statement, accepting what Rust inserts into each
//! table (RowBinary, validated against the schema), feeding the
//! `correlation_summary` view, and the `ollystack-node migrate` command.

mod common;

use std::future::Future;
use std::process::Command;
use std::time::Duration;

use clickhouse::{Client, Row, RowOwned, RowWrite};
use common::chdb::ChdbServer;
use ollystack_node::store::clickhouse::{migrate, migrate_files, ClickHouseSettings, MigrateError, Migration};
use serde::{Serialize, Serializer};

/// Every table and view the migrations create, with its engine.
const EXPECTED: &[(&str, &str)] = &[
    ("correlation_summary", "AggregatingMergeTree"),
    ("correlation_summary_mv", "MaterializedView"),
    ("exemplar_traces", "View"),
    ("metric_exemplars", "MergeTree"),
    ("ollystack_migrations", "MergeTree"),
    ("otel_logs", "MergeTree"),
    ("otel_traces", "MergeTree"),
    ("otel_traces_trace_id_ts", "AggregatingMergeTree"),
    ("otel_traces_trace_id_ts_mv", "MaterializedView"),
    ("sessions", "MergeTree"),
];

const FILES: &[&str] =
    &["0001_otel_traces.sql", "0002_otel_logs.sql", "0003_sessions.sql", "0004_metric_exemplars.sql", "0005_correlation_summary.sql"];

/// Every test stops by itself: a hung shim fails the test instead.
async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(180), fut).await.expect("test step finished within 180 s")
}

fn settings(server: &ChdbServer, database: &str) -> ClickHouseSettings {
    ClickHouseSettings {
        url: server.url.clone(),
        database: database.into(),
        compression: false,
        ttl_days: 3,
        ..ClickHouseSettings::default()
    }
}

fn tables(server: &ChdbServer, database: &str) -> Vec<(String, String)> {
    let tsv = server.query(&format!("SELECT name, engine FROM system.tables WHERE database = '{database}' ORDER BY name"));
    tsv.lines()
        .map(|l| {
            let (name, engine) = l.split_once('\t').expect("two columns");
            (name.to_string(), engine.to_string())
        })
        .collect()
}

#[tokio::test]
async fn migrations_apply_on_an_empty_database_and_rerun_as_a_no_op() {
    bounded(async {
        let server = ChdbServer::start();
        let s = settings(&server, "olly");

        let report = migrate(&s).await.expect("first run");
        assert_eq!(report.applied.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), FILES);
        assert_eq!(report.applied.iter().map(|a| a.version).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert!(report.applied.iter().all(|a| a.statements >= 1));
        assert_eq!(report.already_applied, 0);
        assert_eq!(report.to_string(), format!("migrations: 5 applied, 0 already applied (database olly at {})", server.url));

        let expected: Vec<(String, String)> = EXPECTED.iter().map(|(n, e)| (n.to_string(), e.to_string())).collect();
        assert_eq!(tables(&server, "olly"), expected);

        // Each file recorded once, with its checksum and time.
        let recorded = server.query(
            "SELECT version, name, checksum != '', applied_at > now64(3) - INTERVAL 1 HOUR FROM olly.ollystack_migrations ORDER BY version",
        );
        let want: String = FILES.iter().enumerate().map(|(i, f)| format!("{}\t{f}\t1\t1\n", i + 1)).collect();
        assert_eq!(recorded, want);

        // The TTL placeholder became the configured days.
        let ddl = server.query("SELECT create_table_query FROM system.tables WHERE database = 'olly' AND name = 'sessions'");
        assert!(ddl.contains("toIntervalDay(3)"), "{ddl}");
        assert!(!ddl.contains("ttl_days"), "{ddl}");

        // Re-running applies nothing and runs no DDL of the files.
        let before = server.statements().len();
        let again = migrate(&s).await.expect("second run");
        assert!(again.applied.is_empty(), "{again:?}");
        assert_eq!(again.already_applied, 5);
        assert_eq!(again.to_string(), format!("migrations: 0 applied, 5 already applied (database olly at {})", server.url));
        let later = &server.statements()[before..];
        assert!(!later.iter().any(|s| s.contains("otel_traces") || s.contains("INSERT")), "{later:?}");
        assert_eq!(server.query("SELECT count() FROM olly.ollystack_migrations"), "5\n");
        assert_eq!(tables(&server, "olly"), expected);
    })
    .await;
}

#[tokio::test]
async fn a_failing_statement_names_file_and_statement_and_an_edited_file_is_refused() {
    bounded(async {
        let server = ChdbServer::start();
        let s = settings(&server, "scratch");
        let ok = Migration { version: 1, name: "0001_ok.sql", sql: "-- fine\nCREATE TABLE IF NOT EXISTS ok (x UInt8) ENGINE = Memory;\n" };
        let broken = Migration {
            version: 2,
            name: "0002_broken.sql",
            sql: "CREATE TABLE IF NOT EXISTS good (x UInt8) ENGINE = Memory;\n\
                  -- the next one cannot work\n\
                  CREATE TABLE IF NOT EXISTS broken (\n    x NoSuchType\n) ENGINE = Memory;\n",
        };

        let err = migrate_files(&s, &[ok, broken]).await.expect_err("broken file fails");
        match &err {
            MigrateError::Statement { name, index, total, first_line, message } => {
                assert_eq!((name.as_str(), *index, *total), ("0002_broken.sql", 2, 2));
                assert_eq!(first_line, "CREATE TABLE IF NOT EXISTS broken (");
                assert!(message.contains("NoSuchType"), "ClickHouse's text: {message}");
            }
            other => panic!("wrong error: {other:?}"),
        }
        let text = err.to_string();
        assert!(text.starts_with("migration 0002_broken.sql: statement 2 of 2 (`CREATE TABLE IF NOT EXISTS broken (`) failed: "), "{text}");
        // The good file is recorded, the broken one is not (its first statement did run).
        assert_eq!(server.query("SELECT version, name FROM scratch.ollystack_migrations ORDER BY version"), "1\t0001_ok.sql\n");
        assert_eq!(server.query("SELECT name FROM system.tables WHERE database = 'scratch' AND name != 'ollystack_migrations' ORDER BY name"), "good\nok\n");

        // Fixed, the file applies; the first is not re-run.
        let fixed = Migration {
            version: 2,
            name: "0002_broken.sql",
            sql: "CREATE TABLE IF NOT EXISTS good (x UInt8) ENGINE = Memory;\nCREATE TABLE IF NOT EXISTS broken (x UInt8) ENGINE = Memory;\n",
        };
        let report = migrate_files(&s, &[ok, fixed]).await.expect("fixed file applies");
        assert_eq!(report.applied.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), vec!["0002_broken.sql"]);
        assert_eq!(report.already_applied, 1);

        // An applied file whose text changed is refused, naming it, and nothing runs.
        let edited = Migration { sql: "CREATE TABLE IF NOT EXISTS ok (x UInt16) ENGINE = Memory;\n", ..ok };
        let before = server.statements().len();
        let err = migrate_files(&s, &[edited, fixed]).await.expect_err("edited file refused");
        assert!(matches!(&err, MigrateError::ChecksumMismatch { version: 1, name, .. } if name == "0001_ok.sql"), "{err:?}");
        assert!(err.to_string().contains("0001_ok.sql"), "{err}");
        assert!(!server.statements()[before..].iter().any(|s| s.contains("UInt16")));

        // Settings the runner cannot use are refused before any request.
        let bad = ClickHouseSettings { database: "no-such;db".into(), ..s.clone() };
        assert!(matches!(migrate_files(&bad, &[ok]).await, Err(MigrateError::Settings(_))));
        let bad = ClickHouseSettings { ttl_days: 0, ..s.clone() };
        assert!(matches!(migrate_files(&bad, &[ok]).await, Err(MigrateError::Settings(_))));
    })
    .await;
}

/// `String` columns holding bytes (protobuf), as the node writes `payload`.
#[derive(Debug, Clone)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

type Attrs = Vec<(String, String)>;

fn attrs(pairs: &[(&str, &str)]) -> Attrs {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[derive(Debug, Clone, Row, Serialize)]
struct SpanRow {
    #[serde(rename = "Timestamp")]
    timestamp: i64,
    #[serde(rename = "TraceId")]
    trace_id: String,
    #[serde(rename = "SpanId")]
    span_id: String,
    #[serde(rename = "ParentSpanId")]
    parent_span_id: String,
    #[serde(rename = "TraceState")]
    trace_state: String,
    #[serde(rename = "SpanName")]
    span_name: String,
    #[serde(rename = "SpanKind")]
    span_kind: String,
    #[serde(rename = "ServiceName")]
    service_name: String,
    #[serde(rename = "ResourceAttributes")]
    resource_attributes: Attrs,
    #[serde(rename = "ScopeName")]
    scope_name: String,
    #[serde(rename = "ScopeVersion")]
    scope_version: String,
    #[serde(rename = "SpanAttributes")]
    span_attributes: Attrs,
    #[serde(rename = "Duration")]
    duration: u64,
    #[serde(rename = "StatusCode")]
    status_code: String,
    #[serde(rename = "StatusMessage")]
    status_message: String,
    #[serde(rename = "Events.Timestamp")]
    events_timestamp: Vec<i64>,
    #[serde(rename = "Events.Name")]
    events_name: Vec<String>,
    #[serde(rename = "Events.Attributes")]
    events_attributes: Vec<Attrs>,
    #[serde(rename = "Links.TraceId")]
    links_trace_id: Vec<String>,
    #[serde(rename = "Links.SpanId")]
    links_span_id: Vec<String>,
    #[serde(rename = "Links.TraceState")]
    links_trace_state: Vec<String>,
    #[serde(rename = "Links.Attributes")]
    links_attributes: Vec<Attrs>,
    correlation_id: String,
    tenant_id: String,
}

#[derive(Debug, Clone, Row, Serialize)]
struct LogRow {
    #[serde(rename = "Timestamp")]
    timestamp: i64,
    #[serde(rename = "TraceId")]
    trace_id: String,
    #[serde(rename = "SpanId")]
    span_id: String,
    #[serde(rename = "TraceFlags")]
    trace_flags: u8,
    #[serde(rename = "SeverityText")]
    severity_text: String,
    #[serde(rename = "SeverityNumber")]
    severity_number: u8,
    #[serde(rename = "ServiceName")]
    service_name: String,
    #[serde(rename = "Body")]
    body: String,
    #[serde(rename = "ResourceSchemaUrl")]
    resource_schema_url: String,
    #[serde(rename = "ResourceAttributes")]
    resource_attributes: Attrs,
    #[serde(rename = "ScopeSchemaUrl")]
    scope_schema_url: String,
    #[serde(rename = "ScopeName")]
    scope_name: String,
    #[serde(rename = "ScopeVersion")]
    scope_version: String,
    #[serde(rename = "ScopeAttributes")]
    scope_attributes: Attrs,
    #[serde(rename = "LogAttributes")]
    log_attributes: Attrs,
    #[serde(rename = "EventName")]
    event_name: String,
    correlation_id: String,
    tenant_id: String,
}

#[derive(Debug, Clone, Row, Serialize)]
struct SessionRow {
    tenant_id: String,
    correlation_id: String,
    node_id: String,
    segment_seq: u64,
    first_seen: i64,
    last_seen: i64,
    finished_at: i64,
    last_activity: i64,
    finish_reason: String,
    services: Vec<String>,
    span_count: u64,
    log_count: u64,
    exemplar_count: u64,
    error_count: u64,
    duration_ms: f64,
    root_service: String,
    root_span: String,
    root_failed: bool,
    summary: String,
    payload: Bytes,
}

#[derive(Debug, Clone, Row, Serialize)]
struct ExemplarRow {
    tenant_id: String,
    correlation_id: String,
    metric_name: String,
    service_name: String,
    timestamp: i64,
    value: f64,
    trace_id: String,
    span_id: String,
    labels: Attrs,
}

/// Inserts `rows` as the node does: RowBinary validated against the table,
/// a deduplication token, and deduplication carried into dependent views.
async fn insert<T: RowOwned + RowWrite>(client: &Client, table: &str, rows: &[T], token: &str) {
    let mut insert = client
        .insert::<T>(table)
        .await
        .unwrap_or_else(|e| panic!("insert into {table}: {e}"))
        .with_option("insert_deduplication_token", token)
        .with_option("deduplicate_blocks_in_dependent_materialized_views", "1");
    for row in rows {
        insert.write(row).await.unwrap_or_else(|e| panic!("write to {table}: {e}"));
    }
    insert.end().await.unwrap_or_else(|e| panic!("insert into {table}: {e}"));
}

/// A recent time (rows older than the TTL would expire on insert): the
/// start of this second plus 123456789 ns.
fn t0() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    i64::try_from(now).expect("seconds") * 1_000_000_000 + 123_456_789
}

fn span(t0: i64, span_id: &str, parent: &str, service: &str, offset_ns: i64, duration: u64, status: &str) -> SpanRow {
    SpanRow {
        timestamp: t0 + offset_ns,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        span_id: span_id.into(),
        parent_span_id: parent.into(),
        trace_state: String::new(),
        span_name: format!("{service} op"),
        span_kind: "Server".into(),
        service_name: service.into(),
        resource_attributes: attrs(&[("service.name", service), ("k8s.pod.name", "pod-1")]),
        scope_name: "io.test".into(),
        scope_version: "1.0".into(),
        span_attributes: attrs(&[("correlation_id", "order-42")]),
        duration,
        status_code: status.into(),
        status_message: String::new(),
        events_timestamp: vec![t0 + offset_ns + 5],
        events_name: vec!["exception".into()],
        events_attributes: vec![attrs(&[("exception.type", "Boom")])],
        links_trace_id: vec!["0af7651916cd43dd8448eb211c80319c".into()],
        links_span_id: vec!["b7ad6b7169203331".into()],
        links_trace_state: vec![String::new()],
        links_attributes: vec![attrs(&[])],
        correlation_id: "order-42".into(),
        tenant_id: "acme".into(),
    }
}

#[tokio::test]
async fn each_table_accepts_what_rust_sends_and_the_summary_view_follows_spans() {
    bounded(async {
        let server = ChdbServer::start();
        let s = settings(&server, "olly");
        migrate(&s).await.expect("migrate");
        let client = s.client();
        let t0 = t0();

        let spans = vec![
            span(t0, "00f067aa0ba902b7", "", "checkout", 0, 5_000_000, "Error"),
            span(t0, "00f067aa0ba902b8", "00f067aa0ba902b7", "payments", 1_000_000, 9_000_000, "Ok"),
        ];
        insert(&client, "otel_traces", &spans, "batch-1").await;
        // A retried batch (same token) is dropped, in the table and in the views it feeds.
        insert(&client, "otel_traces", &spans, "batch-1").await;
        assert_eq!(server.query("SELECT count() FROM olly.otel_traces"), "2\n");
        let summary = server.query(
            "SELECT tenant_id, correlation_id, toUnixTimestamp64Nano(min(first_seen)), toUnixTimestamp64Nano(max(last_seen)), \
             sum(span_count), sum(error_count), arraySort(groupUniqArrayArray(services)) \
             FROM olly.correlation_summary GROUP BY tenant_id, correlation_id",
        );
        assert_eq!(
            summary,
            format!("acme\torder-42\t{t0}\t{}\t2\t1\t['checkout','payments']\n", t0 + 10_000_000),
            "last_seen is the latest span end"
        );
        assert_eq!(
            server.query("SELECT TraceId, toUnixTimestamp(min(Start)), toUnixTimestamp(max(End)) FROM olly.otel_traces_trace_id_ts GROUP BY TraceId"),
            format!("4bf92f3577b34da6a3ce929d0e0e4736\t{0}\t{0}\n", t0 / 1_000_000_000)
        );
        assert_eq!(
            server.query(
                "SELECT Events.Name, Events.Attributes, Links.SpanId, SpanAttributes['correlation_id'] \
                 FROM olly.otel_traces WHERE SpanId = '00f067aa0ba902b7'"
            ),
            "['exception']\t[{'exception.type':'Boom'}]\t['b7ad6b7169203331']\torder-42\n"
        );
        // An old (or clock-skewed) span is kept: rows expire by ingest time.
        let mut old = span(1_700_000_000_000_000_000, "00f067aa0ba902ba", "", "legacy", 0, 1, "Ok");
        old.correlation_id = "order-2023".into();
        insert(&client, "otel_traces", &[old], "batch-3").await;
        assert_eq!(server.query("SELECT count() FROM olly.otel_traces WHERE ServiceName = 'legacy'"), "1\n");
        assert_eq!(server.query("SELECT sum(span_count) FROM olly.correlation_summary WHERE correlation_id = 'order-2023'"), "1\n");
        // A span without a correlation ID does not reach the summary.
        let mut loose = span(t0, "00f067aa0ba902b9", "", "checkout", 0, 1, "Unset");
        loose.correlation_id = String::new();
        insert(&client, "otel_traces", &[loose], "batch-2").await;
        assert_eq!(server.query("SELECT count() FROM olly.correlation_summary WHERE correlation_id = ''"), "0\n");

        let log = LogRow {
            timestamp: t0 + 2_000_000,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            trace_flags: 1,
            severity_text: "ERROR".into(),
            severity_number: 17,
            service_name: "checkout".into(),
            body: "payment declined".into(),
            resource_schema_url: String::new(),
            resource_attributes: attrs(&[("k8s.pod.name", "pod-1")]),
            scope_schema_url: String::new(),
            scope_name: "logger".into(),
            scope_version: String::new(),
            scope_attributes: attrs(&[]),
            log_attributes: attrs(&[("correlation_id", "order-42")]),
            event_name: String::new(),
            correlation_id: "order-42".into(),
            tenant_id: "acme".into(),
        };
        insert(&client, "otel_logs", &[log], "logs-1").await;
        assert_eq!(
            server.query(
                "SELECT toUnixTimestamp(TimestampTime), `__otel_materialized_k8s.pod.name`, SeverityText, Body, correlation_id FROM olly.otel_logs"
            ),
            format!("{}\tpod-1\tERROR\tpayment declined\torder-42\n", t0 / 1_000_000_000)
        );

        let payload = vec![0x0a, 0x00, 0x9f, 0xff, b'\n', 0x80];
        let finished_ms = t0 / 1_000_000 + 60_000;
        let session = SessionRow {
            tenant_id: "acme".into(),
            correlation_id: "order-42".into(),
            node_id: "node-a".into(),
            segment_seq: 7,
            first_seen: t0,
            last_seen: t0 + 10_000_000,
            finished_at: finished_ms,
            last_activity: finished_ms - 29_500,
            finish_reason: "idle".into(),
            services: vec!["checkout".into(), "payments".into()],
            span_count: 2,
            log_count: 1,
            exemplar_count: 1,
            error_count: 1,
            duration_ms: 10.0,
            root_service: "checkout".into(),
            root_span: "checkout op".into(),
            root_failed: true,
            summary: r#"{"span_count":2}"#.into(),
            payload: Bytes(payload.clone()),
        };
        let sessions = [session];
        insert(&client, "sessions", &sessions, "sessions-1").await;
        insert(&client, "sessions", &sessions, "sessions-1").await;
        assert_eq!(
            server.query(
                "SELECT count(), toUnixTimestamp64Milli(any(finished_at)), toUnixTimestamp64Milli(any(last_activity)), any(root_failed), \
                 any(services), any(hex(payload)) \
                 FROM olly.sessions WHERE has(services, 'payments')"
            ),
            format!("1\t{finished_ms}\t{}\ttrue\t['checkout','payments']\t{}\n", finished_ms - 29_500, hex(&payload))
        );

        let exemplars = vec![
            ExemplarRow {
                tenant_id: "acme".into(),
                correlation_id: String::new(),
                metric_name: "http.server.duration".into(),
                service_name: "payments".into(),
                timestamp: t0 + 3_000_000,
                value: 9.0,
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                span_id: "00f067aa0ba902b8".into(),
                labels: attrs(&[("http.route", "/pay")]),
            },
            ExemplarRow {
                tenant_id: "acme".into(),
                correlation_id: "other".into(),
                metric_name: "http.server.duration".into(),
                service_name: "payments".into(),
                timestamp: t0 + 4_000_000,
                value: 1.0,
                trace_id: "ffffffffffffffffffffffffffffffff".into(),
                span_id: "ffffffffffffffff".into(),
                labels: attrs(&[]),
            },
        ];
        insert(&client, "metric_exemplars", &exemplars, "exemplars-1").await;
        assert_eq!(
            server.query(
                "SELECT value, correlation_id, span_name, span_service_name, span_duration, span_status_code, span_correlation_id, labels \
                 FROM olly.exemplar_traces ORDER BY timestamp"
            ),
            "9\torder-42\tpayments op\tpayments\t9000000\tOk\torder-42\t{'http.route':'/pay'}\n\
             1\tother\t\t\t0\t\t\t{}\n",
            "exemplars join their span; one without a stored span keeps empty span columns"
        );
    })
    .await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// `ollystack-node` with no `OLLYSTACK_*` variables from the environment.
fn node_command(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ollystack-node"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OLLYSTACK_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("migrate").arg("--data-dir").arg(data_dir);
    cmd
}

#[tokio::test]
async fn migrate_command_applies_then_reports_nothing_to_do() {
    bounded(async {
        let server = ChdbServer::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let run = |extra: &[&str]| {
            let mut cmd = node_command(dir.path());
            cmd.args(["--clickhouse-url", &server.url, "--clickhouse-compression", "false"]).args(extra);
            cmd.output().expect("run ollystack-node migrate")
        };

        // The storage backend in use does not matter: migrate uses [clickhouse].
        let first = run(&["--clickhouse-database", "cli", "--storage-backend", "embedded"]);
        let stdout = String::from_utf8_lossy(&first.stdout);
        assert!(first.status.success(), "{first:?}");
        for file in FILES {
            assert!(stdout.contains(&format!("applied {file} (")), "{stdout}");
        }
        assert!(stdout.ends_with(&format!("migrations: 5 applied, 0 already applied (database cli at {})\n", server.url)), "{stdout}");

        let second = run(&["--clickhouse-database", "cli"]);
        assert!(second.status.success(), "{second:?}");
        assert_eq!(
            String::from_utf8_lossy(&second.stdout),
            format!("migrations: 0 applied, 5 already applied (database cli at {})\n", server.url)
        );

        // A config error exits 2, as `start` does.
        let bad = run(&["--clickhouse-database", "not-an-identifier"]);
        assert_eq!(bad.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&bad.stderr).contains("clickhouse.database"), "{bad:?}");

        // An unreachable ClickHouse exits 1 with the reason.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", closed.local_addr().expect("addr"));
        drop(closed);
        let mut cmd = node_command(dir.path());
        let down = cmd.args(["--clickhouse-url", &url, "--clickhouse-compression", "false", "--clickhouse-request-timeout-ms", "5000"]);
        let down = down.output().expect("run");
        assert_eq!(down.status.code(), Some(1), "{down:?}");
        let stderr = String::from_utf8_lossy(&down.stderr);
        assert!(stderr.contains("creating database ollystack") && stderr.contains(&url), "{stderr}");
    })
    .await;
}
