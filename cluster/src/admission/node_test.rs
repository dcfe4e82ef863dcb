use super::super::{LimiterState, Refusal};
use super::*;

const ATTR: &str = "user.id";
const NOW_MS: u64 = 5_000;

fn config(limit: u64, lease_units: u64) -> LimiterConfig {
    LimiterConfig::new(1000, lease_units, [(ATTR.to_owned(), limit)]).expect("valid config")
}

/// Proposes everything `node` has due and hands back the answers.
fn sync(node: &mut NodeLimiter, state: &mut LimiterState) -> Vec<Command> {
    let commands = node.commands();
    for command in &commands {
        let response = state.apply(command);
        node.on_response(command, &response);
    }
    commands
}

#[test]
fn admits_up_to_the_limit_then_overflows() {
    let config = config(5, 2);
    let (mut state, mut node) = (LimiterState::new(config.clone()), NodeLimiter::new(NodeId(1), config));
    let mut admitted = 0;
    for i in 0..20 {
        let value = format!("v{i}");
        let decision = loop {
            match node.admit(ATTR, &value, NOW_MS) {
                Admit::NeedLease => {
                    sync(&mut node, &mut state);
                }
                decision => break decision,
            }
        };
        admitted += u64::from(decision == Admit::New);
        assert_eq!(decision, if i < 5 { Admit::New } else { Admit::Overflow }, "value {i}");
    }
    assert_eq!(admitted, 5);
    assert_eq!(node.admit(ATTR, "v3", NOW_MS), Admit::Known);
    let counters = node.counters();
    assert_eq!((counters.new, counters.overflow, counters.known), (5, 15, 1));
    sync(&mut node, &mut state);
    assert_eq!(state.usage(ATTR, Window(5)).map(|u| (u.admitted, u.outstanding)), Some((5, 0)));
}

#[test]
fn leases_ahead_of_need() {
    let config = config(100, 4);
    let (mut state, mut node) = (LimiterState::new(config.clone()), NodeLimiter::new(NodeId(1), config));
    assert_eq!(node.admit(ATTR, "a", NOW_MS), Admit::NeedLease);
    sync(&mut node, &mut state);
    // 4 units; after the second is used (2 left = low water) a refill is due.
    assert_eq!(node.admit(ATTR, "a", NOW_MS), Admit::New);
    assert!(node.commands().iter().all(|c| !matches!(c, Command::Lease { .. })));
    assert_eq!(node.admit(ATTR, "b", NOW_MS), Admit::New);
    let commands = sync(&mut node, &mut state);
    assert!(commands.iter().any(|c| matches!(c, Command::Lease { lease: Some(LeaseId(0)), .. })));
    for value in ["c", "d", "e", "f"] {
        assert_eq!(node.admit(ATTR, value, NOW_MS), Admit::New);
    }
}

#[test]
fn a_partitioned_node_admits_only_within_its_lease() {
    let config = config(6, 3);
    let mut state = LimiterState::new(config.clone());
    let (mut cut_off, mut other) = (NodeLimiter::new(NodeId(1), config.clone()), NodeLimiter::new(NodeId(2), config));
    assert_eq!(cut_off.admit(ATTR, "x", NOW_MS), Admit::NeedLease);
    sync(&mut cut_off, &mut state);
    // Partition: cut_off's commands never arrive. It spends its 3 units.
    for value in ["a", "b", "c"] {
        assert_eq!(cut_off.admit(ATTR, value, NOW_MS), Admit::New);
    }
    assert_eq!(cut_off.admit(ATTR, "d", NOW_MS), Admit::NeedLease);
    // The others get the remaining 3 and no more.
    let mut new = 0;
    for i in 0..10 {
        let value = format!("o{i}");
        let mut decision = other.admit(ATTR, &value, NOW_MS);
        if decision == Admit::NeedLease {
            sync(&mut other, &mut state);
            decision = other.admit(ATTR, &value, NOW_MS);
        }
        new += u64::from(decision == Admit::New);
    }
    assert_eq!(new, 3);
    assert_eq!(other.admit(ATTR, "zz", NOW_MS), Admit::Overflow);
}

#[test]
fn reports_teach_other_nodes_and_retries_are_safe() {
    let config = config(10, 4);
    let mut state = LimiterState::new(config.clone());
    let (mut one, mut two) = (NodeLimiter::new(NodeId(1), config.clone()), NodeLimiter::new(NodeId(2), config));
    one.admit(ATTR, "a", NOW_MS);
    sync(&mut one, &mut state);
    one.admit(ATTR, "a", NOW_MS);
    one.admit(ATTR, "b", NOW_MS);
    two.admit(ATTR, "z", NOW_MS);
    let report = one.commands().into_iter().find(|c| matches!(c, Command::Report { .. })).expect("a report is due");
    // Applied, but the answer is lost: proposed again, answered twice.
    let first = state.apply(&report);
    two.learn(&report);
    one.on_failure(&report);
    let again = one.commands().into_iter().find(|c| matches!(c, Command::Report { .. })).expect("reported again");
    assert_eq!(again, report);
    assert_eq!(state.apply(&again), first);
    one.on_response(&again, &first);
    assert!(one.commands().is_empty());
    assert_eq!(state.usage(ATTR, Window(5)).map(|u| (u.admitted, u.outstanding)), Some((2, 2)));
    assert_eq!(two.admit(ATTR, "b", NOW_MS), Admit::Known);
}

#[test]
fn windows_roll_and_old_ones_overflow() {
    let config = config(10, 4);
    let mut state = LimiterState::new(config.clone());
    let mut node = NodeLimiter::new(NodeId(1), config.clone());
    node.admit(ATTR, "a", NOW_MS);
    sync(&mut node, &mut state);
    assert_eq!(node.admit(ATTR, "a", NOW_MS), Admit::New);
    // The next window starts empty and needs its own lease.
    assert_eq!(node.admit(ATTR, "a", NOW_MS + 1000), Admit::NeedLease);
    // The previous window is still kept; the one before it is gone.
    assert_eq!(node.admit(ATTR, "a", NOW_MS), Admit::Known);
    assert_eq!(node.admit(ATTR, "a", NOW_MS + 2000), Admit::NeedLease);
    assert_eq!(node.admit(ATTR, "a", NOW_MS), Admit::Overflow);
    // A closed window is refused by the state: the node overflows there.
    state.apply(&Command::Expire { before_window: config.expire_before(NOW_MS + 3000) });
    assert_eq!(node.admit(ATTR, "b", NOW_MS + 1000), Admit::NeedLease);
    let commands = node.commands();
    let refused = commands.iter().map(|c| (c, state.apply(c))).find(|(_, r)| *r == Response::Refused(Refusal::WindowClosed));
    let (command, response) = refused.expect("window 6 is closed");
    node.on_response(command, &response);
    assert_eq!(node.admit(ATTR, "b", NOW_MS + 1000), Admit::Overflow);
}

#[test]
fn unlimited_attributes_pass() {
    let mut node = NodeLimiter::new(NodeId(1), config(1, 1));
    assert_eq!(node.admit("http.route", "/x", NOW_MS), Admit::Unlimited);
    assert!(node.commands().is_empty());
    assert_eq!(node.counters(), AdmitCounters::default());
}
