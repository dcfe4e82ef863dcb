//! OllyStack benchmarks (figures for the issue notes, not tests):
//!
//! * `ingest`: end-to-end OTLP/HTTP protobuf ingest into a real
//!   `ollystack-node` process (512 spans per request, WAL on), against a
//!   decode-only baseline measured in the same run; both per CPU second.
//!   `--sweep`: at 32, 8 and 2 spans per trace, and with a third of the
//!   records logs without trace context.
//! * `memory`: resident bytes per live span (vs its wire size) and per live
//!   session.
//! * `cluster`: three node processes; ingest straight to owners vs to
//!   non-owners, live lookups through the owner vs a non-owner.
//! * `flush`: ClickHouse flush throughput of the node's store vs a bare
//!   insert of the same rows, in one run against the same server.
//! * `limits`: cardinality-limiter admissions of new values per second on
//!   three in-process nodes forming a cluster.
//! * `rca-eval`: fault-injection evaluation of per-request and
//!   per-incident RCA (AC@1, AC@3, Avg@5 per fault kind).
//! * `bindings`: the scan a ring change costs a node holding many trace
//!   bindings, and how many a join moves.
//! * `fuzz`: a mutation fuzzer over what the node decodes from outside
//!   (OTLP protobuf and JSON, IDs, cluster RPCs, API parameters).
//! * `soak`: overload soak: twice the measured capacity for minutes over
//!   many IDs; RSS against the budget, 429 share, lookup p99 meanwhile,
//!   and every acknowledged span present afterwards.

mod bindings;
mod cluster;
mod flush;
mod fuzz;
mod ingest;
mod limits;
mod proc;
mod rca_eval;
mod soak;
mod workload;

/// The same allocator as the node, so decode-only and end-to-end compare
/// like with like.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use prost::Message;

#[derive(Debug, Parser)]
#[command(name = "ollystack-bench")]
struct Cli {
    /// The node binary to run (build it with `cargo build --release -p ollystack-node`).
    #[arg(long, default_value = "target/release/ollystack-node")]
    node_bin: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Ingest throughput vs decode-only (`--sweep`: the table at 32, 8, 2 spans per trace and with context-free logs).
    Ingest(ingest::Args),
    /// Memory per live span and per live session.
    Memory {
        #[arg(long, default_value_t = 400)]
        span_requests: usize,
        #[arg(long, default_value_t = 50_000)]
        sessions: usize,
    },
    /// ClickHouse flush throughput vs a bare insert of the same rows.
    Flush(flush::Args),
    /// Cardinality-limiter admissions of new values per second on 3 nodes.
    Limits(limits::Args),
    /// Cluster: ingest to owners vs non-owners; lookup latency via owner vs non-owner.
    Cluster(cluster::Args),
    /// RCA accuracy on injected faults (AC@1, AC@3, Avg@5 per fault kind).
    RcaEval(rca_eval::Args),
    /// What a ring change costs a node holding many trace bindings.
    Bindings(bindings::Args),
    /// Mutation fuzzing of the node's decoders (findings written to --out).
    Fuzz(fuzz::Args),
    /// Overload soak: offer a multiple of the measured capacity; RSS vs budget, 429s, lookup p99, presence.
    Soak(soak::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Ingest(args) => ingest::run(&cli.node_bin, args).await,
        Cmd::Memory { span_requests, sessions } => memory(&cli.node_bin, span_requests, sessions).await,
        Cmd::Flush(args) => flush::run(args).await,
        Cmd::Limits(args) => limits::run(args).await,
        Cmd::Cluster(args) => cluster::run(&cli.node_bin, args).await,
        Cmd::RcaEval(args) => rca_eval::run(args),
        Cmd::Bindings(args) => bindings::run(args),
        Cmd::Fuzz(args) => fuzz::run(args).await,
        Cmd::Soak(args) => soak::run(&cli.node_bin, args).await,
    }
}

fn bodies(n: usize, spans: usize, traces: usize, seed0: u64) -> (Vec<(&'static str, Vec<u8>)>, u64, u64) {
    let mut total_spans = 0;
    let mut wire = 0;
    let bodies = (0..n as u64)
        .map(|i| {
            let req = workload::request(seed0 + i, spans, traces, |t| (t % 2 == 0).then(|| format!("order-{i}-{t}")));
            total_spans += workload::span_count(&req);
            wire += workload::span_wire_bytes(&req);
            ("/v1/traces", req.encode_to_vec())
        })
        .collect();
    (bodies, total_spans, wire)
}

/// Posts every (path, body) with `concurrency` clients, retrying 429/503.
async fn send_all(http: &str, bodies: Vec<(&'static str, Vec<u8>)>, concurrency: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, http, queue) = (client.clone(), http.to_owned(), queue.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some((path, body)) = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop() else {
                    return Ok::<_, anyhow::Error>(());
                };
                let url = format!("{http}{path}");
                loop {
                    let resp = client.post(&url).header("content-type", "application/x-protobuf").body(body.clone()).send().await?;
                    match resp.status().as_u16() {
                        200 => break,
                        429 | 503 => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                        s => anyhow::bail!("unexpected status {s}"),
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(())
}

async fn wait_settled(pid: u32) -> anyhow::Result<u64> {
    // Let actors drain their mailboxes: RSS stops moving.
    let mut last = proc::rss_bytes(pid)?;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = proc::rss_bytes(pid)?;
        if now.abs_diff(last) < 256 * 1024 {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

async fn memory(bin: &str, span_requests: usize, sessions: usize) -> anyhow::Result<()> {
    let long = ["--session-idle-timeout-ms", "3600000", "--session-max-age-ms", "3600000", "--session-memory-budget-bytes", "8589934592"];

    // Per live span: 32 spans per session, 512 per request.
    let dir = tempfile::tempdir()?;
    let node = proc::spawn(bin, dir.path(), &long).await?;
    let (warm, _, _) = bodies(4, 512, 16, 10_000);
    send_all(&node.http, warm, 4).await?;
    let rss0 = wait_settled(node.pid).await?;
    let (b, total_spans, wire) = bodies(span_requests, 512, 16, 1);
    send_all(&node.http, b, 8).await?;
    let rss1 = wait_settled(node.pid).await?;
    let span_rss_delta = rss1 - rss0;
    let per_span = span_rss_delta as f64 / total_spans as f64;
    let wire_per_span = wire as f64 / total_spans as f64;
    println!(
        "live spans: {total_spans} in {} sessions; RSS +{} MiB = {per_span:.0} B/span vs {wire_per_span:.0} B/span on the wire = {:.2}x",
        total_spans / 32,
        (rss1 - rss0) >> 20,
        per_span / wire_per_span
    );
    drop(node);

    // Per live session: one small span each.
    let dir = tempfile::tempdir()?;
    let node = proc::spawn(bin, dir.path(), &long).await?;
    let (warm, _, _) = bodies(2, 64, 64, 20_000);
    send_all(&node.http, warm, 2).await?;
    let rss0 = wait_settled(node.pid).await?;
    let per_req = 512;
    let (b, n, wire) = bodies(sessions.div_ceil(per_req), per_req, per_req, 30_000);
    send_all(&node.http, b, 8).await?;
    let rss1 = wait_settled(node.pid).await?;
    let per_session = (rss1 - rss0) as f64 / n as f64;
    let span_part = wire as f64 / n as f64 + 64.0;
    let session_overhead = per_session - span_part;
    println!("live sessions: {n} with one span each; RSS +{} MiB = {per_session:.0} B/session incl. its span; minus the span's own ~{span_part:.0} B = {session_overhead:.0} B session overhead", (rss1 - rss0) >> 20);
    let sessions_in_span_run = (total_spans / 32) as f64;
    let net = (span_rss_delta as f64 - sessions_in_span_run * session_overhead) / total_spans as f64;
    println!("live spans net of their sessions' overhead: {net:.0} B/span = {:.2}x the wire size", net / wire_per_span);
    Ok(())
}
