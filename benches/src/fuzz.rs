//! `fuzz`: a mutation fuzzer over what the node decodes from the outside,
//! run as a long benchmark (no nightly toolchain here for cargo-fuzz).
//! Each target starts from valid inputs and feeds byte-level mutations of
//! them (bit flips, byte sets, inserts, deletes, duplicated and spliced
//! ranges, truncation) to the node's own code, catching panics:
//!
//! * `otlp-proto`, `otlp-json`: OTLP trace/log/metric requests decoded as
//!   the receivers do (protobuf, OTLP/JSON), then prepared by the ingest
//!   path (correlation-ID extraction, log-body JSON, tenants, semantic
//!   conventions; tenancy on);
//! * `ids`: correlation-ID validation, SQL scrubbing, log bodies and
//!   baggage as text;
//! * `cluster`: forwarded requests (protobuf, with their OTLP and entry
//!   bodies) and Raft proposals (JSON) as the cluster port decodes them;
//! * `api`: an in-process node's API: mutated paths, query strings and
//!   bodies; a dropped connection or a 500 is a finding.
//!
//! Findings (the input, hex) go to `--out`. `cargo test -p ollystack-benches`
//! runs every pure target for a few thousand inputs.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ollystack_node::correlate::{self, CorrelationSettings};
use ollystack_node::ingest::prepare::{prepare_logs, prepare_metrics, prepare_traces};
use ollystack_node::ingest::{AttrLimits, NoLimits};
use ollystack_proto::cluster as pb;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, Exemplar, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Targets (default: all).
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where findings are written.
    #[arg(long, default_value = "fuzz-findings")]
    out: PathBuf,
}

pub const PURE_TARGETS: [&str; 4] = ["otlp-proto", "otlp-json", "ids", "cluster"];

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(Value::StringValue(v.into())) }), ..Default::default() }
}

fn settings() -> CorrelationSettings {
    CorrelationSettings { tenancy_enabled: true, ..CorrelationSettings::default() }
}

fn logs() -> ExportLogsServiceRequest {
    let bodies = [
        r#"{"correlation_id":"order-7","msg":"paid","nested":{"a":[1,2,{"b":null}]}}"#,
        "plain text with correlation_id=order-8 and \u{1F600}",
        r#"{"request_id": "req-\u0000-9", "level": "error"}"#,
    ];
    let records = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| LogRecord {
            body: Some(AnyValue { value: Some(Value::StringValue((*b).into())) }),
            attributes: vec![kv("baggage", "correlation_id=order-9,tenant_id=acme"), kv("tenant_id", "acme")],
            trace_id: if i == 0 { vec![1; 16] } else { vec![] },
            span_id: vec![2; 8],
            ..Default::default()
        })
        .collect();
    let resource = Some(Resource { attributes: vec![kv("service.name", "shop"), kv("tenant_id", "t1")], ..Default::default() });
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource,
            scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn metrics() -> ExportMetricsServiceRequest {
    let exemplar = Exemplar {
        filtered_attributes: vec![kv("correlation_id", "order-7")],
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        value: Some(exemplar::Value::AsDouble(4.5)),
        ..Default::default()
    };
    let point = HistogramDataPoint { exemplars: vec![exemplar], attributes: vec![kv("route", "/quote")], ..Default::default() };
    let metric = Metric {
        name: "latency".into(),
        data: Some(metric::Data::Histogram(Histogram { data_points: vec![point], ..Default::default() })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { metrics: vec![metric], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn traces() -> ExportTraceServiceRequest {
    crate::workload::request(3, 12, 3, |t| Some(format!("order-{t}")))
}

/// One mutation of `input` (from `rng`), maybe spliced with `other`.
pub fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = out.len();
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] = *[0u8, 0x7f, 0x80, 0xff, b'"', b'{', b'\\'].get(rng.random_range(0..7)).unwrap_or(&0);
            }
            2 => {
                let i = rng.random_range(0..=len);
                out.insert(i, rng.random());
            }
            3 if len > 0 => {
                let i = rng.random_range(0..len);
                out.remove(i);
            }
            4 if len > 1 => {
                let (a, b) = (rng.random_range(0..len), rng.random_range(0..len));
                let (a, b) = (a.min(b), a.max(b));
                let piece: Vec<u8> = out[a..b].to_vec();
                let at = rng.random_range(0..=len);
                out.splice(at..at, piece);
            }
            5 if !other.is_empty() => {
                let a = rng.random_range(0..other.len());
                let b = rng.random_range(a..other.len());
                let at = rng.random_range(0..=len);
                out.splice(at..at, other[a..b].iter().copied());
            }
            _ if len > 0 => out.truncate(rng.random_range(0..len)),
            _ => {}
        }
    }
    out.truncate(1 << 20);
    out
}

fn prepare_all(
    s: &CorrelationSettings,
    t: Option<ExportTraceServiceRequest>,
    l: Option<ExportLogsServiceRequest>,
    m: Option<ExportMetricsServiceRequest>,
) {
    if let Some(t) = t {
        let _ = prepare_traces(s, &AttrLimits::default(), &NoLimits, t);
    }
    if let Some(l) = l {
        let _ = prepare_logs(s, &AttrLimits::default(), &NoLimits, l);
    }
    if let Some(m) = m {
        let _ = prepare_metrics(s, &AttrLimits::default(), &NoLimits, m);
    }
}

/// The corpus of a target: valid inputs to mutate.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let ids: Vec<Vec<u8>> =
        ["order-42", "olly-2lsk5p9rzg-906ae32e", "x' OR 1=1 --", "SELECT * FROM t WHERE a = 'b' AND c = 4", "correlation_id=a,tenant_id=b"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
    match target {
        "otlp-proto" => vec![traces().encode_to_vec(), logs().encode_to_vec(), metrics().encode_to_vec()],
        "otlp-json" => vec![
            serde_json::to_vec(&traces()).unwrap_or_default(),
            serde_json::to_vec(&logs()).unwrap_or_default(),
            serde_json::to_vec(&metrics()).unwrap_or_default(),
        ],
        "ids" => ids,
        "cluster" => {
            let entries = pb::forward_request::Body::Entries(pb::Entries { entries: vec![vec![1, 2, 3]], shipment: 7 });
            let otlp = pb::forward_request::Body::OtlpTraces(traces().encode_to_vec());
            let segments = pb::forward_request::Body::Segments(pb::HandedSegments {
                segments: vec![pb::HandedSegment { archived: vec![9; 20], index_json: b"{}".to_vec() }],
                bindings: vec![pb::HandedBinding {
                    tenant_id: "t".into(),
                    trace_id: vec![1; 16],
                    correlation_id: "c".into(),
                    explicit: true,
                }],
                taken_shipments: vec![3, 4],
            });
            let mut out: Vec<Vec<u8>> = [entries, otlp, segments]
                .into_iter()
                .map(|body| pb::ForwardRequest { ring_epoch: 3, from_node: 1, body: Some(body), forward_id: 9 }.encode_to_vec())
                .collect();
            out.push(br#"{"SetRing":{"members":[{"id":1,"weight":1},{"id":2,"weight":2}]}}"#.to_vec());
            out.push(br#"{"SetLimits":{"config":{"window_ms":60000,"lease_units":64,"attributes":{"http.route":1000}}}}"#.to_vec());
            out
        }
        _ => Vec::new(),
    }
}

/// Runs one input through a pure target.
pub fn run_one(target: &str, input: &[u8], s: &CorrelationSettings) {
    match target {
        "otlp-proto" => prepare_all(
            s,
            ExportTraceServiceRequest::decode(input).ok(),
            ExportLogsServiceRequest::decode(input).ok(),
            ExportMetricsServiceRequest::decode(input).ok(),
        ),
        "otlp-json" => {
            prepare_all(s, serde_json::from_slice(input).ok(), serde_json::from_slice(input).ok(), serde_json::from_slice(input).ok())
        }
        "ids" => {
            let text = String::from_utf8_lossy(input);
            let _ = correlate::validate(s, &text);
            let _ = correlate::scrub_sql_literals(&text);
            let attrs = vec![kv("baggage", &text), kv("tenant_id", &text), kv("correlation_id", &text)];
            let _ = correlate::tenant_of(s, &attrs, &attrs);
            let body = AnyValue { value: Some(Value::StringValue(text.into_owned())) };
            let _ = correlate::log_candidate(s, &attrs, &attrs, Some(&body));
            let _ = correlate::span_candidate(s, &attrs, &attrs);
        }
        "cluster" => {
            if let Ok(f) = pb::ForwardRequest::decode(input) {
                match f.body {
                    Some(pb::forward_request::Body::OtlpTraces(b)) => {
                        prepare_all(s, ExportTraceServiceRequest::decode(b.as_slice()).ok(), None, None)
                    }
                    Some(pb::forward_request::Body::OtlpLogs(b)) => {
                        prepare_all(s, None, ExportLogsServiceRequest::decode(b.as_slice()).ok(), None)
                    }
                    Some(pb::forward_request::Body::Entries(e)) => {
                        for entry in e.entries {
                            let _ = ollystack_proto::store::WalEntry::decode(entry.as_slice());
                        }
                    }
                    _ => {}
                }
            }
            let _ = serde_json::from_slice::<ollystack_cluster::raft::ClusterRequest>(input);
        }
        other => panic!("unknown target {other}"),
    }
}

/// Fuzzes a pure target for `budget`; returns (executions, findings).
pub fn fuzz_pure(target: &str, budget: Budget, seed: u64, out: Option<&PathBuf>) -> (u64, u64) {
    let corpus = corpus(target);
    let s = settings();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut execs, mut findings) = (0u64, 0u64);
    let start = Instant::now();
    while !budget.spent(execs, start) {
        let base = &corpus[rng.random_range(0..corpus.len())];
        let other = &corpus[rng.random_range(0..corpus.len())];
        let input = mutate(&mut rng, base, other);
        execs += 1;
        if catch_unwind(AssertUnwindSafe(|| run_one(target, &input, &s))).is_err() {
            findings += 1;
            if let Some(dir) = out {
                let _ = std::fs::create_dir_all(dir);
                if let Ok(mut f) = std::fs::File::create(dir.join(format!("{target}-{execs}.hex"))) {
                    let _ = writeln!(f, "{}", hex(&input));
                }
            }
        }
    }
    (execs, findings)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How long a target runs: a time or a number of inputs.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Time(Duration),
    #[cfg_attr(not(test), allow(dead_code))]
    Inputs(u64),
}

impl Budget {
    fn spent(self, execs: u64, start: Instant) -> bool {
        match self {
            Self::Time(d) => execs.is_multiple_of(64) && start.elapsed() >= d,
            Self::Inputs(n) => execs >= n,
        }
    }
}

/// The API through HTTP on an in-process node.
async fn fuzz_api(budget: Duration, seed: u64, out: &PathBuf) -> anyhow::Result<(u64, u64)> {
    let dir = tempfile::tempdir()?;
    let mut f = ollystack_node::config::ConfigFile { data_dir: dir.path().to_path_buf(), ..Default::default() };
    for l in [&mut f.listen.otlp_grpc, &mut f.listen.otlp_http, &mut f.listen.api, &mut f.listen.cluster] {
        *l = "127.0.0.1:0".into();
    }
    f.correlation.tenancy = true;
    let node = ollystack_node::server::start(f.build_and_validate()?).await?;
    let base = format!("http://{}", node.api_addr);
    let client = reqwest::Client::new();
    // One session for the lookups to find (tenant acme, ID order-1).
    let mut seeded = traces();
    for rs in &mut seeded.resource_spans {
        rs.resource.get_or_insert_with(Resource::default).attributes.push(kv("tenant_id", "acme"));
    }
    let first = seeded.resource_spans.iter_mut().flat_map(|rs| rs.scope_spans.iter_mut()).flat_map(|ss| ss.spans.iter_mut()).next();
    if let Some(span) = first {
        span.attributes.push(kv("correlation_id", "order-1"));
    }
    client
        .post(format!("http://{}/v1/traces", node.otlp_http_addr))
        .header("content-type", "application/x-protobuf")
        .body(seeded.encode_to_vec())
        .send()
        .await?
        .error_for_status()?;
    let paths = [
        "/api/v1/correlate/order-1?tenant=acme",
        "/api/v1/correlate/order-1/timeline?tenant=acme",
        "/api/v1/sessions?tenant=acme&since=1h&limit=20&service=shop&status=error",
        "/api/v1/traces/0102030405060708090a0b0c0d0e0f10?tenant=acme",
        "/api/v1/metrics/latency/exemplars?tenant=acme&since=15m",
        "/api/v1/exemplars/0102030405060708090a0b0c0d0e0f10/trace?tenant=acme",
    ];
    let bodies = [
        r#"{"correlation_id":"order-1"}"#,
        r#"{"start":"2026-12-07T10:00:00Z","end":"2026-12-07T11:00:00Z"}"#,
        r#"{"q":"slowest checkout requests with errors in the last hour"}"#,
    ];
    let posts = ["/api/v1/ai/rca?tenant=acme", "/api/v1/ai/analyze?tenant=acme", "/api/v1/ai/nlq?tenant=acme"];
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut execs, mut findings) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < budget {
        let request = if rng.random_bool(0.5) {
            let p = paths[rng.random_range(0..paths.len())].as_bytes();
            let mutated = String::from_utf8_lossy(&mutate(&mut rng, p, p)).into_owned();
            let path: String = mutated.chars().filter(|c| !c.is_control() && *c != ' ' && *c != '#').collect();
            client.get(format!("{base}/{}", path.trim_start_matches('/')))
        } else {
            let i = rng.random_range(0..posts.len());
            let b = bodies[i].as_bytes();
            client
                .post(format!("{base}{}", posts[i]))
                .body(mutate(&mut rng, b, bodies[0].as_bytes()))
                .header("content-type", "application/json")
        };
        let Ok(request) = request.build() else { continue };
        let what = format!("{} {}", request.method(), request.url());
        execs += 1;
        let bad = match client.execute(request).await {
            Ok(r) => r.status().as_u16() == 500,
            Err(_) => true,
        };
        if bad {
            findings += 1;
            std::fs::create_dir_all(out)?;
            std::fs::write(out.join(format!("api-{execs}.txt")), what)?;
        }
    }
    node.shutdown().await;
    Ok((execs, findings))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut targets: Vec<String> = if args.targets.is_empty() {
        PURE_TARGETS.iter().map(|t| t.to_string()).chain(["api".to_string()]).collect()
    } else {
        args.targets.clone()
    };
    targets.dedup();
    let budget = Duration::from_secs(args.seconds);
    let cpu0 = crate::proc::cpu_seconds(std::process::id())?;
    let mut total = 0;
    for target in &targets {
        let started = Instant::now();
        let (execs, findings) = if target == "api" {
            fuzz_api(budget, args.seed, &args.out).await?
        } else {
            let (t, seed, out) = (target.clone(), args.seed, args.out.clone());
            tokio::task::spawn_blocking(move || fuzz_pure(&t, Budget::Time(budget), seed, Some(&out))).await?
        };
        total += findings;
        let secs = started.elapsed().as_secs_f64();
        println!("{target:<12} {execs:>10} inputs  {:>9.0}/s  {findings} finding(s)", execs as f64 / secs);
    }
    let cpu = crate::proc::cpu_seconds(std::process::id())? - cpu0;
    println!("CPU: {cpu:.0} s ({:.3} CPU-hours); findings in {}: {total}", cpu / 3600.0, args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pure_target_survives_its_mutations() {
        std::panic::set_hook(Box::new(|_| {}));
        for target in PURE_TARGETS {
            let (execs, findings) = fuzz_pure(target, Budget::Inputs(3_000), 7, None);
            assert_eq!((execs, findings), (3_000, 0), "{target}");
        }
        let _ = std::panic::take_hook();
    }

    #[test]
    fn mutations_change_inputs_and_stay_bounded() {
        let mut rng = StdRng::seed_from_u64(1);
        let input = b"correlation_id=order-42".to_vec();
        let changed = (0..100).filter(|_| mutate(&mut rng, &input, &input) != input).count();
        assert!(changed > 90, "{changed}");
    }
}
