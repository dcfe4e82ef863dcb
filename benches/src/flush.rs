//! `flush`: how fast the node's ClickHouse flusher writes finished session
//! segments, against a bare insert of exactly the same rows in the same
//! batches, measured in one run against the same server.
//!
//! * node path: every segment goes to a fresh `ClickHouseStore` (database
//!   `ollystack_bench_node`), timed from the first `store()` until nothing is
//!   pending: row building, inserts with deduplication tokens, WAL settling.
//! * bare path: the rows the flusher builds (`Rows::add_segment`, built
//!   beforehand, not timed), grouped into the same batches, one insert per
//!   table per batch, no token, with the node's client settings (database
//!   `ollystack_bench_bare`); then once more with the client's schema
//!   validation off, i.e. plain `RowBinary` (`ollystack_bench_rowbinary`).
//!
//! Each round drops and migrates the databases (untimed), runs the three
//! paths in a rotating order and checks every table's `count()`; medians
//! are reported, with this process's CPU time (and the test front's).
//! Row building and settling are also timed alone on the same batches,
//! which splits the node path's time: its flusher builds, inserts and
//! settles one batch after the other.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clickhouse::{RowOwned, RowWrite};
use ollystack_cluster::NodeId;
use ollystack_node::clock::{SharedClock, TokioClock};
use ollystack_node::metrics::NodeMetrics;
use ollystack_node::model::{CorrelationId, SessionKey, TenantId};
use ollystack_node::session::{LogInput, MemoryBudget, SessionInput, SessionState, SpanInput};
use ollystack_node::store::clickhouse::{migrate, ClickHouseSettings, ClickHouseStore, Rows};
use ollystack_node::store::{FinishedSegment, SessionStore, Settler, SledFlusher};
use ollystack_node::wal::{Wal, WalRecord};
use ollystack_proto::store::{Label, StoredExemplar, WalEntry};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::{span::Event, span::SpanKind, status::StatusCode, Span, Status};
use prost::Message;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::proc;

/// The node the benchmark's segments are stored as.
const BENCH_NODE: NodeId = NodeId(0xbe4c);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sessions, one finished segment each.
    #[arg(long, default_value_t = 3_500)]
    sessions: usize,
    /// Mean spans per session (each has between 1/3 and 5/3 of it).
    #[arg(long, default_value_t = 60)]
    spans_per_session: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Rounds of the three paths (each into fresh databases, in a rotating
    /// order); the medians are reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Rows per flush batch (`clickhouse.batch_max_rows`).
    #[arg(long, default_value_t = ClickHouseSettings::default().batch_max_rows)]
    batch_max_rows: usize,
    /// A real ClickHouse HTTP interface (LZ4 on). Default: start the chdb
    /// test front (`tools/chdb-http`), without compression.
    #[arg(long)]
    clickhouse_url: Option<String>,
    /// Python with chdb-core and `tools/chdb-http` installed (`./scripts/test` prepares `.venv`).
    #[arg(long, env = "OLLYSTACK_TEST_PYTHON", default_value = ".venv/bin/python")]
    python: String,
}

const TABLES: [&str; 4] = ["otel_traces", "otel_logs", "metric_exemplars", "sessions"];

pub async fn run(args: Args) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let now_ms = u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis())?;
    ensure!(args.rounds > 0, "--rounds must be at least 1");
    let segments = workload(&args, now_ms);
    let wal_entries = segments.iter().map(|s| s.wal_keys.len()).sum::<usize>();
    let held = segments.iter().map(|s| s.held_bytes).sum::<u64>();
    let settings = ClickHouseSettings {
        batch_max_rows: args.batch_max_rows,
        // Every segment is queued at once, so batches are full whatever this
        // is; it only keeps the last, partial batch from waiting the default 1 s.
        batch_max_delay: Duration::from_millis(100),
        migrate_on_start: false,
        ..ClickHouseSettings::default()
    };
    let ranges = batches(&segments, settings.batch_max_rows, settings.batch_max_bytes);
    let node_column = BENCH_NODE.hex();
    let build_rows = |r: &Range<usize>| {
        let mut rows = Rows::default();
        let skipped: usize = segments[r.clone()].iter().map(|s| rows.add_segment(&node_column, s)).sum();
        (skipped == 0).then_some(rows).context("records did not decode")
    };
    let built: Vec<Rows> = ranges.iter().map(build_rows).collect::<anyhow::Result<_>>()?;
    let count = |f: fn(&Rows) -> usize| built.iter().map(f).sum::<usize>() as u64;
    let expected = [count(|r| r.traces.len()), count(|r| r.logs.len()), count(|r| r.exemplars.len()), count(|r| r.sessions.len())];
    let rows: u64 = expected.iter().sum();
    let encoded: usize = segments.iter().map(|s| s.encoded.len()).sum();
    println!(
        "workload: {} sessions: {} spans, {} logs, {} exemplars, {} session rows = {rows} rows; {:.1} MiB of encoded segments; {} batches of <= {} rows",
        segments.len(),
        expected[0],
        expected[1],
        expected[2],
        expected[3],
        encoded as f64 / (1 << 20) as f64,
        ranges.len(),
        settings.batch_max_rows
    );

    let (shim, url, compression) = match &args.clickhouse_url {
        Some(url) => (None, url.clone(), true),
        None => {
            let (shim, url) = Shim::start(&args.python).await?;
            (Some(shim), url, false)
        }
    };
    let what = if compression { "ClickHouse, LZ4" } else { "chdb-http test front, no compression" };
    println!("server: {url} ({what})");
    let server_pid = shim.as_ref().map(|s| s.child.id());
    let db = |name: &str| ClickHouseSettings { url: url.clone(), compression, database: name.into(), ..settings.clone() };
    let dbs = [db("ollystack_bench_node"), db("ollystack_bench_bare"), db("ollystack_bench_rowbinary")];
    let held_per_batch: Vec<Vec<(Vec<u64>, u64)>> =
        ranges.iter().map(|r| segments[r.clone()].iter().map(|s| (s.wal_keys.clone(), s.held_bytes)).collect()).collect();

    // The flusher's parts alone: row building as it does it (one batch at a
    // time on one thread, dropped after use), and settling on a WAL holding
    // the same entries.
    let meter = Meter::start(None)?;
    for r in &ranges {
        drop(build_rows(r)?);
    }
    let build = meter.stop()?;
    let (_settle_dir, settler_alone) = settler(wal_entries, held)?;
    let meter = Meter::start(None)?;
    for batch in &held_per_batch {
        let held: Vec<(&[u64], u64)> = batch.iter().map(|(k, b)| (k.as_slice(), *b)).collect();
        settler_alone.settle(&held).await?;
    }
    let settle = meter.stop()?;

    // The three paths, into fresh databases each round, in a rotating order.
    let mut costs: [Vec<Cost>; 3] = Default::default();
    let mut per_table = [[Duration::ZERO; 4]; 3];
    for round in 0..args.rounds {
        for s in &dbs {
            s.server_client().query(&format!("DROP DATABASE IF EXISTS {}", s.database)).execute().await?;
            migrate(s).await.with_context(|| format!("migrating {}", s.database))?;
        }
        for path in (0..3).map(|k| (round + k) % 3) {
            let node_input = if path == 0 { Some((settler(wal_entries, held)?, segments.clone())) } else { None };
            let meter = Meter::start(server_pid)?;
            let tables = match node_input {
                Some(((_dir, settler), segments)) => {
                    let batches = node_path(&dbs[0], settler, segments).await?;
                    ensure!(batches == ranges.len() as u64, "the flusher wrote {batches} batches, the bare path {}", ranges.len());
                    [Duration::ZERO; 4]
                }
                None if path == 1 => bare_path(&dbs[1].client(), &built).await?,
                None => bare_path(&dbs[2].client().with_validation(false), &built).await?,
            };
            costs[path].push(meter.stop()?);
            for (sum, t) in per_table[path].iter_mut().zip(tables) {
                *sum += t / args.rounds as u32;
            }
        }
        for s in &dbs {
            verify(s, &expected).await?;
        }
    }
    drop(shim);
    let [node, bare, plain] = costs.each_ref().map(|c| median(c));

    println!(
        "row building alone (Rows::add_segment per batch, 1 thread): {:.2}s = {:.0} rows/s, CPU {:.1} us/row",
        build.wall,
        rows as f64 / build.wall,
        1e6 * build.cpu / rows as f64
    );
    println!("settling alone (WAL done markers, sled flush, release; per batch): {:.3}s", settle.wall);
    let rounds: Vec<String> =
        (0..args.rounds).map(|r| format!("{:.2}/{:.2}/{:.2}", costs[0][r].wall, costs[1][r].wall, costs[2][r].wall)).collect();
    println!("rounds, wall seconds node/bare/plain: {}; medians below", rounds.join(", "));
    println!(
        "node path (ClickHouseStore, first store() until none pending): {}, {:.0} segments/s",
        node.show(rows),
        segments.len() as f64 / node.wall
    );
    for (name, cost, tables) in [
        ("bare insert (node's client settings: validation on)", bare, per_table[1]),
        ("bare insert (validation off: plain RowBinary)", plain, per_table[2]),
    ] {
        let split: Vec<String> = TABLES.iter().zip(tables).map(|(t, d)| format!("{t} {:.2}s", d.as_secs_f64())).collect();
        println!("{name}: {}; mean per table {}", cost.show(rows), split.join(", "));
    }
    println!(
        "ratio node / bare rows/s: {:.1}% (node / plain RowBinary: {:.1}%)",
        100.0 * bare.wall / node.wall,
        100.0 * plain.wall / node.wall
    );
    // The flusher builds, inserts and settles one batch after the other, so
    // building and settling add to its wall time.
    let inserts = node.wall - build.wall - settle.wall;
    let share = |s: f64| 100.0 * s / node.wall;
    println!(
        "node wall split: build {:.2}s ({:.0}%), settle {:.3}s ({:.1}%), inserts and the rest {inserts:.2}s ({:.0}%; bare inserts took {:.2}s)",
        build.wall,
        share(build.wall),
        settle.wall,
        share(settle.wall),
        share(inserts),
        bare.wall
    );
    println!(
        "node CPU (this process) split: build {:.2}s, insert serialization ~ bare {:.2}s, settle {:.3}s, rest {:.2}s of {:.2}s",
        build.cpu,
        bare.cpu,
        settle.cpu,
        node.cpu - build.cpu - bare.cpu - settle.cpu,
        node.cpu
    );
    println!("verified after each round: {} hold {expected:?} rows in each database", TABLES.join("/"));
    Ok(())
}

/// The cost with the median wall time.
fn median(costs: &[Cost]) -> Cost {
    let mut sorted = costs.to_vec();
    sorted.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    sorted[sorted.len() / 2]
}

/// Wall time and CPU time of this process, and of the server when it is
/// the local test front.
struct Meter {
    t0: Instant,
    cpu0: f64,
    server: Option<(u32, f64)>,
}

#[derive(Debug, Clone, Copy)]
struct Cost {
    wall: f64,
    cpu: f64,
    server_cpu: Option<f64>,
}

impl Meter {
    fn start(server: Option<u32>) -> anyhow::Result<Self> {
        let server = server.map(|pid| proc::cpu_seconds(pid).map(|cpu| (pid, cpu))).transpose()?;
        Ok(Self { t0: Instant::now(), cpu0: proc::cpu_seconds(std::process::id())?, server })
    }

    fn stop(self) -> anyhow::Result<Cost> {
        let wall = self.t0.elapsed().as_secs_f64();
        let cpu = proc::cpu_seconds(std::process::id())? - self.cpu0;
        let server_cpu = self.server.map(|(pid, cpu0)| proc::cpu_seconds(pid).map(|cpu| cpu - cpu0)).transpose()?;
        Ok(Cost { wall, cpu, server_cpu })
    }
}

impl Cost {
    fn show(&self, rows: u64) -> String {
        let server = self.server_cpu.map(|s| format!(", server {s:.2}s")).unwrap_or_default();
        format!(
            "{:.2}s = {:.0} rows/s; CPU: bench {:.2}s ({:.1} us/row){server}",
            self.wall,
            rows as f64 / self.wall,
            self.cpu,
            1e6 * self.cpu / rows as f64
        )
    }
}

/// Hands every segment to a fresh store and returns once none is pending,
/// with the number of batches its flusher wrote.
async fn node_path(settings: &ClickHouseSettings, settler: Arc<Settler>, segments: Vec<FinishedSegment>) -> anyhow::Result<u64> {
    let metrics = Arc::new(NodeMetrics::default());
    let clock: SharedClock = Arc::new(TokioClock::system());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (store, task) = ClickHouseStore::start(settings.clone(), settler, clock, metrics.clone(), BENCH_NODE, stopped);
    for seg in segments {
        store.store(seg).await?;
    }
    while store.pending_segments() > 0 {
        // A failed insert is retried forever; for a benchmark it is fatal.
        ensure!(metrics.flush_failures.get() == 0, "the flusher's inserts failed (RUST_LOG=warn shows why)");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.send(true)?;
    task.await?;
    Ok(metrics.clickhouse_batches.get())
}

/// Inserts every batch, one insert per table, in the flusher's order;
/// returns the time per table.
async fn bare_path(client: &clickhouse::Client, batches: &[Rows]) -> anyhow::Result<[Duration; 4]> {
    let mut per_table = [Duration::ZERO; 4];
    for rows in batches {
        let t = Instant::now();
        insert(client, TABLES[0], &rows.traces).await?;
        per_table[0] += t.elapsed();
        let t = Instant::now();
        insert(client, TABLES[1], &rows.logs).await?;
        per_table[1] += t.elapsed();
        let t = Instant::now();
        insert(client, TABLES[2], &rows.exemplars).await?;
        per_table[2] += t.elapsed();
        let t = Instant::now();
        insert(client, TABLES[3], &rows.sessions).await?;
        per_table[3] += t.elapsed();
    }
    Ok(per_table)
}

async fn insert<T: RowOwned + RowWrite>(client: &clickhouse::Client, table: &str, rows: &[T]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = client.insert::<T>(table).await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await.with_context(|| format!("inserting into {table}"))
}

async fn verify(settings: &ClickHouseSettings, expected: &[u64; 4]) -> anyhow::Result<()> {
    let client = settings.client();
    for (table, want) in TABLES.iter().zip(expected) {
        let got: u64 = client.query(&format!("SELECT count() FROM {table}")).fetch_one().await?;
        ensure!(got == *want, "{}.{table} holds {got} rows, expected {want}", settings.database);
    }
    Ok(())
}

/// Segments grouped as the flusher's queue takes them
/// (`Pending::take_batch`): in order, a batch closing before the segment
/// that would take it past either bound.
fn batches(segments: &[FinishedSegment], max_rows: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut rows, mut bytes) = (0, 0, 0);
    for (i, seg) in segments.iter().enumerate() {
        let s = &seg.summary;
        let (r, b) = (1 + (s.spans + s.logs + s.exemplars) as usize, seg.encoded.len());
        if i > start && (rows + r > max_rows || bytes + b > max_bytes) {
            out.push(start..i);
            (start, rows, bytes) = (i, 0, 0);
        }
        rows += r;
        bytes += b;
    }
    if start < segments.len() {
        out.push(start..segments.len());
    }
    out
}

/// A settler over a fresh WAL holding `entries` entries (keys 1..=entries,
/// as the workload numbers them) and a budget holding `held` bytes.
fn settler(entries: usize, held: u64) -> anyhow::Result<(tempfile::TempDir, Arc<Settler>)> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path().join("db"))?;
    let (wal, _) = Wal::open(&dir.path().join("wal"), &db)?;
    let entry = WalEntry::default().encode_to_vec();
    let keys = wal.append(&vec![WalRecord::Entry(entry); entries])?;
    ensure!(keys.first() == Some(&1) && keys.len() == entries, "a fresh WAL numbers entries from 1");
    let budget = MemoryBudget::new(u64::MAX);
    budget.force_reserve(held);
    let settler = Settler { wal: Arc::new(wal), flusher: Arc::new(SledFlusher::new(db)), budget: Arc::new(budget) };
    Ok((dir, Arc::new(settler)))
}

/// The chdb HTTP front, stopped on drop.
struct Shim {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Shim {
    async fn start(python: &str) -> anyhow::Result<(Shim, String)> {
        let dir = tempfile::tempdir()?;
        let port_file = dir.path().join("port");
        let stderr_path = dir.path().join("stderr.log");
        let child = std::process::Command::new(python)
            .args(["-m", "ollystack_chdb_http", "--port", "0", "--data"])
            .arg(dir.path().join("data"))
            .arg("--port-file")
            .arg(&port_file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()
            .with_context(|| format!("running {python} -m ollystack_chdb_http (see --python)"))?;
        let mut shim = Shim { child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
            if let Some(status) = shim.child.try_wait()? {
                bail!("chdb-http exited during start-up ({status}); stderr:\n{}", stderr());
            }
            if let Some(port) = std::fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse::<u16>().ok()) {
                let url = format!("http://127.0.0.1:{port}");
                if reqwest::get(format!("{url}/ping")).await.is_ok_and(|r| r.status() == 200) {
                    return Ok((shim, url));
                }
            }
            if Instant::now() > deadline {
                bail!("chdb-http did not answer /ping within 60 s; stderr:\n{}", stderr());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The workload: one finished segment per session, as the node's session
// actors make them (signals absorbed per service batch, one WAL entry each).

const SERVICES: [&str; 6] = ["web", "checkout", "payments", "inventory", "shipping", "users"];
const ROUTES: [(&str, &str); 5] = [
    ("GET", "/api/v1/orders/{id}"),
    ("POST", "/api/v1/checkout"),
    ("GET", "/api/v1/users/{id}/cart"),
    ("PUT", "/api/v1/cart/{id}/items"),
    ("DELETE", "/api/v1/cart/{id}"),
];

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(value: impl Into<String>) -> Value {
    Value::StringValue(value.into())
}

fn workload(args: &Args, now_ms: u64) -> Vec<FinishedSegment> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut wal_key = 0;
    (0..args.sessions).map(|i| session(&mut rng, i, args.spans_per_session, now_ms, &mut wal_key)).collect()
}

/// One session: 3-5 services, one trace, ~10 attributes per span, events
/// on some spans, 3-5 logs and 2 exemplars; event times in the last 10 min.
fn session(rng: &mut impl Rng, i: usize, mean_spans: usize, now_ms: u64, wal_key: &mut u64) -> FinishedSegment {
    let id = format!("order-{i:07}");
    let mut names = SERVICES.to_vec();
    names.shuffle(rng);
    names.truncate(rng.random_range(3..=5));
    let services: Vec<Arc<str>> = names.iter().map(|s| Arc::from(*s)).collect();
    let mut inputs: Vec<SessionInput> = services.iter().map(|_| SessionInput::default()).collect();
    let n = rng.random_range(mean_spans / 3..=mean_spans * 5 / 3).max(1);
    let trace_id: [u8; 16] = rng.random();
    let t0 = (now_ms - rng.random_range(60_000..600_000)) * 1_000_000;
    let user = format!("user-{}", rng.random_range(1..50_000));
    let (method, route) = ROUTES[rng.random_range(0..ROUTES.len())];
    let path = route.replace("{id}", &rng.random_range(10_000..99_999).to_string());
    let mut span_ids: Vec<[u8; 8]> = Vec::with_capacity(n);
    for j in 0..n {
        let svc = j % services.len();
        let span_id: [u8; 8] = rng.random();
        let start = t0 + j as u64 * 250_000;
        let failed = rng.random_bool(0.03);
        let db = j % 3 == 2;
        let mut attributes = vec![
            kv("http.request.method", text(method)),
            kv("http.route", text(route)),
            kv("http.response.status_code", Value::IntValue(if failed { 503 } else { 200 })),
            kv("url.path", text(path.as_str())),
            kv("server.address", text(format!("{}.prod.svc.cluster.local", names[svc]))),
            kv("server.port", Value::IntValue(8443)),
            kv("user.id", text(user.as_str())),
            kv("correlation_id", text(id.as_str())),
            kv("thread.id", Value::IntValue(rng.random_range(1..64))),
            kv("deployment.environment.name", text("production")),
        ];
        if db {
            attributes.push(kv("db.system", text("postgresql")));
            attributes.push(kv("db.query.text", text("SELECT id, total, status FROM orders WHERE customer_id = $1 AND status = 'open'")));
        }
        let mut events = Vec::new();
        if j % 8 == 5 {
            let attributes = vec![kv("cache.key", text(format!("cart:{user}"))), kv("cache.backend", text("redis"))];
            events.push(Event { time_unix_nano: start + 10_000, name: "cache.miss".into(), attributes, ..Default::default() });
        }
        if failed {
            let attributes = vec![
                kv("exception.type", text("UpstreamTimeout")),
                kv("exception.message", text("upstream did not answer within 2s")),
                kv("exception.escaped", Value::BoolValue(true)),
            ];
            events.push(Event { time_unix_nano: start + 20_000, name: "exception".into(), attributes, ..Default::default() });
        }
        let span = Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            parent_span_id: if j == 0 { Vec::new() } else { span_ids[rng.random_range(0..j)].to_vec() },
            name: if db { "SELECT orders".into() } else { format!("{method} {route}") },
            kind: match j {
                0 => SpanKind::Server,
                _ if db => SpanKind::Client,
                _ => SpanKind::Internal,
            } as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + rng.random_range(100_000..50_000_000),
            attributes,
            events,
            status: Some(if failed {
                Status { code: StatusCode::Error as i32, message: "upstream timeout".into() }
            } else {
                Status { code: StatusCode::Unset as i32, message: String::new() }
            }),
            ..Default::default()
        };
        let encoded = span.encode_to_vec().into_boxed_slice();
        inputs[svc].spans.extend(SpanInput::from_span(services[svc].clone(), &span, encoded));
        span_ids.push(span_id);
    }
    for _ in 0..rng.random_range(3..=5) {
        let k = rng.random_range(0..n);
        let (severity, number) = [("INFO", 9), ("INFO", 9), ("WARN", 13), ("ERROR", 17)][rng.random_range(0..4)];
        let time = t0 + k as u64 * 250_000 + 5_000;
        let log = LogRecord {
            time_unix_nano: time,
            observed_time_unix_nano: time + 1_000,
            severity_number: number,
            severity_text: severity.into(),
            body: Some(AnyValue { value: Some(text(format!("{id}: step {k} for {user} done in {} ms", rng.random_range(1..900)))) }),
            attributes: vec![kv("code.function.name", text("OrderService.process")), kv("user.id", text(user.as_str()))],
            trace_id: trace_id.to_vec(),
            span_id: span_ids[k].to_vec(),
            flags: 1,
            ..Default::default()
        };
        let svc = k % services.len();
        inputs[svc].logs.push(LogInput::from_log(services[svc].clone(), &log, log.encode_to_vec().into_boxed_slice()));
    }
    for e in 0..2u64 {
        inputs[0].exemplars.push(StoredExemplar {
            service_name: names[0].into(),
            metric_name: "http.server.request.duration".into(),
            time_unix_nano: t0 + e * 1_000_000,
            value: rng.random_range(0.001..2.0),
            trace_id: trace_id.to_vec(),
            span_id: span_ids[0].to_vec(),
            labels: vec![
                Label { key: "http.request.method".into(), value: method.into() },
                Label { key: "http.route".into(), value: route.into() },
            ],
        });
    }
    let key = SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted(id) };
    let mut state = SessionState::new(key, now_ms);
    for mut input in inputs {
        if input.spans.is_empty() && input.logs.is_empty() && input.exemplars.is_empty() {
            continue;
        }
        *wal_key += 1;
        input.wal_key = Some(*wal_key);
        state.absorb(input, now_ms);
    }
    state.to_finished(i as u64 + 1, now_ms, "idle")
}
