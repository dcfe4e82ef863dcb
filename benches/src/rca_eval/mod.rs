//! `rca-eval`: fault-injection evaluation of per-request and per-incident
//! RCA (a benchmark, not a test).
//!
//! Each case generates a random topology of 20-40 services (fan-out,
//! parallel and asynchronous calls, retries, timeouts, uninstrumented
//! databases, logs), a baseline window of normal requests and an incident
//! window with one injected fault of known ground truth and random
//! magnitude (weak ones included), as OTLP spans and log records. The
//! windows differ in traffic mix too, and the incident window carries
//! benign drift elsewhere (a service 15% slower, an operation failing 2%
//! instead of 0.2%), so a method must tell the fault from noise. Both RCA forms run in-process through the node's own
//! functions:
//! * per request: `rca::analyze` on one affected request (a failed one if
//!   any, else the slowest the fault touched), against HDR baselines
//!   learned from the baseline window;
//! * per incident: `rca::incident::rank` on the two windows' aggregates.
//!
//! A case is scored by the rank of the first candidate naming a ground
//! truth service (for a network delay the caller or the callee). AC@k is
//! the share of cases ranked within k; Avg@5 the mean of AC@1..AC@5.
//!
//! * `topology.rs`: the service graph.
//! * `faults.rs`: fault kinds and targets.
//! * `traffic.rs`: requests as OTLP spans and logs.
//! * `score.rs`: the metrics.

mod faults;
mod score;
mod topology;
mod traffic;

use ollystack_node::model::TenantId;
use ollystack_node::rca::incident::{rank, WindowAggregate};
use ollystack_node::rca::{analyze, samples, Baselines};
use rand::rngs::StdRng;
use rand::SeedableRng;

use faults::{choose, Fault, Kind, Reach, KINDS};
use rand::Rng;
use score::{rank_of, services, Tally};
use topology::Topology;
use traffic::{request, Mix, Request};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cases per fault kind (8 kinds).
    #[arg(long, default_value_t = 15)]
    cases_per_kind: usize,
    /// Requests per window (baseline and incident each).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print every case: the fault and both top-3 lists, and for
    /// per-incident misses what the analysis saw of the truth (with
    /// `RCA_EVAL_DEBUG=1`, also per-request candidates).
    #[arg(long)]
    verbose: bool,
}

/// Requests sampled to find targets that enough requests reach.
const REACH_SAMPLE: usize = 200;
/// Share of requests a fault target must be reached by.
const REACH_SHARE_MIN: f64 = 0.15;
/// Topologies tried per case before giving up on a kind.
const TOPOLOGY_TRIES: u64 = 20;
const START_NS: u64 = 1_700_000_000_000_000_000;
const REQUEST_GAP_NS: u64 = 10_000_000;

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    for (ki, &kind) in KINDS.iter().enumerate() {
        let (mut per_request, mut per_incident) = (Tally::default(), Tally::default());
        for case in 0..args.cases_per_kind {
            let seed = args.seed * 1_000_000 + ki as u64 * 10_000 + case as u64 * 100;
            let Some((topo, fault, mut rng)) = setup(kind, seed, args.requests) else {
                anyhow::bail!("no target for {} within {TOPOLOGY_TRIES} topologies (seed {seed})", kind.name());
            };
            let truth = fault.truth(&topo);
            let (base_mix, incident_mix) = mixes(&topo, &fault, &mut rng);
            let baseline: Vec<Request> = window(&topo, None, &base_mix, &mut rng, args.requests, 0);
            let incident: Vec<Request> = window(&topo, Some(&fault), &incident_mix, &mut rng, args.requests, args.requests);
            let incident_ranked = per_incident_ranking(&baseline, &incident);
            let request_ranked = per_request_ranking(&baseline, &incident);
            per_incident.ranks.push(rank_of(&incident_ranked, &truth));
            per_request.ranks.push(rank_of(&request_ranked, &truth));
            if args.verbose && per_incident.ranks.last().copied().flatten() != Some(1) {
                explain_miss(&baseline, &incident, &truth);
            }
            if args.verbose {
                println!(
                    "{:<16} {:<44} request {:?} top {:?} | incident {:?} top {:?}",
                    kind.name(),
                    fault.describe(&topo),
                    per_request.ranks.last().copied().flatten(),
                    &request_ranked[..request_ranked.len().min(3)],
                    per_incident.ranks.last().copied().flatten(),
                    &incident_ranked[..incident_ranked.len().min(3)],
                );
            }
        }
        rows.push((kind, per_request, per_incident));
    }
    print_table(&rows, args.cases_per_kind * KINDS.len(), args.requests);
    println!("({:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// A topology where `kind` has a target, the fault, and the rng to go on with.
fn setup(kind: Kind, seed: u64, requests: usize) -> Option<(Topology, Fault, StdRng)> {
    for attempt in 0..TOPOLOGY_TRIES {
        let mut rng = StdRng::seed_from_u64(seed + attempt);
        let topo = Topology::generate(&mut rng);
        let mut reach = Reach { min: (REACH_SHARE_MIN * REACH_SAMPLE as f64) as usize, ..Default::default() };
        for n in 0..REACH_SAMPLE {
            let r = request(&topo, None, &Mix::default(), &mut rng, n as u64, START_NS);
            for &op in &r.ops {
                *reach.ops.entry(op).or_default() += 1;
            }
            for &(a, b) in &r.links {
                reach.add_link(a, b);
            }
        }
        if let Some(fault) = choose(kind, &topo, &reach, &mut rng) {
            let _ = requests;
            return Some((topo, fault, rng));
        }
    }
    None
}

fn window(topo: &Topology, fault: Option<&Fault>, mix: &Mix, rng: &mut StdRng, requests: usize, first: usize) -> Vec<Request> {
    (first..first + requests).map(|n| request(topo, fault, mix, rng, n as u64 + 1_000, START_NS + n as u64 * REQUEST_GAP_NS)).collect()
}

/// Each window's traffic mix (entry weights 0.5-2 drawn per window) and,
/// in the incident window, benign drift away from the fault's service.
fn mixes(topo: &Topology, fault: &Fault, rng: &mut StdRng) -> (Mix, Mix) {
    let weights = |rng: &mut StdRng| (0..topo.entries.len()).map(|_| rng.random_range(0.5..2.0)).collect::<Vec<f64>>();
    let base = Mix { weights: weights(rng), ..Default::default() };
    let others: Vec<usize> = (0..topo.services.len()).filter(|&s| s != fault.service && Some(s) != fault.callee).collect();
    let other = |rng: &mut StdRng| others[rng.random_range(0..others.len())];
    let flaky_service = other(rng);
    let incident = Mix {
        weights: weights(rng),
        slower_service: Some(other(rng)),
        flaky_op: Some((flaky_service, rng.random_range(0..topo.services[flaky_service].ops.len()))),
    };
    (base, incident)
}

fn per_incident_ranking(baseline: &[Request], incident: &[Request]) -> Vec<String> {
    let (mut base, mut inc) = (WindowAggregate::default(), WindowAggregate::default());
    for r in baseline {
        base.observe(&r.input());
    }
    for r in incident {
        inc.observe(&r.input());
    }
    services(rank(&base, &inc).iter().map(|c| c.service.as_str()))
}

/// The request an engineer would pick: one the fault touched, chosen by
/// the incident's symptom — a failed one when the share of failed
/// requests rose by 5 points or more, else the slowest.
fn per_request_ranking(baseline: &[Request], incident: &[Request]) -> Vec<String> {
    let tenant = TenantId::default_tenant();
    let baselines = Baselines::default();
    for r in baseline {
        baselines.observe(&tenant, &samples(&r.input().spans));
    }
    let touched: Vec<&Request> = incident.iter().filter(|r| r.fault_hit).collect();
    let pool = if touched.is_empty() { incident.iter().collect() } else { touched };
    let failed_share = |w: &[Request]| w.iter().filter(|r| r.root_failed).count() as f64 / w.len().max(1) as f64;
    let errors_rose = failed_share(incident) >= failed_share(baseline) + 0.05;
    let failed = errors_rose.then(|| pool.iter().filter(|r| r.root_failed).max_by_key(|r| r.duration_ns)).flatten();
    let Some(chosen) = failed.or_else(|| pool.iter().max_by_key(|r| r.duration_ns)) else { return Vec::new() };
    let input = chosen.input();
    let view = baselines.view(&tenant, input.spans.iter().map(|s| (s.service.as_str(), s.operation.as_str())), &[]);
    let result = analyze(&input, &view);
    if std::env::var_os("RCA_EVAL_DEBUG").is_some() {
        for c in result.candidates.iter().take(4) {
            println!(
                "    request candidate {} {} {} {:.3}: {}",
                c.service,
                c.operation,
                c.kind.as_str(),
                c.score,
                c.evidence.first().map_or("", |e| e.detail.as_str())
            );
        }
    }
    services(result.candidates.iter().map(|c| c.service.as_str()))
}

/// What the per-incident analysis saw of the ground truth services, and its top candidates.
fn explain_miss(baseline: &[Request], incident: &[Request], truth: &[String]) {
    let (mut base, mut inc) = (WindowAggregate::default(), WindowAggregate::default());
    baseline.iter().for_each(|r| base.observe(&r.input()));
    incident.iter().for_each(|r| inc.observe(&r.input()));
    let result = ollystack_node::rca::incident::incident(&base, &inc);
    for c in result.candidates.iter().take(3) {
        println!(
            "    candidate {} {} {} {:.3}: {}",
            c.service,
            c.operation,
            c.kind.as_str(),
            c.score,
            c.evidence.first().map_or("", |e| e.detail.as_str())
        );
    }
    for c in result.changes.iter().filter(|c| truth.contains(&c.service)) {
        println!(
            "    truth change {} {} {:?} templates {:?}",
            c.service,
            c.operation,
            c.departures,
            c.templates.iter().map(|t| (&t.template, t.change)).collect::<Vec<_>>()
        );
    }
    for o in inc.ops.iter().filter(|o| truth.contains(&o.service)) {
        let b = base.op(&o.service, &o.operation);
        println!(
            "    truth op {} {}: calls {} (baseline {}), templates {:?} (baseline {:?})",
            o.service,
            o.operation,
            o.calls,
            b.map_or(0, |b| b.calls),
            o.templates,
            b.map(|b| &b.templates)
        );
    }
}

fn print_table(rows: &[(Kind, Tally, Tally)], cases: usize, requests: usize) {
    println!("rca-eval: {cases} cases, {requests} requests per window; rank of the first candidate naming a ground-truth service");
    println!("{:<16} {:>5} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}", "", "", "per-request", "", "", "per-incident", "", "");
    println!(
        "{:<16} {:>5} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}",
        "fault kind", "cases", "AC@1", "AC@3", "Avg@5", "AC@1", "AC@3", "Avg@5"
    );
    let (mut all_request, mut all_incident) = (Tally::default(), Tally::default());
    for (kind, request, incident) in rows {
        line(kind.name(), request, incident);
        all_request.ranks.extend(&request.ranks);
        all_incident.ranks.extend(&incident.ranks);
    }
    line("all", &all_request, &all_incident);
}

fn line(name: &str, r: &Tally, i: &Tally) {
    println!(
        "{:<16} {:>5} | {:>9.2} {:>9.2} {:>9.2} | {:>9.2} {:>9.2} {:>9.2}",
        name,
        r.ranks.len(),
        r.ac(1),
        r.ac(3),
        r.avg5(),
        i.ac(1),
        i.ac(3),
        i.avg5()
    );
}
