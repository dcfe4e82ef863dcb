//! Units stranded on idle nodes under a small limit: three nodes share one
//! window; one is busy (a new value every millisecond), two are idle (two
//! new values each early on, then nothing). Proposals commit after a fixed
//! round trip, in order. When the busy node first overflows (the window is
//! used up), how many units do the idle nodes hold unused? `cargo test -p
//! ollystack-cluster strand -- --nocapture` prints the figures.

use std::collections::VecDeque;

use super::{Admit, Command, LimiterConfig, LimiterState, NodeLimiter, Window};
use crate::NodeId;

const ATTR: &str = "user.id";
const START_MS: u64 = 1_700_000_000_000;
const WINDOW_MS: u64 = 60_000;
const NODES: usize = 3;
/// A Raft round trip with fsync.
const ROUND_TRIP_MS: u64 = 20;
/// Long enough for the busy node to use up any limit tried here.
const RUN_MS: u64 = 10_000;
/// When the idle nodes see a new value, in ms from the start.
const IDLE_VALUES_MS: [u64; 2] = [10, 50];

struct Outcome {
    busy_admitted: u64,
    idle_admitted: u64,
    /// Units each idle node holds unused when the busy node overflows.
    idle_held: [u64; 2],
}

fn run(limit: u64, lease_units: u64) -> Outcome {
    let config = LimiterConfig::new(WINDOW_MS, lease_units, [(ATTR.to_owned(), limit)]).expect("valid config");
    let mut state = LimiterState::new(config.clone());
    let mut nodes: Vec<NodeLimiter> = (0..NODES)
        .map(|i| {
            let mut node = NodeLimiter::new(NodeId(i as u64), config.clone());
            node.set_members(NODES as u64);
            node
        })
        .collect();
    // (commits at, proposer, command)
    let mut in_flight: VecDeque<(u64, usize, Command)> = VecDeque::new();
    // The value each node is trying to admit (retried until decided).
    let mut pending: [Option<String>; NODES] = Default::default();
    let mut next_busy = 0;
    let mut admitted = [0u64; NODES];
    let window = Window(START_MS / WINDOW_MS);
    'run: for ms in 0..RUN_MS {
        let now_ms = START_MS + ms;
        if pending[0].is_none() {
            pending[0] = Some(format!("busy{next_busy}"));
            next_busy += 1;
        }
        for (i, pending) in pending.iter_mut().enumerate().skip(1) {
            if IDLE_VALUES_MS.contains(&ms) {
                *pending = Some(format!("idle{i}-{ms}"));
            }
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            if let Some(value) = pending[i].take() {
                match node.admit(ATTR, &value, now_ms) {
                    Admit::NeedLease => pending[i] = Some(value),
                    Admit::New => admitted[i] += 1,
                    Admit::Overflow if i == 0 => break 'run,
                    Admit::Known | Admit::Overflow => {}
                    Admit::Unlimited => unreachable!("{ATTR} is limited"),
                }
            }
            in_flight.extend(node.commands(now_ms).into_iter().map(|c| (now_ms + ROUND_TRIP_MS, i, c)));
        }
        while in_flight.front().is_some_and(|(at, _, _)| *at <= now_ms) {
            let Some((_, proposer, command)) = in_flight.pop_front() else { break };
            let response = state.apply(&command);
            nodes[proposer].on_response(&command, &response);
            for node in &mut nodes {
                node.learn(&command);
            }
        }
    }
    let usage = state.usage(ATTR, window).expect("the window has state");
    assert!(usage.admitted + usage.outstanding <= limit);
    assert_eq!(nodes[0].held_units(ATTR, window), 0, "the busy node overflowed");
    Outcome {
        busy_admitted: admitted[0],
        idle_admitted: admitted[1] + admitted[2],
        idle_held: [nodes[1].held_units(ATTR, window), nodes[2].held_units(ATTR, window)],
    }
}

#[test]
fn idle_nodes_strand_at_most_a_few_units() {
    for limit in [10, 100, 1000] {
        for lease_units in [1, 4, 64] {
            let o = run(limit, lease_units);
            println!(
                "limit {limit:>4}, lease_units {lease_units:>2}: busy node admitted {:>4}, idle nodes {}; idle nodes hold {:?} unused",
                o.busy_admitted, o.idle_admitted, o.idle_held
            );
            // Every idle value found a unit.
            assert_eq!(o.idle_admitted, 2 * IDLE_VALUES_MS.len() as u64);
            // The busy node got all the rest but what the idle nodes hold.
            assert_eq!(o.busy_admitted + o.idle_admitted + o.idle_held.iter().sum::<u64>(), limit);
            // An idle node asks for what it used in the last refill
            // interval (2 values), or the configured minimum, within the
            // fair share (limit / 6); it asked with up to half of that left.
            let want = (IDLE_VALUES_MS.len() as u64).max(lease_units).min(limit / 6).max(1);
            let bound = want + want / 2;
            assert!(o.idle_held.iter().all(|&held| held <= bound), "held {:?}, bound {bound}", o.idle_held);
        }
    }
}
