//! The workload: correlation sessions whose spans, logs and metric exemplars are split into
//! batches sent to random nodes over OTLP gRPC (tonic on the simulated
//! network), some arriving late; queries to random nodes while faults are
//! on; and, once the cluster has converged, the final check of every
//! session (invariants 1, 4 and 5) and of who holds live sessions (2).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, Exemplar, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::oracle::{Acked, Answer, Items};
use crate::plan::QUIET_START_MS;
use crate::run::{Phase, World, LIMITED_ATTRIBUTE, LIMIT_PER_WINDOW, OVERFLOW_MARKER};

/// Attempts per batch before the client gives up on it.
const MAX_ATTEMPTS: u32 = 40;
/// Deadline of one export or query.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Distinct values of the limited attribute the workload sends.
const USER_POOL: u64 = 30;
/// How long one leave call may take (draining and handing over included).
const LEAVE_TIMEOUT: Duration = Duration::from_secs(60);

/// One request's worth of a session's signals.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The session as the oracle knows it: its ID, or `tenant/ID` for the
    /// second tenant's sessions.
    pub session: String,
    /// The correlation ID its records carry.
    pub id: String,
    /// The tenant its resource names (`None`: the default tenant).
    pub tenant: Option<&'static str>,
    pub trace_id: [u8; 16],
    /// (span ID hex, limited attribute value)
    pub spans: Vec<(String, String)>,
    /// Log bodies (unique).
    pub logs: Vec<String>,
    /// Span IDs (hex, unique) of metric exemplars, one data point each.
    pub exemplars: Vec<String>,
    /// When it is first sent, in simulated ms since the start.
    pub send_at_ms: u64,
    /// Whether its records carry the session's ID; without it (spans and
    /// logs only) the node finds the session by the trace.
    pub explicit: bool,
}

/// Draws the sessions' batches. Pure given the RNG. A share
/// `trace_only_share` of span and log batches go without the session's ID;
/// every such trace still gets a span or log batch with the ID, or the
/// trace could never join its session.
pub fn draw_batches(seed: u64, sessions: usize, tenants: usize, safety_ms: u64, trace_only_share: f64, rng: &mut StdRng) -> Vec<Batch> {
    let mut out = Vec::new();
    let (mut span_no, mut exemplar_no) = (0u64, 0u64);
    let last_start = (safety_ms * 4 / 5).max(QUIET_START_MS + 1);
    for s in 0..sessions {
        let first = out.len();
        // With two tenants, sessions 2k and 2k+1 share one ID, one in each.
        let (id, tenant) = match tenants {
            1 => (format!("sim-{seed}-{s}"), None),
            _ => (format!("sim-{seed}-{}", s / 2), (s % 2 == 1).then_some(crate::params::SECOND_TENANT)),
        };
        let session = tenant.map_or_else(|| id.clone(), |t| format!("{t}/{id}"));
        let traces: Vec<[u8; 16]> = (0..rng.random_range(1..=2)).map(|_| rng.random()).collect();
        let mut at = rng.random_range(QUIET_START_MS / 2..last_start);
        for b in 0..rng.random_range(2..=6) {
            at += rng.random_range(20..1_500);
            let late = if rng.random_bool(0.1) { rng.random_range(3_000..12_000) } else { 0 };
            let trace_id = traces[rng.random_range(0..traces.len())];
            let batch = if rng.random_bool(0.65) {
                let spans = (0..rng.random_range(1..=4))
                    .map(|_| {
                        span_no += 1;
                        (format!("{:016x}", (seed << 32) ^ span_no), format!("u{}", rng.random_range(0..USER_POOL)))
                    })
                    .collect();
                Batch {
                    session: session.clone(),
                    id: id.clone(),
                    tenant,
                    trace_id,
                    spans,
                    logs: Vec::new(),
                    exemplars: Vec::new(),
                    send_at_ms: at + late,
                    explicit: true,
                }
            } else if rng.random_bool(0.6) {
                let logs = (0..rng.random_range(1..=3)).map(|l| format!("log {session} {b}.{l}")).collect();
                Batch {
                    session: session.clone(),
                    id: id.clone(),
                    tenant,
                    trace_id,
                    spans: Vec::new(),
                    logs,
                    exemplars: Vec::new(),
                    send_at_ms: at + late,
                    explicit: true,
                }
            } else {
                let exemplars = (0..rng.random_range(1..=3))
                    .map(|_| {
                        exemplar_no += 1;
                        format!("{:016x}", (seed << 32) ^ (1 << 31) ^ exemplar_no)
                    })
                    .collect();
                Batch {
                    session: session.clone(),
                    id: id.clone(),
                    tenant,
                    trace_id,
                    spans: Vec::new(),
                    logs: Vec::new(),
                    exemplars,
                    send_at_ms: at + late,
                    explicit: true,
                }
            };
            // Drawn only when on, so seeds without trace-only batches keep
            // their workloads.
            let by_trace = batch.exemplars.is_empty() && trace_only_share > 0.0 && rng.random_bool(trace_only_share);
            out.push(Batch { explicit: !by_trace, ..batch });
        }
        // Spans and logs carrying the ID join a trace to its session (at the
        // trace's home); exemplars are resolved where they arrive.
        for trace in traces {
            let joins = |b: &Batch| b.trace_id == trace && b.exemplars.is_empty();
            let mine = &mut out[first..];
            if !mine.iter().any(|b| joins(b) && b.explicit) {
                if let Some(b) = mine.iter_mut().find(|b| joins(b)) {
                    b.explicit = true;
                }
            }
        }
    }
    out.sort_by_key(|b| b.send_at_ms);
    out
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

fn resource(service: &str, tenant: Option<&str>) -> Option<Resource> {
    let mut attributes = vec![kv("service.name", service)];
    attributes.extend(tenant.map(|t| kv("tenant_id", t)));
    Some(Resource { attributes, ..Default::default() })
}

fn trace_request(b: &Batch, now_ns: u64) -> ExportTraceServiceRequest {
    let spans = b
        .spans
        .iter()
        .map(|(id, user)| Span {
            trace_id: b.trace_id.to_vec(),
            span_id: u64::from_str_radix(id, 16).unwrap_or(1).to_be_bytes().to_vec(),
            name: "op".into(),
            kind: 2,
            start_time_unix_nano: now_ns,
            end_time_unix_nano: now_ns + 1_000_000,
            attributes: [b.explicit.then(|| kv("correlation_id", &b.id)), Some(kv(LIMITED_ATTRIBUTE, user))]
                .into_iter()
                .flatten()
                .collect(),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("sim-svc", b.tenant),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn logs_request(b: &Batch, now_ns: u64) -> ExportLogsServiceRequest {
    let log_records = b
        .logs
        .iter()
        .map(|body| LogRecord {
            time_unix_nano: now_ns,
            observed_time_unix_nano: now_ns,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue { value: Some(any_value::Value::StringValue(body.clone())) }),
            attributes: b.explicit.then(|| kv("correlation_id", &b.id)).into_iter().collect(),
            trace_id: b.trace_id.to_vec(),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("sim-svc", b.tenant),
            scope_logs: vec![ScopeLogs { log_records, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn metrics_request(b: &Batch, now_ns: u64) -> ExportMetricsServiceRequest {
    let data_points = b
        .exemplars
        .iter()
        .enumerate()
        .map(|(i, id)| NumberDataPoint {
            time_unix_nano: now_ns,
            value: Some(number_data_point::Value::AsDouble(i as f64)),
            exemplars: vec![Exemplar {
                filtered_attributes: vec![kv("correlation_id", &b.id)],
                time_unix_nano: now_ns,
                value: Some(exemplar::Value::AsDouble(i as f64)),
                span_id: u64::from_str_radix(id, 16).unwrap_or(1).to_be_bytes().to_vec(),
                trace_id: b.trace_id.to_vec(),
            }],
            ..Default::default()
        })
        .collect();
    let metric = Metric { name: "sim.latency".into(), data: Some(metric::Data::Gauge(Gauge { data_points })), ..Default::default() };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("sim-svc", b.tenant),
            scope_metrics: vec![ScopeMetrics { metrics: vec![metric], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn now_ns() -> u64 {
    (crate::net::EPOCH_UNIX_MS + turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64) * 1_000_000
}

fn elapsed_ms() -> u64 {
    turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64
}

/// Sends one batch to `node`; Ok when the node acknowledged all of it.
async fn export(w: &World, node: &str, b: &Batch, now_ns: u64) -> Result<(), String> {
    let channel = w.channel(node, 4317).map_err(|e| e.to_string())?;
    let status = |s: tonic::Status| format!("{:?} {}", s.code(), s.message());
    let call = async {
        if !b.spans.is_empty() {
            let r = TraceServiceClient::new(channel).export(trace_request(b, now_ns)).await.map_err(status)?;
            Ok::<_, String>(r.into_inner().partial_success.map_or(0, |p| p.rejected_spans))
        } else if !b.logs.is_empty() {
            let r = LogsServiceClient::new(channel).export(logs_request(b, now_ns)).await.map_err(status)?;
            Ok(r.into_inner().partial_success.map_or(0, |p| p.rejected_log_records))
        } else {
            let r = MetricsServiceClient::new(channel).export(metrics_request(b, now_ns)).await.map_err(status)?;
            Ok(r.into_inner().partial_success.map_or(0, |p| p.rejected_data_points))
        }
    };
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => Err("timed out".into()),
        Ok(Err(e)) => Err(e),
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(rejected)) => Err(format!("{rejected} item(s) rejected")),
    }
}

/// Sends a batch until a node acknowledges it (or attempts run out).
async fn send(w: Rc<World>, rng: Rc<RefCell<StdRng>>, b: Batch) {
    tokio::time::sleep(Duration::from_millis(b.send_at_ms.saturating_sub(elapsed_ms()))).await;
    let spans: Vec<String> = b.spans.iter().map(|(id, _)| id.clone()).collect();
    // Like an OTLP exporter, a retry resends the same records.
    let first_sent_ns = now_ns();
    let mut backoff = 50;
    for attempt in 1..=MAX_ATTEMPTS {
        let node = w.random_node(&mut rng.borrow_mut());
        let items = Items { spans: &spans, logs: &b.logs, exemplars: &b.exemplars };
        w.oracle.borrow_mut().sent(&b.session, items);
        if !b.explicit {
            w.oracle.borrow_mut().sent_by_trace(items, b.trace_id);
        }
        match export(&w, &node, &b, first_sent_ns).await {
            Ok(()) => {
                w.oracle.borrow_mut().acked(&b.session, items);
                if b.explicit && b.exemplars.is_empty() {
                    w.oracle.borrow_mut().joined(b.trace_id);
                }
                let trace = ollystack_node::correlate::derive_from_trace(ollystack_node::model::TraceId(b.trace_id));
                let how = if b.explicit { format!(" (trace {trace})") } else { format!(" by trace {trace}") };
                w.event(format!(
                    "ack {} {}+{}+{}{how} via {node} attempt {attempt}",
                    b.session,
                    spans.len(),
                    b.logs.len(),
                    b.exemplars.len()
                ));
                w.outstanding.set(w.outstanding.get() - 1);
                return;
            }
            Err(e) => w.event(format!("refused {} via {node} attempt {attempt}: {e}", b.session)),
        }
        tokio::time::sleep(Duration::from_millis(backoff)).await;
        backoff = (backoff * 2).min(1_000);
    }
    w.event(format!("gave up on a batch of {}", b.session));
    w.outstanding.set(w.outstanding.get() - 1);
}

/// A session's (tenant, correlation ID) from its oracle key.
pub fn split_key(session: &str) -> (&str, &str) {
    session.split_once('/').unwrap_or(("default", session))
}

/// GET `path` from a node's API as `tenant` (`None`: tenancy is off):
/// (status, body).
async fn get(node: &str, path: &str, tenant: Option<&str>) -> Result<(u16, serde_json::Value), String> {
    let call = async {
        let stream = turmoil::net::TcpStream::connect(format!("{node}:8080")).await.map_err(|e| e.to_string())?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::task::spawn_local(conn);
        let mut request = hyper::Request::get(path).header("host", node);
        if let Some(t) = tenant {
            request = request.header("x-tenant-id", t);
        }
        let request = request.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)))
    };
    tokio::time::timeout(CALL_TIMEOUT, call).await.map_err(|_| "timed out".to_owned())?
}

/// Asks `node` for a session (an oracle key). `None`: no answer, or a
/// partial one.
async fn query(w: &World, node: &str, session: &str) -> Result<(Answer, Vec<String>), String> {
    let (tenant, id) = split_key(session);
    let tenant = (w.params.tenants > 1).then_some(tenant);
    let (status, body) = get(node, &format!("/api/v1/correlate/{id}"), tenant).await?;
    match status {
        404 => Ok((Answer::default(), Vec::new())),
        200 => {
            let strings = |list: &str, field: &str| -> Vec<String> {
                body[list].as_array().map(|a| a.iter().filter_map(|x| x[field].as_str().map(str::to_owned)).collect()).unwrap_or_default()
            };
            let users = body["traces"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x["attributes"][LIMITED_ATTRIBUTE].as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let answer = Answer {
                partial: body["partial"].as_bool().unwrap_or(false),
                spans: strings("traces", "span_id"),
                logs: strings("logs", "body"),
                exemplars: strings("metrics", "span_id"),
            };
            Ok((answer, users))
        }
        other => Err(format!("status {other}: {body}")),
    }
}

/// Asks the leaver to leave, as an operator would with `ollystack-node
/// leave`: again after a failure (it may be crashed or cut off), until it
/// has left.
async fn leave(w: Rc<World>) {
    tokio::time::sleep(Duration::from_millis(w.params.leave_at_ms.saturating_sub(elapsed_ms()))).await;
    let node = crate::run::node_name(w.params.leaver);
    let mut attempt = 0;
    while w.leave_pending.get() {
        attempt += 1;
        w.event(format!("asking {node} to leave (attempt {attempt})"));
        let addr = format!("{node}:4320");
        match ollystack_node::cluster::leave_via(&w.transport, &addr, "sim", LEAVE_TIMEOUT).await {
            Ok(epoch) => w.event(format!("{node} says it left at ring epoch {epoch}")),
            Err(e) => {
                w.event(format!("leave of {node} failed: {e}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Queries random sessions on random nodes while faults are on.
async fn probe_queries(w: Rc<World>, rng: Rc<RefCell<StdRng>>) {
    while w.phase.get() == Phase::Safety {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let sessions = w.oracle.borrow().acked_sessions();
        if sessions.is_empty() {
            continue;
        }
        let (session, node) = {
            let mut r = rng.borrow_mut();
            (sessions[r.random_range(0..sessions.len())].clone(), w.random_node(&mut r))
        };
        let before: Acked = w.oracle.borrow().expected_now(&session);
        match query(&w, &node, &session).await {
            Ok((answer, _)) if !answer.partial => {
                let found = w.oracle.borrow().check(&session, &before, &answer);
                w.event(format!(
                    "query {session} via {node}: {} spans {} logs, {} violation(s)",
                    answer.spans.len(),
                    answer.logs.len(),
                    found.len()
                ));
                for v in found {
                    w.violation(format!("invariant 4 (query during faults, via {node}): {v}"));
                }
            }
            Ok(_) => w.event(format!("query {session} via {node}: partial")),
            Err(e) => w.event(format!("query {session} via {node}: {e}")),
        }
    }
}

/// How long a session may stay live on a node that does not own it (by
/// that node's own ring) before it counts as a second owner: the handoff
/// sweep moves it within a tick (200 ms) when it works.
const NON_OWNER_GRACE_MS: u64 = 2_000;

/// Invariant 2 while faults are on: a live session actor on a node that no
/// longer owns the session (by its own applied ring) must be handed off
/// promptly; one that stays makes two live owners, as the owner opens its
/// own actor for new signals. Read between steps, without waiting.
#[derive(Debug, Default)]
pub struct NonOwners {
    since: std::collections::BTreeMap<(String, String), u64>,
    reported: BTreeSet<(String, String)>,
}

impl NonOwners {
    pub fn check(&mut self, w: &World, now: u64) {
        let probes: Vec<_> = w.probes.borrow().values().cloned().collect();
        let mut seen = BTreeSet::new();
        for probe in probes {
            let Some(live) = probe.live_sessions() else { continue };
            for (tenant, id) in live {
                if probe.owner(&tenant, &id).is_some_and(|owner| owner != probe.id) {
                    let key = (probe.id.to_string(), id);
                    let first = *self.since.entry(key.clone()).or_insert(now);
                    if now - first > NON_OWNER_GRACE_MS && self.reported.insert(key.clone()) {
                        w.violation(format!(
                            "invariant 2: session {} live on {} for {} ms without being its owner",
                            key.1,
                            key.0,
                            now - first
                        ));
                    }
                    seen.insert(key);
                }
            }
        }
        self.since.retain(|k, _| seen.contains(k));
    }
}

/// The workload client: sends everything, then runs the final checks once
/// the harness says the cluster converged.
pub async fn run(w: Rc<World>) -> turmoil::Result {
    crate::logs::register_host("load");
    let rng = Rc::new(RefCell::new(StdRng::seed_from_u64(w.params.seed ^ 0x10ad)));
    let p = &w.params;
    let batches = draw_batches(p.seed, p.sessions, p.tenants, p.steps, p.trace_only_share, &mut rng.borrow_mut());
    w.outstanding.set(batches.len());
    for b in &batches {
        w.session_traces.borrow_mut().entry(b.session.clone()).or_default().insert(b.trace_id);
    }
    for b in batches {
        tokio::task::spawn_local(send(w.clone(), rng.clone(), b));
    }
    tokio::task::spawn_local(probe_queries(w.clone(), rng.clone()));
    if w.params.faults.leave {
        tokio::task::spawn_local(leave(w.clone()));
    }
    while w.phase.get() != Phase::Final {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    final_check(&w, &rng).await;
    w.phase.set(Phase::Done);
    Ok(())
}

/// Where every node holds the pieces of `session` (its traces' bindings,
/// aliases, live and closing actors), for the failure report.
fn explain(w: &World, session: &str) {
    let traces: Vec<[u8; 16]> = w.session_traces.borrow().get(session).map(|t| t.iter().copied().collect()).unwrap_or_default();
    let (tenant, id) = split_key(session);
    let mut ids = vec![id.to_owned()];
    ids.extend(traces.iter().map(|t| ollystack_node::correlate::derive_from_trace(ollystack_node::model::TraceId(*t)).to_string()));
    let probes: Vec<_> = w.probes.borrow().iter().map(|(i, p)| (*i, p.clone())).collect();
    for (i, probe) in probes {
        let what = probe.explain(tenant, &ids, &traces).unwrap_or_else(|| "(busy or gone)".into());
        w.event(format!("  {} holds: {what}", crate::run::node_name(i)));
    }
    for c in w.sink.committed().iter().filter(|c| ids.contains(&c.session)) {
        w.event(format!("  stored on {} as {} seq {}: {} item(s)", c.node, c.session, c.seq, c.items.len()));
    }
}

async fn final_check(w: &Rc<World>, rng: &Rc<RefCell<StdRng>>) {
    let mut users = BTreeSet::new();
    let sessions = w.oracle.borrow().sessions();
    for session in sessions {
        let acked = w.oracle.borrow().acked_of(&session);
        let mut last = String::new();
        let mut checked = false;
        for _ in 0..10 {
            let node = w.random_node(&mut rng.borrow_mut());
            match query(w, &node, &session).await {
                Ok((answer, u)) if !answer.partial => {
                    let found = w.oracle.borrow().check(&session, &acked, &answer);
                    for v in &found {
                        w.violation(format!("invariant 1/4 (after convergence, via {node}): {v}"));
                    }
                    if !found.is_empty() {
                        // What every node answers, to tell a lost item from a missed one.
                        for other in w.started_nodes() {
                            match query(w, &other, &session).await {
                                Ok((a, _)) => w.event(format!(
                                    "  {session} via {other}: {} spans {} logs partial {}",
                                    a.spans.len(),
                                    a.logs.len(),
                                    a.partial
                                )),
                                Err(e) => w.event(format!("  {session} via {other}: {e}")),
                            }
                        }
                        explain(w, &session);
                    }
                    w.event(format!(
                        "final {session} via {node}: {} spans {} logs {} exemplars",
                        answer.spans.len(),
                        answer.logs.len(),
                        answer.exemplars.len()
                    ));
                    users.extend(u);
                    checked = true;
                    break;
                }
                Ok(_) => last = format!("partial answer from {node}"),
                Err(e) => last = format!("{node}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !checked {
            w.violation(format!("liveness: no complete answer for {session} after convergence ({last})"));
        }
    }
    users.remove(OVERFLOW_MARKER);
    w.event(format!("final: {} distinct {LIMITED_ATTRIBUTE} values kept", users.len()));
    if users.len() as u64 > LIMIT_PER_WINDOW {
        w.violation(format!("invariant 5: {} distinct {LIMITED_ATTRIBUTE} values kept, limit {LIMIT_PER_WINDOW}", users.len()));
    }
    // Handoffs after the last ring change finish within a few sweeps.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let copies = w.sink.committed();
    let twice = w.oracle.borrow().stored_twice(&copies);
    let handed = w.sink.handed_over.load(std::sync::atomic::Ordering::Relaxed);
    w.event(format!(
        "final: {} segments committed ({handed} handed over by a leaving node), {} items stored twice",
        copies.len(),
        twice.len()
    ));
    for v in twice {
        w.violation(format!("invariant 1 (storage): {v}"));
    }
    let probes: Vec<_> = w.probes.borrow().values().cloned().collect();
    for probe in probes {
        let Some(live) = probe.live_sessions() else { continue };
        for (tenant, id) in live {
            if let Some(owner) = probe.owner(&tenant, &id) {
                if owner != probe.id {
                    w.violation(format!("invariant 2: session {id} is live on {} but owned by {owner} after convergence", probe.id));
                }
            }
        }
    }
}
