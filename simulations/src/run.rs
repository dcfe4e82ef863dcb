//! One simulated run: builds the turmoil simulation (one host per node, one
//! workload client), steps it through the safety phase applying the seed's
//! fault plan, heals everything, steps the liveness phase until the cluster
//! converges and the workload's final checks are done, and watches the
//! cluster-state invariants throughout.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use ollystack_cluster::net::SharedTransport;
use ollystack_node::clock::SeededRng;
use ollystack_node::config::ConfigFile;
use ollystack_node::server::{Faults, Probe, Sources, StoreLayer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;

use crate::disk::Disks;
use crate::links::Links;
use crate::net::{SimClock, TurmoilTransport};
use crate::observe::{disagreement, Observation, Observer};
use crate::params::Params;
use crate::plan::{Action, Plan};
use crate::sink::{FaultySink, SinkControl};

/// The attribute with a cluster-wide cardinality limit, and its limit.
pub const LIMITED_ATTRIBUTE: &str = "user.id";
pub const LIMIT_PER_WINDOW: u64 = 12;
/// What the node writes in place of a value over the limit.
pub const OVERFLOW_MARKER: &str = "__ollystack_overflow__";
/// Extra latency on every link of a slow node.
const SLOW_LINK: Duration = Duration::from_millis(150);
/// How often the harness reads every node's Raft and ring state.
const OBSERVE_EVERY_STEPS: u64 = 10;
/// Events kept for the failure report.
const TRACE_TAIL: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Faults on.
    Safety,
    /// Faults healed; waiting for convergence.
    Healing,
    /// Converged: the workload runs its final checks.
    Final,
    /// Final checks done.
    Done,
}

/// State shared by the harness, the node hosts and the workload (all on
/// the simulation's one thread).
pub struct World {
    pub params: Params,
    pub faults: Faults,
    dir: PathBuf,
    pub transport: SharedTransport,
    pub phase: Cell<Phase>,
    /// Simulated time, for events the harness records between steps.
    now_ms: Cell<u64>,
    /// Batches not yet acknowledged or given up.
    pub outstanding: Cell<usize>,
    pub oracle: RefCell<crate::oracle::Oracle>,
    /// The traces of every session (for failure reports).
    pub session_traces: RefCell<BTreeMap<String, BTreeSet<[u8; 16]>>>,
    /// Probes of running nodes, by node index.
    pub probes: RefCell<BTreeMap<usize, Probe>>,
    /// The faulty sinks' switch and counts (sink fault class).
    pub sink: Arc<SinkControl>,
    /// What survives a crash of each node (its WAL's synced lengths, its
    /// sled database).
    disks: Disks,
    started: RefCell<Vec<bool>>,
    /// Nodes that left the cluster (leave): no longer started, never
    /// restarted, and faults no longer touch them.
    left: RefCell<BTreeSet<usize>>,
    /// A planned leave has not completed yet.
    pub leave_pending: Cell<bool>,
    channels: RefCell<BTreeMap<(String, u16), Channel>>,
    events: RefCell<Vec<String>>,
    hasher: RefCell<std::hash::DefaultHasher>,
    violations: RefCell<Vec<String>>,
}

pub fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

impl World {
    /// Records an event (part of the determinism hash).
    pub fn event(&self, what: String) {
        let ms = turmoil::sim_elapsed().map_or(self.now_ms.get(), |d| d.as_millis() as u64);
        let line = format!("{ms:>7} ms  {what}");
        line.hash(&mut *self.hasher.borrow_mut());
        let mut events = self.events.borrow_mut();
        events.push(line);
    }

    pub fn violation(&self, what: String) {
        self.event(format!("VIOLATION {what}"));
        self.violations.borrow_mut().push(what);
    }

    /// A node the workload may send to: one that was started (it may be
    /// down right now).
    pub fn random_node(&self, rng: &mut StdRng) -> String {
        let mut started = self.started_nodes();
        let at = rng.random_range(0..started.len());
        started.swap_remove(at)
    }

    pub fn started_nodes(&self) -> Vec<String> {
        self.started.borrow().iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| node_name(i)).collect()
    }

    /// A lazily connecting channel to a node's port, made once.
    pub fn channel(&self, node: &str, port: u16) -> Result<Channel, tonic::transport::Error> {
        let key = (node.to_owned(), port);
        if let Some(c) = self.channels.borrow().get(&key) {
            return Ok(c.clone());
        }
        let c = ollystack_cluster::net::channel(&format!("{node}:{port}"), &self.transport)?;
        self.channels.borrow_mut().insert(key, c.clone());
        Ok(c)
    }
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    pub params: Params,
    pub violations: Vec<String>,
    /// Hash of the event trace (equal for two runs of one seed).
    pub trace_hash: u64,
    pub events: Vec<String>,
    pub simulated_ms: u64,
    pub totals: crate::oracle::Totals,
    pub raft_terms: usize,
    pub ring_epochs: usize,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The last events, for a failure report.
    pub fn trace_tail(&self) -> &[String] {
        &self.events[self.events.len().saturating_sub(TRACE_TAIL)..]
    }
}

fn node_config(w: &World, i: usize, ip: std::net::IpAddr) -> anyhow::Result<ollystack_node::config::Config> {
    let mut f = ConfigFile { data_dir: w.dir.join(node_name(i)), ..ConfigFile::default() };
    f.listen.otlp_grpc = "0.0.0.0:4317".into();
    f.listen.otlp_http = "0.0.0.0:4318".into();
    f.listen.api = "0.0.0.0:8080".into();
    f.listen.cluster = "0.0.0.0:4320".into();
    // The simulated network carries plain TCP (TLS handshakes draw from
    // the OS's randomness: a seed would not replay).
    f.insecure = true;
    f.cluster.advertise = format!("{ip}:4320");
    f.cluster.join_token = "sim".into();
    f.cluster.heartbeat_interval_ms = 100;
    f.cluster.failure_timeout_ms = 1_000;
    f.cluster.election_timeout_ms = 300;
    f.cluster.rpc_timeout_ms = 500;
    f.session.tick_interval_ms = 200;
    f.session.idle_timeout_ms = 5_000;
    f.limits.window_ms = 3_600_000;
    f.limits.lease_units = 4;
    f.limits.attributes = BTreeMap::from([(LIMITED_ATTRIBUTE.to_owned(), LIMIT_PER_WINDOW)]);
    f.correlation.tenancy = w.params.tenants > 1;
    let mut config = f.build_and_validate()?;
    if i > 0 {
        // Joins go through n1; a node that already joined resumes instead.
        config.cluster.seed = Some(format!("{}:4320", turmoil::lookup(node_name(0).as_str())));
    }
    Ok(config)
}

/// A node host's software: start (bootstrap, join or resume), publish the
/// probe, run until crashed.
async fn node_main(w: Rc<World>, i: usize, incarnation: Rc<Cell<u64>>) -> turmoil::Result {
    crate::logs::register_host(&node_name(i));
    let ip = turmoil::lookup(node_name(i).as_str());
    let config = node_config(&w, i, ip).map_err(|e| e.to_string())?;
    let skew_ms = if w.params.faults.clock_skew {
        let mut r = StdRng::seed_from_u64(w.params.seed ^ ((i as u64 + 1) * 0x9e37));
        r.random_range(-(w.params.max_skew_ms as i64)..=w.params.max_skew_ms as i64)
    } else {
        0
    };
    let sources = Sources {
        clock: Arc::new(SimClock { skew_ms }),
        rng: Arc::new(SeededRng::from_seed(w.params.seed.wrapping_mul(31).wrapping_add(i as u64 + incarnation.get()))),
        transport: w.transport.clone(),
        faults: w.faults,
        // Always layered: it records every committed segment (invariant 1
        // at the storage layer); it injects faults only with the sink class.
        store_layer: Some({
            let (control, rate) = (w.sink.clone(), w.params.sink_fail_rate);
            let seed = w.params.seed ^ ((i as u64 + 1) << 40) ^ incarnation.get();
            let name = node_name(i);
            StoreLayer(Arc::new(move |inner| Arc::new(FaultySink::new(name.clone(), inner, control.clone(), seed, rate)) as _))
        }),
        wal_observer: Some(w.disks.wal_observer()),
        sled_hold: Some(w.disks.sled_hold(i)),
    };
    let node = ollystack_node::server::start_with(config, sources).await.map_err(|e| format!("{} failed to start: {e}", node_name(i)))?;
    w.event(format!("{} up as {} (skew {skew_ms} ms)", node_name(i), node.probe.id));
    w.probes.borrow_mut().insert(i, node.probe.clone());
    node.removed_from_cluster().await;
    // It left (leave): out of the workload's and the checks' view for good.
    w.started.borrow_mut()[i] = false;
    w.left.borrow_mut().insert(i);
    w.probes.borrow_mut().remove(&i);
    w.leave_pending.set(false);
    w.event(format!("{} left the cluster and stops", node_name(i)));
    // The process ends here, as `ollystack-node` does after leaving. Not
    // through `shutdown()`: its last sled flush runs on sled's own threads,
    // in real time, and the seed would not replay. Nothing reads this data
    // dir again.
    drop(node);
    Ok(())
}

fn add_node(sim: &mut turmoil::Sim<'_>, w: &Rc<World>, i: usize, incarnation: Rc<Cell<u64>>) {
    let w = w.clone();
    w.started.borrow_mut()[i] = true;
    sim.host(node_name(i).as_str(), move || node_main(w.clone(), i, incarnation.clone()));
}

fn apply(sim: &mut turmoil::Sim<'_>, w: &Rc<World>, links: &mut Links, action: Action, incarnations: &[Rc<Cell<u64>>], all: usize) {
    let n = node_name;
    let gone = |a: usize| w.left.borrow().contains(&a);
    let skip = match action {
        Action::Partition(a, b) | Action::PartitionOneway(a, b) => gone(a) || gone(b),
        Action::Crash(a) | Action::Restart(a) | Action::Slow(a) | Action::Unslow(a) | Action::PanicSession(a, _) => gone(a),
        Action::Repair(..) | Action::StartJoiner => false,
    };
    if skip {
        w.event(format!("fault skipped (the node left): {action:?}"));
        return;
    }
    w.event(format!("fault: {action:?}"));
    match action {
        Action::Partition(a, b) | Action::PartitionOneway(a, b) => links.partition(sim, a, b),
        Action::Repair(a, b) => links.repair(sim, a, b),
        Action::Crash(a) => {
            w.probes.borrow_mut().remove(&a);
            w.disks.before_crash(a);
            sim.crash(n(a).as_str());
            match w.disks.after_crash(&w.dir.join(n(a))) {
                Ok(lost) => w.event(format!("{} lost {lost} unsynced WAL byte(s) and what sled had not flushed", n(a))),
                Err(e) => w.violation(format!("harness: cannot cut {}'s data back after its crash: {e}", n(a))),
            }
        }
        Action::Restart(a) => {
            incarnations[a].set(incarnations[a].get() + 1);
            sim.bounce(n(a).as_str());
        }
        Action::Slow(a) | Action::Unslow(a) => {
            for b in (0..all).filter(|b| *b != a && w.started.borrow()[*b]) {
                if matches!(action, Action::Slow(_)) {
                    sim.set_link_latency(n(a).as_str(), n(b).as_str(), SLOW_LINK);
                } else {
                    sim.set_link_latency(n(a).as_str(), n(b).as_str(), Duration::ZERO);
                    sim.set_link_max_message_latency(n(a).as_str(), n(b).as_str(), latency(&w.params));
                }
            }
        }
        Action::StartJoiner => add_node(sim, w, all - 1, incarnations[all - 1].clone()),
        Action::PanicSession(a, pick) => {
            let told = w.probes.borrow().get(&a).and_then(|p| p.panic_a_session(pick));
            w.event(format!(
                "{}: {}",
                n(a),
                told.map_or("no live session to panic".to_owned(), |id| format!("session {id} told to panic"))
            ));
        }
    }
}

fn latency(p: &Params) -> Duration {
    Duration::from_millis(if p.faults.delay { p.max_latency_ms } else { 1 })
}

/// Reads every running node's Raft and ring state.
fn observations(w: &World, incarnations: &[Rc<Cell<u64>>]) -> Vec<Observation> {
    let probes = w.probes.borrow();
    let mut out = Vec::new();
    for (i, probe) in probes.iter() {
        let (Some(m), Some(view)) = (probe.raft_metrics(), probe.view()) else { continue };
        let ring = view.ring.as_ref().map(|r| r.members().map(|m| (m.id.0, m.weight)).collect()).unwrap_or_default();
        out.push(Observation {
            node: probe.id.0,
            incarnation: incarnations[*i].get(),
            term: m.current_term,
            is_leader: m.state.is_leader(),
            last_applied: m.last_applied.map(|l| (l.leader_id.term, l.leader_id.node_id, l.index)),
            ring_epoch: view.ring.as_ref().map_or(0, |r| r.epoch()),
            ring,
            membership: m.membership_config.membership().nodes().map(|(id, _)| *id).collect(),
        });
    }
    out
}

/// Where a run's nodes keep their data: in memory (`/dev/shm`) where the
/// machine has it. Nodes fsync their WAL for every batch and sled flushes;
/// on a disk that real I/O was a fifth of a run's wall time, and nothing
/// in a run needs the data to outlive the process (a simulated crash cuts
/// the WAL files by hand).
fn data_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if std::env::var_os("TMPDIR").is_none() && shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("ollystack-sim").tempdir_in(shm) {
            return Ok(dir);
        }
    }
    tempfile::tempdir()
}

/// Runs one seed.
pub fn run(params: Params, faults: Faults) -> anyhow::Result<Outcome> {
    ollystack_cluster::raft::runtime::seed_thread_rng(params.seed);
    let dir = data_dir()?;
    let plan = Plan::draw(&params);
    let all = params.nodes + usize::from(params.faults.join);
    let w = Rc::new(World {
        params: params.clone(),
        faults,
        dir: dir.path().to_path_buf(),
        transport: Arc::new(TurmoilTransport),
        phase: Cell::new(Phase::Safety),
        now_ms: Cell::new(0),
        outstanding: Cell::new(0),
        oracle: RefCell::default(),
        session_traces: RefCell::default(),
        probes: RefCell::default(),
        sink: Arc::new(SinkControl { active: params.faults.sink.into(), ..SinkControl::default() }),
        disks: Disks::default(),
        started: RefCell::new(vec![false; all]),
        left: RefCell::default(),
        leave_pending: Cell::new(params.faults.leave),
        channels: RefCell::default(),
        events: RefCell::default(),
        hasher: RefCell::new(std::hash::DefaultHasher::new()),
        violations: RefCell::default(),
    });
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(params.seed)
        .simulation_duration(Duration::from_millis(params.steps + params.liveness_ms + 60_000))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::ZERO)
        .max_message_latency(latency(&params))
        .tcp_capacity(4096);
    if params.faults.reorder {
        builder.enable_random_order();
    }
    let mut sim = builder.build();
    let incarnations: Vec<Rc<Cell<u64>>> = (0..all).map(|_| Rc::new(Cell::new(0))).collect();
    for (i, incarnation) in incarnations.iter().enumerate().take(params.nodes) {
        add_node(&mut sim, &w, i, incarnation.clone());
    }
    let load = w.clone();
    sim.client("load", async move { crate::workload::run(load).await });
    let mut non_owners = crate::workload::NonOwners::default();

    let mut links = Links::new(params.seed, if params.faults.loss { params.fail_rate } else { 0.0 });
    let mut observer = Observer::default();
    let mut actions = plan.actions.iter().peekable();
    let deadline = params.steps + params.liveness_ms;
    let mut step = 0u64;
    loop {
        w.now_ms.set(step);
        crate::os::set_now_ms(step);
        while let Some((_, action)) = actions.next_if(|(at, _)| *at <= step) {
            apply(&mut sim, &w, &mut links, *action, &incarnations, all);
        }
        if step < params.steps {
            let started: Vec<usize> = (0..all).filter(|i| w.started.borrow()[*i]).collect();
            if let Some((a, b, ms)) = links.tick(&mut sim, step, &started) {
                w.event(format!("loss: {}-{} stalls for {ms} ms", node_name(a), node_name(b)));
            }
        }
        if step == params.steps {
            links.heal(&mut sim);
            heal(&mut sim, &w, all, &params);
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                w.violation(format!("simulation failed: {e}"));
                break;
            }
        }
        step += 1;
        if step.is_multiple_of(250) && matches!(w.phase.get(), Phase::Safety | Phase::Healing) {
            non_owners.check(&w, step);
        }
        if step.is_multiple_of(OBSERVE_EVERY_STEPS) {
            let obs = observations(&w, &incarnations);
            for o in &obs {
                for v in observer.observe(o) {
                    w.violation(format!("invariant 2/6: {v}"));
                }
            }
            let members = w.started_nodes().len();
            let settled = w.outstanding.get() == 0 && !w.leave_pending.get() && obs.len() == members;
            if w.phase.get() == Phase::Healing && step.is_multiple_of(100) && settled && disagreement(&obs, members).is_none() {
                w.event(format!("converged: ring epoch {} on all {members} nodes", obs[0].ring_epoch));
                w.phase.set(Phase::Final);
            }
        }
        if step >= deadline && w.phase.get() == Phase::Healing {
            let obs = observations(&w, &incarnations);
            let members = w.started_nodes().len();
            let why = disagreement(&obs, members).unwrap_or_else(|| {
                let leave = if w.leave_pending.get() { ", the leave not done" } else { "" };
                format!("{} batch(es) still unsent, {} of {members} nodes up{leave}", w.outstanding.get(), obs.len())
            });
            w.violation(format!("invariant 3 / liveness: no convergence {} ms after healing: {why}", params.liveness_ms));
            break;
        }
        if step >= deadline + 60_000 {
            w.violation("liveness: the final checks did not finish".into());
            break;
        }
    }
    let outcome = Outcome {
        params,
        violations: w.violations.borrow().clone(),
        trace_hash: w.hasher.borrow().finish(),
        events: w.events.borrow().clone(),
        simulated_ms: step,
        totals: w.oracle.borrow().totals(),
        raft_terms: observer.terms_seen(),
        ring_epochs: observer.epochs_seen(),
    };
    drop(sim);
    Ok(outcome)
}

/// Ends the safety phase (the held links are released already): restarts
/// crashed nodes and removes slowness.
fn heal(sim: &mut turmoil::Sim<'_>, w: &Rc<World>, all: usize, params: &Params) {
    w.event("heal: safety phase over".into());
    for a in 0..all {
        for b in 0..all {
            if a != b && w.started.borrow()[a] && w.started.borrow()[b] {
                sim.set_link_latency(node_name(a).as_str(), node_name(b).as_str(), Duration::ZERO);
                sim.set_link_max_message_latency(node_name(a).as_str(), node_name(b).as_str(), latency(params));
            }
        }
    }
    if params.faults.sink {
        use std::sync::atomic::Ordering::Relaxed;
        w.sink.active.store(false, Relaxed);
        let s = &w.sink;
        w.event(format!(
            "sink faults off: {} store(s) failed, {} timed out, {} lost the acknowledgement, {} stored",
            s.failed.load(Relaxed),
            s.timed_out.load(Relaxed),
            s.lost_acks.load(Relaxed),
            s.stored.load(Relaxed)
        ));
    }
    for a in 0..all {
        if w.started.borrow()[a] && !sim.is_host_running(node_name(a).as_str()) {
            sim.bounce(node_name(a).as_str());
        }
    }
    w.phase.set(Phase::Healing);
}
