use super::super::LEASE_REFILL_MS;
use super::super::{LimiterState, Refusal};
use super::*;

const ATTR: &str = "user.id";
const NOW_MS: u64 = 5_000;

fn config(limit: u64, lease_units: u64) -> LimiterConfig {
    LimiterConfig::new(1000, lease_units, [(ATTR.to_owned(), limit)]).expect("valid config")
}

/// Proposes everything `node` has due and hands back the answers.
fn sync(node: &mut NodeLimiter, state: &mut LimiterState) -> Vec<Command> {
    sync_at(node, state, NOW_MS)
}

fn sync_at(node: &mut NodeLimiter, state: &mut LimiterState, now_ms: u64) -> Vec<Command> {
    let commands = node.commands(now_ms);
    for command in &commands {
        let response = state.apply(command);
        node.on_response(command, &response);
    }
    commands
}

/// The units of each lease request in `commands`.
fn lease_wants(commands: &[Command]) -> Vec<u64> {
    commands.iter().filter_map(|c| if let Command::Lease { want, .. } = c { Some(*want) } else { None }).collect()
}

/// Admits `count` new values at `now_ms`, syncing whenever a lease is due
/// ("the refill lands at once"); returns the lease requests' units.
fn admit_new(node: &mut NodeLimiter, state: &mut LimiterState, prefix: &str, count: u64, now_ms: u64) -> Vec<u64> {
    let mut wants = Vec::new();
    for i in 0..count {
        let value = format!("{prefix}{i}");
        loop {
            match node.admit(ATTR, &value, now_ms) {
                Admit::NeedLease => wants.extend(lease_wants(&sync_at(node, state, now_ms))),
                decision => {
                    assert_eq!(decision, Admit::New, "{value}");
                    break;
                }
            }
        }
    }
    wants
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
    assert!(node.commands(NOW_MS).iter().all(|c| !matches!(c, Command::Lease { .. })));
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
    let report = one.commands(NOW_MS).into_iter().find(|c| matches!(c, Command::Report { .. })).expect("a report is due");
    // Applied, but the answer is lost: proposed again, answered twice.
    let first = state.apply(&report);
    two.learn(&report);
    one.on_failure(&report);
    let again = one.commands(NOW_MS).into_iter().find(|c| matches!(c, Command::Report { .. })).expect("reported again");
    assert_eq!(again, report);
    assert_eq!(state.apply(&again), first);
    one.on_response(&again, &first);
    assert!(one.commands(NOW_MS).is_empty());
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
    let commands = node.commands(NOW_MS);
    let refused = commands.iter().map(|c| (c, state.apply(c))).find(|(_, r)| *r == Response::Refused(Refusal::WindowClosed));
    let (command, response) = refused.expect("window 6 is closed");
    node.on_response(command, &response);
    assert_eq!(node.admit(ATTR, "b", NOW_MS + 1000), Admit::Overflow);
}

#[test]
fn unlimited_attributes_pass() {
    let mut node = NodeLimiter::new(NodeId(1), config(1, 1));
    assert_eq!(node.admit("http.route", "/x", NOW_MS), Admit::Unlimited);
    assert!(node.commands(NOW_MS).is_empty());
    assert_eq!(node.counters(), AdmitCounters::default());
}

#[test]
fn lease_requests_grow_with_the_rate_and_shrink_when_idle() {
    let config = config(1_000_000, 1);
    let (mut state, mut node) = (LimiterState::new(config.clone()), NodeLimiter::new(NodeId(1), config));
    // A burst: each request asks for the values of the interval so far.
    let wants = admit_new(&mut node, &mut state, "a", 1000, NOW_MS);
    assert_eq!(wants[..6], [1, 1, 2, 4, 8, 16], "{wants:?}");
    // The next refill interval: requests ask for at least the last one's
    // 1000 values.
    let wants = admit_new(&mut node, &mut state, "b", 3000, NOW_MS + LEASE_REFILL_MS);
    assert!(!wants.is_empty() && wants.iter().all(|&w| w >= 1000), "{wants:?}");
    // Quiet for a few intervals, then the next window: one unit (running
    // dry after a quiet spell is no reason to double).
    let quiet = NOW_MS + 1000;
    assert_eq!(node.admit(ATTR, "c", quiet), Admit::NeedLease);
    let wants = lease_wants(&sync_at(&mut node, &mut state, quiet));
    assert!(!wants.is_empty() && wants.iter().all(|&w| w == 1), "{wants:?}");
    assert_eq!(node.admit(ATTR, "c", quiet), Admit::New);
}

#[test]
fn a_refill_landing_late_doubles_the_next_request() {
    let config = config(1_000_000, 4);
    let (mut state, mut node) = (LimiterState::new(config.clone()), NodeLimiter::new(NodeId(1), config));
    assert_eq!(admit_new(&mut node, &mut state, "a", 2, NOW_MS), [4]);
    // 2 units left: a refill is due; it is proposed, and lands late.
    let commands = node.commands(NOW_MS);
    assert_eq!(lease_wants(&commands), [4]);
    let refill = commands.iter().find(|c| matches!(c, Command::Lease { .. })).expect("a refill");
    for value in ["b", "c"] {
        assert_eq!(node.admit(ATTR, value, NOW_MS), Admit::New);
    }
    assert_eq!(node.admit(ATTR, "d", NOW_MS), Admit::NeedLease);
    let response = state.apply(refill);
    node.on_response(refill, &response);
    // Dry before the refill landed: the next request is twice the last.
    assert_eq!(node.admit(ATTR, "d", NOW_MS), Admit::New);
    assert_eq!(lease_wants(&node.commands(NOW_MS)), [8]);
}

#[test]
fn requests_ask_for_a_fair_share_of_what_is_left() {
    // A minimum of 1000 units, but 100 values among 3 nodes: 100 / 6.
    let config = config(100, 1000);
    let (mut state, mut node) = (LimiterState::new(config.clone()), NodeLimiter::new(NodeId(1), config));
    node.set_members(3);
    let mut wants = Vec::new();
    'values: for i in 0..200 {
        let value = format!("v{i}");
        loop {
            let decision = node.admit(ATTR, &value, NOW_MS);
            wants.extend(lease_wants(&sync(&mut node, &mut state)));
            match decision {
                Admit::NeedLease => {}
                Admit::New => break,
                Admit::Overflow => break 'values,
                other => panic!("{other:?}"),
            }
        }
    }
    // 84 left after the first grant: 14; and so on down to one unit at a time.
    assert_eq!(wants[..4], [16, 14, 11, 9], "{wants:?}");
    assert!(wants.windows(2).all(|w| w[1] <= w[0]) && wants.last() == Some(&1), "{wants:?}");
    // Every unit went out, one value each, and no more.
    assert_eq!(state.usage(ATTR, Window(5)).map(|u| u.admitted + u.outstanding), Some(100));
    assert_eq!(node.counters().new, 100);
}
