//! One request through the topology, as OTLP spans (server, client,
//! producer/consumer and database client spans, statuses, exception
//! events, HTTP status codes) and log records, with the fault applied.
//!
//! Realism: log-normal jitter on every duration, 1% slow outliers, 0.2%
//! background failures, retries with backoff, caller timeouts, callers that
//! absorb 10% of their callees' failures, asynchronous consumers whose
//! failures do not propagate; per window, a traffic mix (weights of the
//! entry operations) and, in incident windows, benign drift unrelated to
//! the fault (one service 15% slower, one operation flakier).

use std::collections::HashSet;

use ollystack_node::model::{SpanId, TraceId};
use ollystack_node::rca::{RcaInput, RcaLog};
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};
use rand::rngs::StdRng;
use rand::Rng;

use super::faults::{Fault, Kind};
use super::topology::{jitter, Call, Mode, Topology};

const MS: f64 = 1_000_000.0;
const INFO: i32 = 9;
const ERROR: i32 = 17;

/// One simulated request.
#[derive(Debug, Default)]
pub struct Request {
    /// (service, span).
    pub spans: Vec<(String, Span)>,
    pub logs: Vec<RcaLog>,
    /// The fault changed something in this request.
    pub fault_hit: bool,
    pub root_failed: bool,
    pub duration_ns: u64,
    pub ops: HashSet<(usize, usize)>,
    pub links: HashSet<(usize, usize)>,
}

impl Request {
    /// The analysis input (spans decoded as the node decodes them).
    pub fn input(&self) -> RcaInput {
        let spans = self.spans.iter().filter_map(|(service, span)| ollystack_node::rca::rca_span(service, span)).collect();
        RcaInput { spans, logs: self.logs.clone(), exemplars: Vec::new() }
    }
}

struct Served {
    end: u64,
    failed: bool,
    /// Answered successfully but with nothing in it (the hiding fault).
    empty: bool,
}

/// What a window's traffic looks like besides the fault.
#[derive(Debug, Clone, Default)]
pub struct Mix {
    /// Weight of each entry operation (same order as `Topology::entries`).
    pub weights: Vec<f64>,
    /// A service whose every operation is 15% slower (benign drift).
    pub slower_service: Option<usize>,
    /// An operation failing 2% of calls instead of 0.2%.
    pub flaky_op: Option<(usize, usize)>,
}

impl Mix {
    fn entry(&self, rng: &mut StdRng) -> usize {
        let total: f64 = self.weights.iter().sum();
        let mut x = rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
        for (i, w) in self.weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        self.weights.len().saturating_sub(1)
    }
}

struct Sim<'a> {
    topo: &'a Topology,
    fault: Option<&'a Fault>,
    mix: &'a Mix,
    rng: &'a mut StdRng,
    trace: [u8; 16],
    next_span: u64,
    out: Request,
}

/// Request number `n` starting at `start_ns`.
pub fn request(topo: &Topology, fault: Option<&Fault>, mix: &Mix, rng: &mut StdRng, n: u64, start_ns: u64) -> Request {
    let mut trace = [0u8; 16];
    trace[..8].copy_from_slice(&0x0e7a_u64.to_be_bytes());
    trace[8..].copy_from_slice(&(n + 1).to_be_bytes());
    let (s, k) = if mix.weights.len() == topo.entries.len() {
        topo.entries[mix.entry(rng)]
    } else {
        topo.entries[rng.random_range(0..topo.entries.len())]
    };
    let mut sim = Sim { topo, fault, mix, rng, trace, next_span: 0, out: Request::default() };
    let served = sim.serve(s, k, start_ns, None, SpanKind::Server);
    sim.out.root_failed = served.failed;
    sim.out.duration_ns = served.end - start_ns;
    sim.out
}

fn ns(ms: f64) -> u64 {
    (ms.max(0.0) * MS) as u64
}

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

impl Sim<'_> {
    fn span_id(&mut self) -> u64 {
        self.next_span += 1;
        self.next_span
    }

    fn targets(&self, kind: Kind, s: usize, k: usize) -> Option<&Fault> {
        self.fault.filter(|f| f.kind == kind && f.service == s && f.op.is_none_or(|op| op == k))
    }

    fn log(&mut self, service: &str, span: u64, t: u64, severity: i32, body: String) {
        self.out.logs.push(RcaLog {
            service: service.to_owned(),
            time_ns: t,
            severity,
            body,
            trace_id: TraceId::from_bytes(&self.trace),
            span_id: SpanId::from_bytes(&span.to_be_bytes()),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        service: &str,
        id: u64,
        parent: Option<u64>,
        name: &str,
        kind: SpanKind,
        start: u64,
        end: u64,
        status: Option<Status>,
        attributes: Vec<KeyValue>,
        events: Vec<Event>,
    ) {
        let span = Span {
            trace_id: self.trace.to_vec(),
            span_id: id.to_be_bytes().to_vec(),
            parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
            name: name.to_owned(),
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            events,
            status,
            ..Default::default()
        };
        self.out.spans.push((service.to_owned(), span));
    }

    fn serve(&mut self, s: usize, k: usize, start: u64, parent: Option<u64>, kind: SpanKind) -> Served {
        let topo = self.topo;
        let svc = &topo.services[s];
        let op = &svc.ops[k];
        let id = self.span_id();
        self.out.ops.insert((s, k));
        let mut self_ms = op.self_ms * jitter(self.rng, 0.25);
        if self.rng.random_bool(0.01) {
            self_ms *= 3.0;
        }
        if self.mix.slower_service == Some(s) {
            self_ms *= 1.15;
        }
        for slow in [Kind::LatencyLeaf, Kind::LatencyMiddle, Kind::CpuContention] {
            if let Some(f) = self.targets(slow, s, k) {
                self_ms *= f.factor;
                self.out.fault_hit = true;
            }
        }
        if let Some(f) = self.targets(Kind::Cascade, s, k) {
            self_ms += f.delay_ms * jitter(self.rng, 0.1);
            self.out.fault_hit = true;
        }
        let mut t = start + ns(self_ms * 0.4);
        let (mut failed, mut message, mut exception, mut http_500, mut empty) = (false, String::new(), false, false, false);
        for error in [Kind::ErrorThrown, Kind::ErrorReturned] {
            if let Some(f) = self.targets(error, s, k) {
                if self.rng.random_bool(f.fail_share) {
                    self.out.fault_hit = true;
                    failed = true;
                    if error == Kind::ErrorThrown {
                        message = format!("NullPointerException in {}", op.name);
                        exception = true;
                        self.log(
                            &svc.name,
                            id,
                            t,
                            ERROR,
                            format!("unhandled exception in {}: NullPointerException at line {}", op.name, 40 + s),
                        );
                    } else {
                        http_500 = true;
                    }
                }
            }
        }
        if let Some(f) = self.targets(Kind::Hiding, s, k) {
            if self.rng.random_bool(f.fail_share) {
                self.out.fault_hit = true;
                empty = true;
            }
        }
        let background = if self.mix.flaky_op == Some((s, k)) { 0.02 } else { 0.002 };
        if !failed && self.rng.random_bool(background) {
            failed = true;
            message = "transient error".to_owned();
            exception = true;
        }
        if !empty {
            let items = self.rng.random_range(1..50);
            self.log(&svc.name, id, t, INFO, op.log_line.replace("{}", &items.to_string()));
        }
        if let Some(db) = op.db {
            let db_id = self.span_id();
            let end = t + ns(op.self_ms * 0.7 * jitter(self.rng, 0.25));
            let attrs = vec![kv("db.system", Any::StringValue(db.to_owned()))];
            self.push(&svc.name, db_id, Some(id), &format!("SELECT {}", svc.name), SpanKind::Client, t, end, None, attrs, Vec::new());
            t = end;
        }
        let mut i = 0;
        while i < op.calls.len() {
            let group_end = op.calls[i..].iter().position(|c| c.mode != Mode::Parallel).map_or(op.calls.len(), |p| i + p.max(1));
            let group = &op.calls[i..group_end];
            let mut end = t;
            for call in group {
                let (call_end, call_failed, call_empty) = self.call(s, call, t, id);
                end = end.max(call_end);
                let callee = &topo.services[call.service].name;
                if call_empty {
                    failed = true;
                    message = format!("invalid empty response from {callee}");
                    self.log(&svc.name, id, call_end, ERROR, format!("cannot continue: {callee} returned no data"));
                } else if call_failed && self.rng.random_bool(0.9) {
                    failed = true;
                    message = format!("upstream {callee} failed");
                    self.log(&svc.name, id, call_end, ERROR, format!("call to {callee} failed"));
                }
            }
            t = end;
            i = group_end;
        }
        let end = t + ns(self_ms * 0.6);
        let status =
            failed.then(|| Status { code: StatusCode::Error as i32, message: if http_500 { String::new() } else { message.clone() } });
        let mut attrs = Vec::new();
        if kind == SpanKind::Server {
            attrs.push(kv("http.response.status_code", Any::IntValue(if failed { 500 } else { 200 })));
        }
        let events = if exception {
            vec![Event {
                name: "exception".into(),
                attributes: vec![kv("exception.message", Any::StringValue(message))],
                ..Default::default()
            }]
        } else {
            Vec::new()
        };
        self.push(&svc.name, id, parent, &op.name, kind, start, end, status, attrs, events);
        Served { end, failed, empty }
    }

    /// A call from service `s` (span `parent`) at `t`: (end, failed, empty answer).
    fn call(&mut self, s: usize, call: &Call, t: u64, parent: u64) -> (u64, bool, bool) {
        let topo = self.topo;
        let caller = &topo.services[s].name;
        let callee_op = &topo.services[call.service].ops[call.op].name;
        if call.mode == Mode::Async {
            let producer = self.span_id();
            let end = t + ns(0.2 * jitter(self.rng, 0.2));
            self.push(
                caller,
                producer,
                Some(parent),
                &format!("publish {callee_op}"),
                SpanKind::Producer,
                t,
                end,
                None,
                Vec::new(),
                Vec::new(),
            );
            let queued = end + ns(self.rng.random_range(1.0..5.0));
            self.serve(call.service, call.op, queued, Some(producer), SpanKind::Consumer);
            return (end, false, false);
        }
        self.out.links.insert((s, call.service));
        let mut t = t;
        for attempt in 0..=call.retries {
            let client = self.span_id();
            let mut out_ms = 0.3 * jitter(self.rng, 0.3);
            if let Some(f) = self.fault.filter(|f| f.kind == Kind::NetworkDelay && f.service == s && f.callee == Some(call.service)) {
                out_ms += f.delay_ms * jitter(self.rng, 0.1);
                self.out.fault_hit = true;
            }
            let served = self.serve(call.service, call.op, t + ns(out_ms), Some(client), SpanKind::Server);
            let mut end = served.end + ns(0.3 * jitter(self.rng, 0.3));
            let timed_out = end - t > ns(call.timeout_ms);
            if timed_out {
                end = t + ns(call.timeout_ms);
            }
            let failed = timed_out || served.failed;
            let status = failed.then(|| Status {
                code: StatusCode::Error as i32,
                message: if timed_out { format!("timeout after {:.0} ms", call.timeout_ms) } else { "HTTP 500".to_owned() },
            });
            self.push(caller, client, Some(parent), callee_op, SpanKind::Client, t, end, status, Vec::new(), Vec::new());
            t = end;
            if !failed || attempt == call.retries {
                return (t, failed, served.empty && !failed);
            }
            t += ns(5.0 * f64::from(attempt + 1));
        }
        (t, true, false)
    }
}
