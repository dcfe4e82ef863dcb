//! The simulation runs CI keeps: a fixed sweep that must pass, the
//! determinism self-check, and proof that the simulator catches bugs (each
//! deliberately broken behaviour is found by some seed of a small sweep).

use ollystack_node::node::Faults;
use ollystack_simulations::{run, Outcome, Params};

/// Seeds of the CI sweep. A long sweep: `cargo run --release -p
/// ollystack-simulations -- --seeds 0..2000` (see the README).
const CI_SEEDS: std::ops::Range<u64> = 0..24;

/// Seeds that reproduce a bug found by the simulator and not fixed yet,
/// with the violation they show. Each is checked to still reproduce (so
/// the entry goes when the bug is fixed) and left out of the sweep.
const KNOWN_OPEN: &[(u64, &str)] = &[
    // A lookup that races a handoff: the coordinator reads the new owner
    // before the shipped session lands and the old owner after it let go,
    // and answers `partial: false` without the session's signals.
    (8, "invariant 4 (query during faults"),
    // Same invariant, not yet analysed: a non-partial answer during a
    // one-way partition misses acknowledged spans (complete after healing).
    (14, "invariant 4 (query during faults"),
];

fn report(o: &Outcome) -> String {
    format!("{}\nviolations:\n  {}\nlast events:\n  {}", o.params, o.violations.join("\n  "), o.trace_tail().join("\n  "))
}

#[test]
fn the_ci_sweep_passes() {
    let mut failed = Vec::new();
    for seed in CI_SEEDS.filter(|s| !KNOWN_OPEN.iter().any(|(k, _)| k == s)) {
        let outcome = run(Params::from_seed(seed, None), Faults::default()).expect("the simulation runs");
        if !outcome.passed() {
            failed.push(report(&outcome));
        }
    }
    assert!(failed.is_empty(), "{} seed(s) failed:\n{}", failed.len(), failed.join("\n\n"));
}

#[test]
fn known_open_bugs_still_reproduce() {
    for (seed, violation) in KNOWN_OPEN {
        let outcome = run(Params::from_seed(*seed, None), Faults::default()).expect("the simulation runs");
        assert!(
            outcome.violations.iter().any(|v| v.starts_with(violation)),
            "seed {seed} no longer shows '{violation}': fixed? Remove it from KNOWN_OPEN.\n{}",
            report(&outcome)
        );
    }
}

#[test]
fn a_seed_reproduces_exactly() {
    let params = Params::from_seed(3, None).with_all_faults();
    let first = run(params.clone(), Faults::default()).expect("the simulation runs");
    let second = run(params, Faults::default()).expect("the simulation runs");
    assert_eq!(first.events, second.events);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert!(first.events.len() > 100, "a run records its events ({})", first.events.len());
}

/// Runs seeds until one shows a violation starting with `expected`.
fn caught(faults: Faults, expected: &str) -> Option<(u64, String)> {
    (0..6).find_map(|seed| {
        let outcome = run(Params::from_seed(seed, None), faults).expect("the simulation runs");
        outcome.violations.into_iter().find(|v| v.starts_with(expected)).map(|v| (seed, v))
    })
}

#[test]
fn acknowledging_before_the_batch_is_durable_is_caught() {
    let faults = Faults { ack_before_durable: true, ..Faults::default() };
    let found = caught(faults, "invariant 1/4 (after convergence");
    assert!(found.is_some(), "no seed of 0..6 lost an acknowledged batch");
}

#[test]
fn skipping_handoff_is_caught() {
    let faults = Faults { skip_handoff: true, ..Faults::default() };
    let found = caught(faults, "invariant 2");
    assert!(found.is_some(), "no seed of 0..6 saw a session stay live on a node that does not own it");
}
