//! `cluster`: three `ollystack-node` processes on 127.0.0.51-53 (formed
//! with `join`), measured in one run:
//!
//! * ingest throughput when every batch goes straight to the node that owns
//!   its trace, vs when every batch goes to a node that does not (one
//!   forwarding hop), with the same bodies, clients and nodes;
//! * live lookup latency (`GET /api/v1/correlate/{id}` of live sessions)
//!   through the owner vs through a non-owner, under a steady ingest load.
//!
//! The client computes owners with the ring the nodes use (same members,
//! same placement function), so "owner" here is exact.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ollystack_cluster::ring::{KeyHash, Member, Ring};
use ollystack_cluster::NodeId;
use prost::Message;
use tokio::process::{Child, Command};

use crate::workload;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Batches per ingest phase.
    #[arg(long, default_value_t = 3000)]
    requests: usize,
    /// Spans per batch (one trace per batch).
    #[arg(long, default_value_t = 64)]
    spans_per_request: usize,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Lookups per target (owner, non-owner) in the latency phase.
    #[arg(long, default_value_t = 2000)]
    lookups: usize,
}

struct Proc {
    _child: Child,
    pid: u32,
    id: NodeId,
    ip: String,
}

impl Proc {
    fn http(&self) -> String {
        format!("http://{}:4318/v1/traces", self.ip)
    }

    fn api(&self) -> String {
        format!("http://{}:8080", self.ip)
    }
}

async fn spawn(bin: &str, dir: &std::path::Path, ip: &str, seed: Option<&str>) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(bin);
    match seed {
        Some(s) => cmd.args(["join", "--seed", s]),
        None => cmd.arg("start"),
    };
    let addr = |port: u16| format!("{ip}:{port}");
    cmd.args(["--listen-otlp-grpc", &addr(4317), "--listen-otlp-http", &addr(4318), "--listen-api", &addr(8080)])
        .args(["--listen-cluster", &addr(4320), "--cluster-join-token", "bench", "--log", "warn"])
        .args(["--session-idle-timeout-ms", "120000", "--session-max-age-ms", "600000"])
        .arg("--data-dir")
        .arg(dir.join(ip))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("node binary")?;
    let (pid, ready) = crate::proc::wait_ready(&mut child).await?;
    let id = ready
        .rsplit("(node-")
        .next()
        .and_then(|s| s.strip_suffix(')'))
        .and_then(|s| s.parse::<u64>().ok())
        .context("node id in the ready line")?;
    Ok(Proc { _child: child, pid, id: NodeId(id), ip: ip.into() })
}

/// One trace per body, no explicit ID: the session is the trace's derived
/// ID, owned by the trace's home.
fn bodies(n: usize, spans: usize, seed0: u64) -> Vec<(Vec<u8>, String)> {
    (0..n as u64)
        .map(|i| {
            let req = workload::request(seed0 + i, spans, 1, |_| None);
            let trace = req.resource_spans[0].scope_spans[0].spans[0].trace_id.clone();
            (req.encode_to_vec(), hex_id(&trace))
        })
        .collect()
}

fn hex_id(trace: &[u8]) -> String {
    trace.iter().map(|b| format!("{b:02x}")).collect()
}

fn derived(trace_hex: &str) -> String {
    let bytes: Vec<u8> = (0..16).filter_map(|i| u8::from_str_radix(trace_hex.get(i * 2..i * 2 + 2)?, 16).ok()).collect();
    let mut t = [0u8; 16];
    t.copy_from_slice(&bytes);
    ollystack_node::correlate::derive_from_trace(ollystack_node::model::TraceId(t)).as_str().to_owned()
}

/// Sends every body to `target(i)`; returns spans per wall-clock second.
async fn send_all(
    bodies: &[(Vec<u8>, String)],
    spans_per_body: usize,
    concurrency: usize,
    target: impl Fn(usize) -> String,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let next = Arc::new(AtomicU64::new(0));
    let jobs: Vec<(Vec<u8>, String)> = bodies.iter().enumerate().map(|(i, (b, _))| (b.clone(), target(i))).collect();
    let jobs = Arc::new(jobs);
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next, jobs) = (client.clone(), next.clone(), jobs.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some((body, url)) = jobs.get(i) else { return Ok::<_, anyhow::Error>(()) };
                    for attempt in 0..50 {
                        let r = client.post(url).header("content-type", "application/x-protobuf").body(body.clone()).send().await?;
                        if r.status().is_success() {
                            break;
                        }
                        anyhow::ensure!(attempt < 49, "batch refused: {}", r.status());
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    Ok((bodies.len() * spans_per_body) as f64 / start.elapsed().as_secs_f64())
}

fn cpu(procs: &[Proc]) -> f64 {
    procs.iter().map(|p| crate::proc::cpu_seconds(p.pid).unwrap_or(0.0)).sum()
}

pub async fn run(bin: &str, args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = spawn(bin, dir.path(), "127.0.0.51", None).await?;
    let seed = "127.0.0.51:4320".to_owned();
    let second = spawn(bin, dir.path(), "127.0.0.52", Some(&seed)).await?;
    let third = spawn(bin, dir.path(), "127.0.0.53", Some(&seed)).await?;
    let procs = [first, second, third];
    let ring = Ring::new(0, &procs.iter().map(|p| Member::new(p.id)).collect::<Vec<_>>())?;
    let index_of = |id: NodeId| procs.iter().position(|p| p.id == id).unwrap_or(0);
    let home = |trace_hex: &str| index_of(ring.owner(KeyHash::of("default", &derived(trace_hex))));
    // Let the joins' ring changes settle.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let warm = bodies(200, args.spans_per_request, 1);
    send_all(&warm, args.spans_per_request, args.concurrency, |i| procs[home(&warm[i].1)].http()).await?;

    let owned = bodies(args.requests, args.spans_per_request, 1_000_000);
    let cpu0 = cpu(&procs);
    let to_owner = send_all(&owned, args.spans_per_request, args.concurrency, |i| procs[home(&owned[i].1)].http()).await?;
    let cpu_owner = cpu(&procs) - cpu0;
    let other = bodies(args.requests, args.spans_per_request, 2_000_000);
    let cpu1 = cpu(&procs);
    let to_other =
        send_all(&other, args.spans_per_request, args.concurrency, |i| procs[(home(&other[i].1) + 1 + i % 2) % 3].http()).await?;
    let cpu_other = cpu(&procs) - cpu1;
    let spans = (args.requests * args.spans_per_request) as f64;
    println!("ingest, {} batches of {} spans, {} clients, 3 nodes:", args.requests, args.spans_per_request, args.concurrency);
    println!("  straight to owners: {to_owner:>10.0} spans/s  ({:.0} spans per node CPU-second)", spans / cpu_owner);
    println!("  to non-owners:      {to_other:>10.0} spans/s  ({:.0} spans per node CPU-second)", spans / cpu_other);
    println!("  ratio (non-owner / owner): {:.1}% wall-clock, {:.1}% per CPU", 100.0 * to_other / to_owner, 100.0 * cpu_owner / cpu_other);

    // Lookups of live sessions under a steady background load.
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let stop = stop.clone();
        let load = bodies(100_000, args.spans_per_request, 3_000_000);
        let urls: Vec<String> = procs.iter().map(Proc::http).collect();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for (i, (body, _)) in load.iter().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let _ = client.post(&urls[i % 3]).header("content-type", "application/x-protobuf").body(body.clone()).send().await;
            }
        })
    };
    let client = reqwest::Client::new();
    let mut owner_us = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut other_us = hdrhistogram::Histogram::<u64>::new(3)?;
    for i in 0..args.lookups {
        let (_, trace) = &owned[i % owned.len()];
        let id = derived(trace);
        let owner = home(trace);
        for (node, hist) in [(owner, &mut owner_us), ((owner + 1 + i % 2) % 3, &mut other_us)] {
            let t = Instant::now();
            let r = client.get(format!("{}/api/v1/correlate/{id}", procs[node].api())).send().await?;
            anyhow::ensure!(r.status().is_success(), "lookup of {id} failed: {}", r.status());
            let _ = r.bytes().await?;
            hist.record(t.elapsed().as_micros() as u64)?;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = background.await;
    let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!("live lookups of {}-span sessions under load, {} each:", args.spans_per_request, args.lookups);
    println!("  through the owner:     p50 {:.2} ms  p99 {:.2} ms", ms(&owner_us, 0.5), ms(&owner_us, 0.99));
    println!("  through a non-owner:   p50 {:.2} ms  p99 {:.2} ms", ms(&other_us, 0.5), ms(&other_us, 0.99));
    println!("  p99 ratio (non-owner / owner): {:.2}x", ms(&other_us, 0.99) / ms(&owner_us, 0.99));
    Ok(())
}
