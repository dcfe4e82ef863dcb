//! A random microservice topology: 20-40 services in layers (entry
//! services, middle tiers, leaves), each with 1-3 operations that call
//! deeper services sequentially, in parallel or asynchronously, with
//! retries and timeouts; some leaves talk to an uninstrumented database.

use rand::rngs::StdRng;
use rand::Rng;

const NAMES: [&str; 44] = [
    "frontend",
    "mobile-bff",
    "checkout",
    "cart",
    "catalog",
    "pricing",
    "inventory",
    "payments",
    "fraud",
    "shipping",
    "orders",
    "users",
    "auth",
    "recommendations",
    "search",
    "reviews",
    "notifications",
    "email",
    "ledger",
    "tax",
    "currency",
    "ads",
    "loyalty",
    "promotions",
    "warehouse",
    "billing",
    "accounts",
    "profile",
    "media",
    "geo",
    "quotes",
    "rates",
    "sessions",
    "config",
    "audit",
    "db-proxy",
    "cache",
    "events",
    "storage",
    "scoring",
    "images",
    "returns",
    "vendors",
    "invoices",
];
const VERBS: [&str; 8] = ["get", "list", "create", "update", "validate", "compute", "reserve", "lookup"];
/// Layers: 0 entry, 1..=3 middle, 4 leaves.
const LAYERS: u8 = 5;

/// How a call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sequential,
    /// Runs concurrently with the neighbouring parallel calls.
    Parallel,
    /// Producer → consumer: the caller does not wait.
    Async,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub service: usize,
    pub op: usize,
    pub mode: Mode,
    pub retries: u8,
    pub timeout_ms: f64,
}

#[derive(Debug, Clone)]
pub struct Op {
    pub name: String,
    /// Median own work, ms.
    pub self_ms: f64,
    pub calls: Vec<Call>,
    /// The line the operation logs on every call (`{}` is a number).
    pub log_line: String,
    /// An uninstrumented database this operation queries (a client span).
    pub db: Option<&'static str>,
    /// Median duration of the whole call, ms (for callers' timeouts).
    pub expected_ms: f64,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub layer: u8,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub services: Vec<Service>,
    /// Entry operations (service, op).
    pub entries: Vec<(usize, usize)>,
}

impl Topology {
    pub fn generate(rng: &mut StdRng) -> Self {
        let n = rng.random_range(20..=40);
        let mut services: Vec<Service> = (0..n)
            .map(|i| {
                let layer = match i {
                    0 | 1 => 0,
                    _ if i >= n - n / 3 => LAYERS - 1,
                    _ => 1 + (i % 3) as u8,
                };
                Service { name: NAMES[i % NAMES.len()].to_owned(), layer, ops: Vec::new() }
            })
            .collect();
        for s in 0..n {
            let count = if services[s].layer == 0 { 2 } else { rng.random_range(1..=3) };
            let mut ops = Vec::new();
            for k in 0..count {
                let verb = VERBS[(s * 3 + k) % VERBS.len()];
                let name = if services[s].layer == 0 {
                    format!("{} /{}/{verb}", if k % 2 == 0 { "GET" } else { "POST" }, services[s].name)
                } else {
                    format!("{}.{verb}", services[s].name)
                };
                let leaf = services[s].layer == LAYERS - 1;
                ops.push(Op {
                    log_line: format!("{name} handled {{}} items"),
                    name,
                    self_ms: rng.random_range(1.0..12.0),
                    calls: Vec::new(),
                    db: (leaf && rng.random_bool(0.4)).then_some(if rng.random_bool(0.5) { "postgresql" } else { "redis" }),
                    expected_ms: 0.0,
                });
            }
            services[s].ops = ops;
        }
        // Calls go to deeper layers only (a DAG), so every request ends.
        for s in 0..n {
            let layer = services[s].layer;
            let deeper: Vec<usize> = (0..n).filter(|&t| services[t].layer > layer).collect();
            for k in 0..services[s].ops.len() {
                if deeper.is_empty() {
                    continue;
                }
                let fan_out = rng.random_range(1..=3.min(deeper.len()));
                let mut callees: Vec<usize> = Vec::new();
                while callees.len() < fan_out {
                    let t = deeper[rng.random_range(0..deeper.len())];
                    if !callees.contains(&t) {
                        callees.push(t);
                    }
                }
                let calls = callees
                    .into_iter()
                    .map(|t| {
                        let mode = match rng.random_range(0..100) {
                            0..=29 => Mode::Parallel,
                            30..=37 => Mode::Async,
                            _ => Mode::Sequential,
                        };
                        Call {
                            service: t,
                            op: rng.random_range(0..services[t].ops.len()),
                            mode,
                            retries: rng.random_range(0..=2),
                            timeout_ms: 0.0,
                        }
                    })
                    .collect();
                services[s].ops[k].calls = calls;
            }
        }
        // Expected durations bottom-up, then timeouts from them.
        for layer in (0..LAYERS).rev() {
            for s in 0..n {
                if services[s].layer != layer {
                    continue;
                }
                for k in 0..services[s].ops.len() {
                    let op = &services[s].ops[k];
                    let (mut seq, mut par) = (0.0, 0.0f64);
                    for c in &op.calls {
                        let d = services[c.service].ops[c.op].expected_ms + 1.0;
                        match c.mode {
                            Mode::Sequential => seq += d,
                            Mode::Parallel => par = par.max(d),
                            Mode::Async => seq += 0.3,
                        }
                    }
                    let db = if op.db.is_some() { op.self_ms * 0.7 } else { 0.0 };
                    let expected = op.self_ms + db + seq + par;
                    let timeouts: Vec<f64> = op.calls.iter().map(|c| (4.0 * services[c.service].ops[c.op].expected_ms).max(60.0)).collect();
                    let op = &mut services[s].ops[k];
                    op.expected_ms = expected;
                    for (c, t) in op.calls.iter_mut().zip(timeouts) {
                        c.timeout_ms = t;
                    }
                }
            }
        }
        let entries = (0..n).filter(|&s| services[s].layer == 0).flat_map(|s| (0..services[s].ops.len()).map(move |k| (s, k))).collect();
        Self { services, entries }
    }

    /// Synchronous callers of (service, op): (caller service, caller op, call index).
    pub fn callers_of(&self, service: usize, op: usize) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for (s, svc) in self.services.iter().enumerate() {
            for (k, o) in svc.ops.iter().enumerate() {
                for (i, c) in o.calls.iter().enumerate() {
                    if c.service == service && c.op == op && c.mode != Mode::Async {
                        out.push((s, k, i));
                    }
                }
            }
        }
        out
    }
}

/// A log-normal factor with median 1 and the given spread (σ of the log).
pub fn jitter(rng: &mut StdRng, sigma: f64) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random_range(f64::MIN_POSITIVE..1.0), rng.random());
    let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (sigma * normal).exp()
}
