//! Fault kinds, their injection parameters and ground truth.

use rand::rngs::StdRng;
use rand::Rng;

use super::topology::Topology;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// An operation throws: status error, exception event, error log.
    ErrorThrown,
    /// An operation returns an error (HTTP 500 status) without exception or log.
    ErrorReturned,
    /// A leaf operation's own work gets slow.
    LatencyLeaf,
    /// A middle operation's own work (not its callees) gets slow.
    LatencyMiddle,
    /// Delay between two services, visible only on the caller's client span.
    NetworkDelay,
    /// Every operation of a service slows (CPU contention).
    CpuContention,
    /// A slow callee makes its callers time out and fail up the chain.
    Cascade,
    /// A code fault that only removes a log line: the operation silently
    /// returns an empty answer and its caller fails on it.
    Hiding,
}

pub const KINDS: [Kind; 8] = [
    Kind::ErrorThrown,
    Kind::ErrorReturned,
    Kind::LatencyLeaf,
    Kind::LatencyMiddle,
    Kind::NetworkDelay,
    Kind::CpuContention,
    Kind::Cascade,
    Kind::Hiding,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::ErrorThrown => "error_thrown",
            Kind::ErrorReturned => "error_returned",
            Kind::LatencyLeaf => "latency_leaf",
            Kind::LatencyMiddle => "latency_middle",
            Kind::NetworkDelay => "network_delay",
            Kind::CpuContention => "cpu_contention",
            Kind::Cascade => "cascade",
            Kind::Hiding => "hiding_log_only",
        }
    }
}

/// One injected fault.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Kind,
    pub service: usize,
    /// The faulty operation (all of the service's for CPU contention).
    pub op: Option<usize>,
    /// Network delay: the callee side of the slow link.
    pub callee: Option<usize>,
    /// Self-time multiplier (latency, CPU).
    pub factor: f64,
    /// Extra ms (network delay, cascade).
    pub delay_ms: f64,
    /// Share of calls that fail (errors, hiding).
    pub fail_share: f64,
}

impl Fault {
    /// Services a correct answer may name.
    pub fn truth(&self, topo: &Topology) -> Vec<String> {
        let mut out = vec![topo.services[self.service].name.clone()];
        if let Some(c) = self.callee {
            out.push(topo.services[c].name.clone());
        }
        out
    }

    pub fn describe(&self, topo: &Topology) -> String {
        let svc = &topo.services[self.service];
        let op = self.op.map(|k| svc.ops[k].name.as_str()).unwrap_or("*");
        let callee = self.callee.map(|c| format!(" → {}", topo.services[c].name)).unwrap_or_default();
        format!("{} {}{callee} {op}", self.kind.name(), svc.name)
    }
}

/// A fault of `kind` on an operation that enough requests reach (`reach`
/// counts requests per (service, op) and per sync (caller, callee) link).
pub fn choose(kind: Kind, topo: &Topology, reach: &Reach, rng: &mut StdRng) -> Option<Fault> {
    let often = |s: usize, k: usize| reach.op(s, k) >= reach.min;
    let ops: Vec<(usize, usize)> =
        (0..topo.services.len()).flat_map(|s| (0..topo.services[s].ops.len()).map(move |k| (s, k))).filter(|&(s, k)| often(s, k)).collect();
    let pick = |v: &[(usize, usize)], rng: &mut StdRng| (!v.is_empty()).then(|| v[rng.random_range(0..v.len())]);
    let leaf = |s: usize, k: usize| topo.services[s].ops[k].calls.is_empty();
    // Called synchronously by an operation that requests reach (async
    // consumers do not answer anyone).
    let with_sync_callers = |s: usize, k: usize| topo.callers_of(s, k).iter().any(|&(cs, ck, _)| often(cs, ck));
    let base =
        |kind, (s, k): (usize, usize)| Fault { kind, service: s, op: Some(k), callee: None, factor: 1.0, delay_ms: 0.0, fail_share: 0.0 };
    let non_entry: Vec<(usize, usize)> = ops.iter().copied().filter(|&(s, _)| topo.services[s].layer > 0).collect();
    Some(match kind {
        Kind::ErrorThrown | Kind::ErrorReturned => Fault { fail_share: rng.random_range(0.3..0.8), ..base(kind, pick(&non_entry, rng)?) },
        Kind::LatencyLeaf => {
            let leaves: Vec<_> = non_entry.iter().copied().filter(|&(s, k)| leaf(s, k)).collect();
            Fault { factor: rng.random_range(5.0..15.0), ..base(kind, pick(&leaves, rng)?) }
        }
        Kind::LatencyMiddle => {
            let middles: Vec<_> = ops.iter().copied().filter(|&(s, k)| !leaf(s, k)).collect();
            Fault { factor: rng.random_range(5.0..15.0), ..base(kind, pick(&middles, rng)?) }
        }
        Kind::NetworkDelay => {
            let links: Vec<(usize, usize)> = reach.links.iter().filter(|(_, n)| *n >= reach.min).map(|(l, _)| *l).collect();
            let (caller, callee) = pick(&links, rng)?;
            Fault { callee: Some(callee), op: None, delay_ms: rng.random_range(30.0..150.0), ..base(kind, (caller, 0)) }
        }
        Kind::CpuContention => {
            let services: Vec<(usize, usize)> = non_entry.iter().map(|&(s, _)| (s, 0)).collect();
            Fault { op: None, factor: rng.random_range(3.0..6.0), ..base(kind, pick(&services, rng)?) }
        }
        Kind::Cascade => {
            let called: Vec<_> = non_entry.iter().copied().filter(|&(s, k)| with_sync_callers(s, k)).collect();
            let (s, k) = pick(&called, rng)?;
            let timeout =
                topo.callers_of(s, k).iter().map(|&(cs, ck, i)| topo.services[cs].ops[ck].calls[i].timeout_ms).fold(0.0, f64::max);
            Fault { delay_ms: 1.5 * timeout, ..base(kind, (s, k)) }
        }
        Kind::Hiding => {
            let called: Vec<_> = non_entry.iter().copied().filter(|&(s, k)| with_sync_callers(s, k)).collect();
            Fault { fail_share: rng.random_range(0.3..0.8), ..base(kind, pick(&called, rng)?) }
        }
    })
}

/// How many of a sample of requests reach each operation and link.
#[derive(Debug, Default)]
pub struct Reach {
    pub ops: std::collections::HashMap<(usize, usize), usize>,
    /// Synchronous (caller service, callee service) links.
    pub links: Vec<((usize, usize), usize)>,
    /// Fewest requests that make a target.
    pub min: usize,
}

impl Reach {
    pub fn op(&self, s: usize, k: usize) -> usize {
        self.ops.get(&(s, k)).copied().unwrap_or(0)
    }

    pub fn add_link(&mut self, caller: usize, callee: usize) {
        match self.links.iter_mut().find(|(l, _)| *l == (caller, callee)) {
            Some((_, n)) => *n += 1,
            None => self.links.push(((caller, callee), 1)),
        }
    }
}
