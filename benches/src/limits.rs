//! `limits`: admissions of new values per second by the cluster-wide
//! cardinality limiter on three in-process nodes forming one cluster
//! (the first bootstraps, the others join through it), each hammering its
//! `ClusterLimiter::admit` with distinct values from several threads.
//!
//! Every value is new, so every admission takes a unit of the node's
//! leased quota, and the units are reported back through Raft (the lease
//! requests and the reports are the real Raft round trips, fsync included).
//! The figure is admissions that returned `Keep` per wall-clock second,
//! with the node's default settings (adaptive lease sizes from
//! `lease_units = 1`) unless `--lease-units` sets another minimum lease.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ollystack_node::config::{Config, ConfigFile};
use ollystack_node::ingest::{AttributeLimiter, Verdict};
use ollystack_node::server::{self, RunningNode};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to hammer the limiters: short enough that the run stays
    /// under the limit (1M values at ~300K/s).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Admitting threads per node.
    #[arg(long, default_value_t = 2)]
    threads_per_node: usize,
    /// Limited attributes; values are spread over them round-robin.
    #[arg(long, default_value_t = 1)]
    attributes: usize,
    /// Distinct values per attribute per window (the maximum, so the run
    /// measures admissions, not overflows).
    #[arg(long, default_value_t = 1_000_000)]
    limit: u64,
    /// The smallest lease a node asks for (`limits.lease_units`); leases
    /// grow with each node's rate. Default: the node's default.
    #[arg(long)]
    lease_units: Option<u64>,
}

/// One node's tallies.
#[derive(Default)]
struct Tally {
    kept: AtomicU64,
    overflowed: AtomicU64,
    refused: AtomicU64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.attributes >= 1 && args.threads_per_node >= 1, "--attributes and --threads-per-node must be at least 1");
    let attributes: Vec<String> = (0..args.attributes).map(|i| format!("bench.attr{i}")).collect();
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?, tempfile::tempdir()?];
    let first = server::start(config(dirs[0].path(), &attributes, &args, None)?).await.context("first node")?;
    let seed = first.cluster_addr.to_string();
    let second = server::start(config(dirs[1].path(), &attributes, &args, Some(&seed))?).await.context("second node")?;
    let third = server::start(config(dirs[2].path(), &attributes, &args, Some(&seed))?).await.context("third node")?;
    let nodes = [first, second, third];
    wait_formed(&nodes).await?;
    let lease_units = nodes[0].limiter.active_limits().map(|l| l.lease_units()).context("limits are active")?;
    let default = if args.lease_units.is_none() { " (the default)" } else { "" };
    println!(
        "limits: 3 nodes, {} attribute(s) limited to {} values/window, lease_units {lease_units}{default}, {} threads/node, {:.1} s",
        args.attributes, args.limit, args.threads_per_node, args.seconds
    );

    let stop = Arc::new(AtomicBool::new(false));
    let tallies: Vec<Arc<Tally>> = (0..nodes.len()).map(|_| Arc::new(Tally::default())).collect();
    let mut workers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..args.threads_per_node {
            let (limiter, tally, stop, attributes) = (node.limiter.clone(), tallies[n].clone(), stop.clone(), attributes.clone());
            workers.push(tokio::task::spawn_blocking(move || hammer(limiter.as_ref(), &attributes, &format!("n{n}t{t}"), &tally, &stop)));
        }
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }
    let wall = started.elapsed().as_secs_f64();

    let (mut total, mut overflowed) = (0, 0);
    for (n, tally) in tallies.iter().enumerate() {
        let kept = tally.kept.load(Ordering::Relaxed);
        total += kept;
        overflowed += tally.overflowed.load(Ordering::Relaxed);
        println!(
            "node {}: {kept} new values admitted = {:.0}/s; overflowed {}, refused (no quota in time) {}; lease waits {}",
            n + 1,
            kept as f64 / wall,
            tally.overflowed.load(Ordering::Relaxed),
            tally.refused.load(Ordering::Relaxed),
            nodes[n].metrics.limits_lease_waits.get(),
        );
    }
    println!("total: {total} new values admitted in {wall:.2} s = {:.0} admissions/s", total as f64 / wall);
    if overflowed > 0 {
        println!("the limit was reached: the figure is a lower bound (use fewer --seconds or more --attributes)");
    }
    anyhow::ensure!(total <= args.limit * args.attributes as u64, "more values admitted than the limits allow");
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

/// Admits distinct values until `stop`.
fn hammer(limiter: &dyn AttributeLimiter, attributes: &[String], prefix: &str, tally: &Tally, stop: &AtomicBool) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let attribute = &attributes[i as usize % attributes.len()];
        let value = format!("{prefix}-{i}");
        let counter = match limiter.admit(attribute, &value) {
            Verdict::Keep => &tally.kept,
            Verdict::Overflow => &tally.overflowed,
            Verdict::Wait => &tally.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        i += 1;
    }
}

fn config(dir: &std::path::Path, attributes: &[String], args: &Args, seed: Option<&str>) -> anyhow::Result<Config> {
    let mut f = ConfigFile { data_dir: dir.to_path_buf(), ..ConfigFile::default() };
    for listen in [&mut f.listen.otlp_grpc, &mut f.listen.otlp_http, &mut f.listen.api, &mut f.listen.cluster] {
        *listen = "127.0.0.1:0".into();
    }
    f.cluster.join_token = "bench-limits".into();
    // Long windows: the run stays in one (or crosses one boundary).
    f.limits.window_ms = 600_000;
    if let Some(lease_units) = args.lease_units {
        f.limits.lease_units = lease_units;
    }
    f.limits.attributes = attributes.iter().map(|a| (a.clone(), args.limit)).collect::<BTreeMap<_, _>>();
    let mut config = f.build_and_validate()?;
    config.cluster.seed = seed.map(str::to_owned);
    Ok(config)
}

/// Waits until the ring has all three nodes and every limiter enforces the
/// cluster's limits.
async fn wait_formed(nodes: &[RunningNode]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let formed = nodes.iter().all(|n| n.cluster.ring_members().len() == nodes.len() && n.limiter.active_limits().is_some());
        if formed {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the cluster did not form within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
