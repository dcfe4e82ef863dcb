//! The simulation runs CI keeps: a fixed sweep that must pass, the
//! determinism self-check, and proof that the simulator catches bugs (each
//! deliberately broken behaviour is found by some seed of a small sweep).
//!
//! Every run is a child process of the `ollystack-simulations` binary, as a
//! user runs it: one simulation per process.

use std::process::Command;
use std::sync::Mutex;

/// Seeds of the CI sweep, each run twice. A long sweep: see the README
/// ("Simulation").
const CI_SEEDS: &str = "0..200";
const CI_SEED_COUNT: usize = 200;

/// Seeds that once failed, each for a reason of its own (issue 21), kept as
/// regression cases: a lost acknowledgement of a stored segment then a
/// merge (9422, 9669, 9881: stored twice); a hand-off shipped again after a
/// lost answer (9353: stored twice); forward calls answered after their
/// deadline, cut off between the WAL and the actors (9826, 9894, 9775,
/// 9807, 9961: lost or missing from complete answers); a leaving node that
/// kept binding traces (9252: lost); a leave refused forever after the
/// node was removed from the membership (9829: no convergence). Found by
/// the sweeps after those fixes: a shipment left marked in flight by a
/// caller that stopped waiting (130: a leave that never drained); a leaving
/// node that took a shipped session after it drained (20209, 20571: lost);
/// two nodes a ring apart that sent each other a binding and both dropped
/// it (70: lost); a derived session stored on a trace's earlier home that
/// never learnt of the merge (9881 after the first fixes: missing);
/// forwards released by a healed partition after the ring moved the
/// session (31081: stored twice); a new leader that put a leaving node
/// back on the ring (9807 after the first fixes: lost); and three more of
/// the 30000.. sweep, all with a leave (31939: stored twice; 32133, 32388:
/// lost), which pass since a node leaving or out of touch takes no data;
/// a binding two nodes each dropped after the ring changed while it was on
/// its way (36605 of the 35000.. sweep: missing). Found once simulated
/// crashes cut sled back to what was flushed: a derived trace binding lost
/// with sled (8: one request in two sessions). Found by the 45300.. sweep:
/// a forward split under one ring and sent under the next, so its receiver
/// never looked for astray bindings (46987: missing, not partial); a
/// hand-off whose answer was lost, retried to a new owner after the ring
/// moved the session back (46198: stored twice). Found by the 51100..
/// sweep: a leave's hand-over that ran before the leaving node applied the
/// ring without it, keeping a derived binding (51681: missing); a derived
/// session handed off under its own ID while its merge was on its way, to
/// a home that already held the explicit binding (51957: missing); a
/// leaving leader that crashed, was removed meanwhile and came back
/// believing it still led (52493: a leave refused forever). Found by the
/// 56100.. sweep: a leaving node's archived segments handed over between
/// a query's two asks (56870: missing, not partial); a hand-off its owner
/// took just after the sender crashed, which the sender then stored too
/// (56924: stored twice; hand-offs are now noted in the WAL first). Found
/// by the 61100.. sweep: a derived session handed to the trace's home
/// between a query's asks for the alias (64894: missing, not partial).
/// Found by the 66100.. sweep: a hand-off taken by a node that left before
/// its answer arrived, sent afresh to the new owner (66912: stored twice;
/// a leaving node now tells each sender which shipments it took).
/// Found by the 76100.. sweep: a leaving node's page of archived segments
/// taken by a node whose answer was lost, then handed to the node a join
/// made the owner (77899: stored twice; an unanswered page now goes to
/// the same node again).
const REGRESSION_SEEDS: &str = "9252,9826,9894,9353,9422,9669,9881,9775,9807,9961,9829,130,20209,20571,70,31081,31939,32133,32388,36605,8,46198,46987,51681,51957,52493,56870,56924,64894,66912,77899";

/// One simulation at a time: runs compete for the two CPUs otherwise.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs the binary: (exit success, stdout).
fn simulate(args: &[&str]) -> (bool, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_ollystack-simulations")).args(args).output().expect("the simulation binary runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "the run crashed ({}): {text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every seed passes, and a second run of it (a fresh process) gives the
/// same event trace.
#[test]
fn the_ci_sweep_passes_and_replays_exactly() {
    if !cfg!(tokio_unstable) {
        panic!("run the simulation tests through `scripts/simulate test` (tokio_unstable)");
    }
    let (passed, text) = simulate(&["--seeds", CI_SEEDS, "--determinism"]);
    assert!(passed, "{text}");
    assert_eq!(text.matches("deterministic: a second run has the same trace").count(), CI_SEED_COUNT, "{text}");
}

#[test]
fn seeds_that_once_failed_pass() {
    let (passed, text) = simulate(&["--seeds", REGRESSION_SEEDS]);
    assert!(passed, "{text}");
}

#[test]
fn every_fault_class_at_once_passes_and_replays_exactly() {
    let (passed, text) = simulate(&["--seeds", "0..4", "--all-faults", "--determinism"]);
    assert!(passed, "{text}");
}

/// Whether some seed of 0..6 shows `expected` with `bug` switched on.
fn caught(bug: &str, expected: &str) -> bool {
    let (passed, text) = simulate(&["--seeds", "0..6", "--bug", bug]);
    !passed && text.contains(expected)
}

#[test]
fn acknowledging_before_the_batch_is_durable_is_caught() {
    assert!(caught("ack-before-durable", "invariant 1/4 (after convergence"), "no seed of 0..6 lost an acknowledged batch");
}

#[test]
fn skipping_handoff_is_caught() {
    assert!(caught("skip-handoff", "invariant 2"), "no seed of 0..6 saw a session stay live on a node that does not own it");
}

#[test]
fn a_leave_that_keeps_its_archive_is_caught() {
    let (passed, text) = simulate(&["--seeds", "0..6", "--all-faults", "--bug", "skip-archive-handover"]);
    assert!(
        !passed && text.contains("invariant 1/4 (after convergence"),
        "no seed of 0..6 (every fault class on) lost the archive of a node that left: {text}"
    );
}

/// Bindings left behind after a ring change. Until requests routed to one
/// other home were passed on undecoded, some seeds showed this bug as a
/// lost span (invariant 1/4: seed 30 of 0..32); since then every seed
/// that shows it does so as answers that stay partial for good (the node
/// never finishes sending bindings): `--seeds 0..160`, and 0..48 with
/// every fault on, found no lost span. Caught either way; a lost span
/// would be the worse symptom, so both are accepted and the run must fail.
#[test]
fn bindings_that_stay_behind_after_a_ring_change_are_caught() {
    let (passed, text) = simulate(&["--seeds", "0..32", "--bug", "skip-binding-sync"]);
    assert!(
        !passed && (text.contains("invariant 1/4 (after convergence") || text.contains("liveness")),
        "no seed of 0..32 caught bindings left behind after a ring change: {text}"
    );
}
