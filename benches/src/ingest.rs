//! `ingest`: end-to-end OTLP/HTTP protobuf ingest into a real node process
//! against a decode-only baseline measured in the same run, both per CPU
//! second. `--sweep` prints issue 16's table: 32, 8 and 2 spans per trace,
//! and a mix where a third of the records are logs with no trace context
//! and no correlation ID.

use std::time::Instant;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::{proc, send_all, workload};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 400)]
    requests: usize,
    #[arg(long, default_value_t = 512)]
    spans_per_request: usize,
    #[arg(long, default_value_t = 16)]
    traces_per_request: usize,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Issue 16's table: 32, 8 and 2 spans per trace, then a third of the
    /// records as logs without trace context (each row `--requests` requests).
    #[arg(long)]
    sweep: bool,
}

/// One request body, where it goes, and how many records it carries.
struct Body {
    path: &'static str,
    bytes: Vec<u8>,
    records: u64,
}

/// What one row measured.
struct Row {
    records: u64,
    decode_per_cpu_s: f64,
    node_per_cpu_s: f64,
    wall_per_s: f64,
}

pub async fn run(bin: &str, args: Args) -> anyhow::Result<()> {
    if !args.sweep {
        let bodies = trace_bodies(args.requests, args.spans_per_request, args.traces_per_request, 1);
        let row = measure(bin, bodies, args.concurrency).await?;
        print_row(&format!("{} spans/trace", args.spans_per_request / args.traces_per_request.max(1)), &row, None);
        return Ok(());
    }
    println!("| workload | records | decode-only per CPU-s | node per CPU-s | node / decode | target | node wall/s |");
    println!("|---|---|---|---|---|---|---|");
    for (spans_per_trace, target) in [(32, 60.0), (8, 50.0), (2, 35.0)] {
        let traces = args.spans_per_request / spans_per_trace;
        let bodies = trace_bodies(args.requests, args.spans_per_request, traces, 1);
        let row = measure(bin, bodies, args.concurrency).await?;
        print_row(&format!("{spans_per_trace} spans/trace"), &row, Some(target));
    }
    // Two span requests (8 spans per trace), then one request of as many
    // logs that carry no trace context and no ID.
    let mut bodies = Vec::new();
    for (i, body) in trace_bodies(args.requests, args.spans_per_request, args.spans_per_request / 8, 1).into_iter().enumerate() {
        bodies.push(body);
        if i % 2 == 1 {
            bodies.push(context_free_logs(i as u64, args.spans_per_request));
        }
    }
    let row = measure(bin, bodies, args.concurrency).await?;
    print_row("8 spans/trace + 1/3 logs without context", &row, None);
    Ok(())
}

fn print_row(name: &str, row: &Row, target: Option<f64>) {
    let ratio = 100.0 * row.node_per_cpu_s / row.decode_per_cpu_s;
    let target = target.map_or("-".to_owned(), |t| format!("≥ {t:.0}%"));
    println!(
        "| {name} | {} | {:.0} | {:.0} | {ratio:.1}% | {target} | {:.0} |",
        row.records, row.decode_per_cpu_s, row.node_per_cpu_s, row.wall_per_s
    );
}

fn trace_bodies(requests: usize, spans: usize, traces: usize, seed0: u64) -> Vec<Body> {
    (0..requests as u64)
        .map(|i| {
            let req = workload::request(seed0 + i, spans, traces, |t| (t % 2 == 0).then(|| format!("order-{i}-{t}")));
            Body { path: "/v1/traces", records: workload::span_count(&req), bytes: req.encode_to_vec() }
        })
        .collect()
}

/// `n` log records of one service with no trace context and no ID: what a
/// log shipper sends for a service's plain log lines.
fn context_free_logs(seed: u64, n: usize) -> Body {
    let base: u64 = 1_764_000_000_000_000_000 + seed * 1_000_000;
    let records = (0..n as u64)
        .map(|i| LogRecord {
            time_unix_nano: base + i * 1_000,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(Value::StringValue(format!("GET /healthz 200 in {}us from 10.1.{}.{}", 100 + i, seed % 250, i % 250))),
            }),
            ..Default::default()
        })
        .collect();
    let service = KeyValue {
        key: "service.name".into(),
        value: Some(AnyValue { value: Some(Value::StringValue("edge-proxy".into())) }),
        ..Default::default()
    };
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource { attributes: vec![service], ..Default::default() }),
            scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
            ..Default::default()
        }],
    };
    Body { path: "/v1/logs", records: n as u64, bytes: req.encode_to_vec() }
}

/// Decode-only in this process (3 rounds), then the same bodies through a
/// fresh node.
async fn measure(bin: &str, bodies: Vec<Body>, concurrency: usize) -> anyhow::Result<Row> {
    let records: u64 = bodies.iter().map(|b| b.records).sum();
    let me = std::process::id();
    let cpu0 = proc::cpu_seconds(me)?;
    let rounds = 3;
    for _ in 0..rounds {
        for b in &bodies {
            if b.path == "/v1/logs" {
                std::hint::black_box(ExportLogsServiceRequest::decode(b.bytes.as_slice())?);
            } else {
                std::hint::black_box(ExportTraceServiceRequest::decode(b.bytes.as_slice())?);
            }
        }
    }
    let decode_cpu = (proc::cpu_seconds(me)? - cpu0).max(1e-3);

    let dir = tempfile::tempdir()?;
    let node = proc::spawn(bin, dir.path(), &["--session-idle-timeout-ms", "2000", "--session-memory-budget-bytes", "4294967296"]).await?;
    let ncpu0 = proc::cpu_seconds(node.pid)?;
    let t0 = Instant::now();
    send_all(&node.http, bodies.into_iter().map(|b| (b.path, b.bytes)).collect(), concurrency).await?;
    let wall = t0.elapsed().as_secs_f64();
    let node_cpu = (proc::cpu_seconds(node.pid)? - ncpu0).max(1e-3);
    Ok(Row {
        records,
        decode_per_cpu_s: (records * rounds) as f64 / decode_cpu,
        node_per_cpu_s: records as f64 / node_cpu,
        wall_per_s: records as f64 / wall,
    })
}
