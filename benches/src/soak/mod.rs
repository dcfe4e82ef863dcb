//! `soak`: the overload soak of issue 14. Against a real release
//! `ollystack-node` process with a modest memory budget:
//!
//! 1. capacity: a closed-loop run on a fresh node measures the spans per
//!    second it acknowledges (skipped when `--offered-rate` is absolute);
//! 2. overload: a second fresh node is offered a multiple of that (`2x`)
//!    open loop for `--duration`, spread over `--ids` correlation IDs, in
//!    OTLP/HTTP protobuf requests of several IDs and spans each, sent like
//!    an exporter (bounded in-flight requests, a bounded retry queue that
//!    honours `Retry-After`); meanwhile acknowledged IDs are looked up and
//!    the node's RSS and budget gauges sampled every second;
//! 3. drain: load stops; the node finishes and flushes its sessions;
//! 4. presence: acknowledged IDs are read back and every acknowledged span
//!    must be there exactly once.
//!
//! It prints a report and one `soak-json:` line with every figure.

mod batch;
mod ledger;
mod load;
mod plan;
mod report;
mod watch;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use ledger::{Ledger, Presence};
use load::Sender;
use plan::{correlation_id, parse_duration, Layout, OfferedRate, RetryPolicy};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to offer the overload (e.g. 300s, 5m).
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    duration: Duration,
    /// Distinct correlation IDs the load is spread over.
    #[arg(long, default_value_t = 200_000)]
    ids: u64,
    /// Offered load: a multiple of the measured capacity (`2x`) or spans/s.
    #[arg(long, default_value = "2x")]
    offered_rate: OfferedRate,
    #[arg(long, default_value_t = 100)]
    spans_per_request: u64,
    /// Correlation IDs per request (the spans are split evenly among them).
    #[arg(long, default_value_t = 10)]
    ids_per_request: u64,
    /// Length of the closed-loop capacity run.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    capacity_duration: Duration,
    /// Concurrent senders of the capacity run.
    #[arg(long, default_value_t = 32)]
    capacity_concurrency: usize,
    /// The node's `--session-memory-budget-bytes`.
    #[arg(long, default_value_t = 256 << 20)]
    memory_budget_bytes: u64,
    /// The node's `--session-idle-timeout-ms`.
    #[arg(long, default_value_t = 30_000)]
    idle_timeout_ms: u64,
    /// First attempts outstanding at most; a due request beyond is not sent
    /// (counted as unsent, like a full exporter queue).
    #[arg(long, default_value_t = 128)]
    max_in_flight: u32,
    /// Retry 429/503/timeouts like an exporter (true) or count them as shed.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    retry: bool,
    /// Requests waiting for a retry at most; beyond, a refused request is dropped.
    #[arg(long, default_value_t = 512)]
    retry_queue: u32,
    /// Sends per request at most, the first included.
    #[arg(long, default_value_t = 5)]
    max_attempts: u32,
    /// Concurrent lookup loops during the overload.
    #[arg(long, default_value_t = 2)]
    lookup_concurrency: usize,
    /// Pause between two lookups of one loop.
    #[arg(long, default_value_t = 50)]
    lookup_pause_ms: u64,
    /// Acknowledged IDs read back for the presence check (0: all of them).
    #[arg(long, default_value_t = 2_000)]
    verify_ids: usize,
    /// How long to wait for the node to finish its live sessions after the load.
    #[arg(long, default_value = "180s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Extra flag for both nodes (repeatable), e.g. `--node-arg=--session-max-live-sessions=50000`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    node_args: Vec<String>,
}

/// Retry backoff when the node sends no `Retry-After`: 1 s doubling, at
/// most 30 s between attempts (the OTel exporters' retry shape, shortened).
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Concurrent reads of the presence check.
const VERIFY_CONCURRENCY: usize = 4;

pub async fn run(bin: &str, args: Args) -> anyhow::Result<()> {
    let layout = Layout::new(args.ids, args.ids_per_request, args.spans_per_request).map_err(anyhow::Error::msg)?;
    let node_flags = node_flags(&args);
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.max_in_flight as usize + args.lookup_concurrency).build()?;

    let capacity = if args.offered_rate.needs_capacity() {
        let dir = tempfile::tempdir()?;
        let node = crate::proc::spawn(bin, dir.path(), &flag_refs(&node_flags)).await?;
        let url = format!("{}/v1/traces", node.http);
        println!("capacity: closed loop, {} senders, {:?}", args.capacity_concurrency, args.capacity_duration);
        let (rate, refused) = load::capacity(client.clone(), url, layout, args.capacity_duration, args.capacity_concurrency).await;
        println!("capacity: {rate:.0} acknowledged spans/s ({:.1}% of answers refused)", 100.0 * refused);
        Some((rate, refused))
    } else {
        None
    };
    let offered = args.offered_rate.spans_per_sec(capacity.map(|c| c.0)).ok_or_else(|| anyhow::anyhow!("no capacity measured"))?;
    let requests_per_sec = offered / layout.spans_per_request() as f64;
    anyhow::ensure!(requests_per_sec > 0.0, "offered rate {offered:.0} spans/s is too low");
    let planned = requests_per_sec * args.duration.as_secs_f64();
    anyhow::ensure!(planned < f64::from(u32::MAX), "{planned:.0} requests planned: the ledger keeps request numbers in 32 bits");

    let dir = tempfile::tempdir()?;
    let node = crate::proc::spawn(bin, dir.path(), &flag_refs(&node_flags)).await?;
    println!(
        "overload: {offered:.0} spans/s = {requests_per_sec:.0} requests/s of {} spans over {} IDs for {:?} (node {})",
        layout.spans_per_request(),
        args.ids,
        args.duration,
        node_flags.join(" ")
    );
    let sender = Arc::new(Sender {
        client: client.clone(),
        url: format!("{}/v1/traces", node.http),
        layout,
        policy: RetryPolicy {
            enabled: args.retry,
            max_attempts: args.max_attempts,
            initial_backoff: BACKOFF_INITIAL,
            max_backoff: BACKOFF_MAX,
        },
        ledger: Mutex::new(Ledger::new(layout)),
        counters: load::Counters::default(),
        retry_slots: Arc::new(Semaphore::new(args.retry_queue as usize)),
        retry_queue: args.retry_queue,
    });
    let (stop_lookups, stop_watch) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let watcher = tokio::spawn(watch::watch(node.pid, client.clone(), node.api.clone(), sender.clone(), stop_watch.clone()));
    let lookers: Vec<_> = (0..args.lookup_concurrency)
        .map(|_| {
            let pause = Duration::from_millis(args.lookup_pause_ms);
            tokio::spawn(load::lookups(client.clone(), node.api.clone(), sender.clone(), stop_lookups.clone(), pause))
        })
        .collect();

    let started = Instant::now();
    let drain_wait = (load::EXPORT_TIMEOUT + BACKOFF_MAX) * args.max_attempts;
    let all_ended = load::offer(sender.clone(), requests_per_sec, args.duration, args.max_in_flight, drain_wait).await;
    let load_s = started.elapsed().as_secs_f64();
    stop_lookups.store(true, Relaxed);
    let mut lookups = Vec::new();
    for looker in lookers {
        lookups.push(looker.await?);
    }
    let rss_end_of_load = crate::proc::rss_bytes(node.pid).ok();
    println!("load ended after {load_s:.0} s (every request ended: {all_ended}); waiting for the node to finish its sessions");

    let drain_started = Instant::now();
    let drained = drain(&client, &node.api, args.drain_timeout).await;
    let drain_s = drain_started.elapsed().as_secs_f64();
    stop_watch.store(true, Relaxed);
    let watched = watcher.await?;
    let text = watch::scrape(&client, &node.api).await.unwrap_or_default();
    let node_spans = watch::metric(&text, "ollystack_ingest_items_total{signal=\"spans\"}");
    let node_duplicates = watch::metric(&text, "ollystack_ingest_duplicates_total");

    let ledger = Arc::new(std::mem::replace(&mut *sender.ledger.lock().expect("ledger lock"), Ledger::new(layout)));
    println!("presence: reading back {} of {} acknowledged IDs", ledger.sample(args.verify_ids).len(), ledger.acked_id_count());
    let verified = verify(&client, &node.api, ledger.clone(), args.verify_ids).await;

    let figures = report::Figures {
        args: &args,
        capacity,
        offered_spans_per_sec: offered,
        load_s,
        all_ended,
        counters: &sender.counters,
        acked_requests: ledger.acked_requests,
        acked_spans: ledger.acked_spans,
        acked_ids: ledger.acked_id_count(),
        node_spans,
        node_duplicates,
        watched: &watched,
        rss_end_of_load,
        rss_after_drain: crate::proc::rss_bytes(node.pid).ok(),
        drained,
        drain_s,
        lookups: &lookups,
        verified: &verified,
    };
    figures.print();
    println!("soak-json: {}", figures.json());
    Ok(())
}

fn node_flags(args: &Args) -> Vec<String> {
    let mut flags = vec![
        "--session-memory-budget-bytes".to_owned(),
        args.memory_budget_bytes.to_string(),
        "--session-idle-timeout-ms".to_owned(),
        args.idle_timeout_ms.to_string(),
    ];
    flags.extend(args.node_args.iter().cloned());
    flags
}

fn flag_refs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// Waits until the node holds no live session (all finished and flushed),
/// at most `timeout`. Returns whether it got there.
async fn drain(client: &reqwest::Client, api: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let text = watch::scrape(client, api).await.unwrap_or_default();
        if watch::metric(&text, "ollystack_sessions_live") == Some(0.0) {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    false
}

/// The presence check's result.
#[derive(Debug, Default)]
pub struct Verified {
    pub ids_checked: u64,
    pub spans: Presence,
    /// Acknowledged IDs the node answered 404 for.
    pub ids_not_found: u64,
    /// IDs whose read failed (other status, timeout, unreadable answer).
    pub ids_failed: u64,
    /// IDs with at least one missing span.
    pub ids_with_missing: u64,
}

/// Reads back a sample of acknowledged IDs and compares their spans with
/// what was acknowledged.
async fn verify(client: &reqwest::Client, api: &str, ledger: Arc<Ledger>, n: usize) -> Verified {
    let ids = Arc::new(Mutex::new(ledger.sample(n)));
    let readers: Vec<_> = (0..VERIFY_CONCURRENCY)
        .map(|_| {
            let (client, api, ledger, ids) = (client.clone(), api.to_owned(), ledger.clone(), ids.clone());
            tokio::spawn(async move {
                let mut out = Verified::default();
                while let Some(id) = ids.lock().ok().and_then(|mut ids| ids.pop()) {
                    out.ids_checked += 1;
                    let expected = ledger.expected_span_ids(id);
                    let url = format!("{api}/api/v1/correlate/{}", correlation_id(id));
                    let answer = match client.get(url).timeout(Duration::from_secs(60)).send().await {
                        Ok(r) if r.status() == 404 => {
                            out.ids_not_found += 1;
                            Some(serde_json::Value::Null)
                        }
                        Ok(r) if r.status() == 200 => r.json::<serde_json::Value>().await.ok(),
                        _ => None,
                    };
                    let Some(answer) = answer else {
                        out.ids_failed += 1;
                        continue;
                    };
                    let presence = ledger::compare(&expected, &ledger::answered_span_ids(&answer));
                    out.ids_with_missing += u64::from(presence.missing > 0);
                    out.spans.add(presence);
                }
                out
            })
        })
        .collect();
    let mut total = Verified::default();
    for reader in readers {
        if let Ok(part) = reader.await {
            total.ids_checked += part.ids_checked;
            total.spans.add(part.spans);
            total.ids_not_found += part.ids_not_found;
            total.ids_failed += part.ids_failed;
            total.ids_with_missing += part.ids_with_missing;
        }
    }
    total
}
