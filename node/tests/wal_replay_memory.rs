//! Peak memory of a WAL replay (a figure, not a pass/fail bound): writes a
//! WAL of about 200 MB, starts a real `ollystack-node` process on it and
//! reports its peak RSS (`VmHWM`) once it is ready, that is once the whole
//! WAL is replayed. Ignored by default (it writes 200 MB); run with
//!
//! ```sh
//! cargo test -p ollystack-node --test wal_replay_memory -- --ignored --nocapture
//! ```
//!
//! `OLLYSTACK_NODE_BIN` runs another build of the node (e.g. an older one,
//! for a before/after figure); `REPLAY_BUDGET_BYTES` sets its memory budget
//! (default 1 GiB); `REPLAY_WAL_MB` the WAL's size (default 200).

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ollystack_node::model::{CorrelationId, SessionKey, TenantId};
use ollystack_node::session::{SessionInput, SpanInput};
use ollystack_node::wal::{encode_entry, Wal, WalRecord};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Spans per WAL entry, entries per session, bytes of each span's payload.
const SPANS_PER_ENTRY: usize = 10;
const ENTRIES_PER_SESSION: usize = 10;
const PAYLOAD_BYTES: usize = 1_000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Writes about `mb` MB of session entries, as ingest would have.
async fn write_wal(dir: &std::path::Path, mb: u64) -> (u64, u64) {
    // The node's own sled settings (its segment size is kept in the db).
    let db = sled::Config::new().path(dir.join("db")).segment_size(8 << 20).open().expect("db");
    let (wal, _) = Wal::open(&dir.join("wal"), &db).expect("wal");
    let service: Arc<str> = Arc::from("api");
    let (mut written, mut entries, mut last) = (0u64, 0u64, 0u64);
    let mut session = 0u64;
    while written < mb << 20 {
        let key = SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted(format!("order-{session}").as_str()) };
        let mut records = Vec::with_capacity(ENTRIES_PER_SESSION);
        for e in 0..ENTRIES_PER_SESSION {
            let spans = (0..SPANS_PER_ENTRY)
                .map(|s| {
                    let n = (e * SPANS_PER_ENTRY + s) as u64;
                    let span = Span {
                        trace_id: (session + 1).to_be_bytes().repeat(2),
                        span_id: (n + 1).to_be_bytes().to_vec(),
                        name: format!("op-{n}"),
                        start_time_unix_nano: 1_700_000_000_000_000_000 + n,
                        end_time_unix_nano: 1_700_000_000_000_001_000 + n,
                        attributes: vec![KeyValue {
                            key: "payload".into(),
                            value: Some(AnyValue { value: Some(Value::StringValue("x".repeat(PAYLOAD_BYTES))) }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    };
                    let encoded = span.encode_to_vec().into_boxed_slice();
                    SpanInput::from_span(service.clone(), &span, encoded).expect("ids")
                })
                .collect();
            let input = SessionInput { spans, ..Default::default() };
            let bytes = encode_entry(&key, &input);
            written += bytes.len() as u64;
            records.push(WalRecord::Entry(bytes));
        }
        entries += records.len() as u64;
        last = *wal.append(&records).expect("append").last().expect("seq");
        session += 1;
    }
    wal.sync(last).await.expect("sync");
    db.flush().expect("flush");
    (written, entries)
}

fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).expect("VmHWM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a 200 MB WAL; a figure, run by hand"]
async fn replay_peak_rss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal_bytes, entries) = write_wal(dir.path(), env_u64("REPLAY_WAL_MB", 200)).await;
    let budget = env_u64("REPLAY_BUDGET_BYTES", 1 << 30);
    let bin = std::env::var("OLLYSTACK_NODE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ollystack-node").to_owned());
    let started = Instant::now();
    let mut child = Command::new(&bin)
        .args(["start", "--listen-otlp-grpc", "127.0.0.1:0", "--listen-otlp-http", "127.0.0.1:0"])
        .args(["--listen-api", "127.0.0.1:0", "--listen-cluster", "127.0.0.1:0", "--log", "warn"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--session-memory-budget-bytes", &budget.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let pid = child.id().expect("pid");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    tokio::time::timeout(Duration::from_secs(600), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if line.starts_with("ollystack-node ready:") {
                return;
            }
        }
        panic!("node exited before it was ready");
    })
    .await
    .expect("ready in time");
    let peak_kb = peak_rss_kb(pid);
    println!(
        "replay: wal {} MB in {entries} entries, budget {} MB, binary {bin}: ready after {:.1} s, peak RSS {} MB",
        wal_bytes >> 20,
        budget >> 20,
        started.elapsed().as_secs_f64(),
        peak_kb >> 10
    );
    child.kill().await.expect("kill");
}
