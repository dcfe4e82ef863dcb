//! The limit under arbitrary interleavings: three nodes and one replicated
//! state, with proposals applied in any order, applied twice, or lost;
//! answers lost (the node retries); reports learned late; nodes restarting
//! with nothing; clocks skewed; windows rolling and expiring. After every
//! step, no (attribute, window) has more distinct admitted values across
//! all nodes than its limit.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;

use super::{Admit, Command, LimiterConfig, LimiterState, NodeLimiter, Response, Window};
use crate::NodeId;

const NODES: usize = 3;
const ATTRIBUTES: [&str; 2] = ["user.id", "tenant.plan"];
const WINDOW_MS: u64 = 1000;
const START_MS: u64 = 1_700_000_000_000;

#[derive(Clone, Debug)]
enum Op {
    Admit {
        node: usize,
        attribute: usize,
        value: u8,
    },
    Tick {
        node: usize,
        ms: u64,
    },
    /// The node proposes what it has due.
    Propose {
        node: usize,
    },
    /// Fair weather: the node proposes what it has due, and all of it
    /// commits and is answered at once.
    Sync {
        node: usize,
    },
    /// A proposal commits; its answer reaches the node, or is lost (the node
    /// sees a failure, as after a leader change).
    Apply {
        pick: Index,
        answered: bool,
    },
    /// A proposal commits and stays in flight, so it commits again later.
    Duplicate {
        pick: Index,
    },
    /// A proposal never commits.
    Lose {
        pick: Index,
    },
    Answer {
        pick: Index,
    },
    /// One node's replica applies a committed report.
    Learn {
        pick: Index,
    },
    Restart {
        node: usize,
    },
    /// The leader (at this node's clock) expires old windows.
    Expire {
        node: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let node = 0..NODES;
    prop_oneof![
        40 => (node.clone(), 0..ATTRIBUTES.len(), 0..24u8).prop_map(|(node, attribute, value)| Op::Admit { node, attribute, value }),
        3 => (node.clone(), 0..700u64).prop_map(|(node, ms)| Op::Tick { node, ms }),
        8 => node.clone().prop_map(|node| Op::Propose { node }),
        12 => node.clone().prop_map(|node| Op::Sync { node }),
        8 => (any::<Index>(), prop::bool::weighted(0.8)).prop_map(|(pick, answered)| Op::Apply { pick, answered }),
        2 => any::<Index>().prop_map(|pick| Op::Duplicate { pick }),
        2 => any::<Index>().prop_map(|pick| Op::Lose { pick }),
        8 => any::<Index>().prop_map(|pick| Op::Answer { pick }),
        8 => any::<Index>().prop_map(|pick| Op::Learn { pick }),
        1 => node.clone().prop_map(|node| Op::Restart { node }),
        2 => node.prop_map(|node| Op::Expire { node }),
    ]
}

struct SimNode {
    limiter: NodeLimiter,
    /// Bumped on restart: answers to an earlier process are dropped.
    incarnation: u32,
    clock_ms: u64,
}

struct Sim {
    config: LimiterConfig,
    state: LimiterState,
    nodes: Vec<SimNode>,
    /// (node, incarnation, command) proposed and not committed.
    proposals: Vec<(usize, u32, Command)>,
    /// Outcomes on their way back; `None` is a failure.
    answers: Vec<(usize, u32, Command, Option<Response>)>,
    /// Committed reports on their way to each node's replica.
    learnings: Vec<(usize, Command)>,
    /// The oracle: every value any node admitted as new, per (attribute, window).
    admitted: BTreeMap<(String, Window), BTreeSet<String>>,
}

impl Sim {
    fn new(config: LimiterConfig, skews_ms: &[u64]) -> Self {
        let nodes = skews_ms
            .iter()
            .enumerate()
            .map(|(i, skew)| SimNode { limiter: sim_limiter(i, &config), incarnation: 0, clock_ms: START_MS + skew })
            .collect();
        let state = LimiterState::new(config.clone());
        Self { config, state, nodes, proposals: Vec::new(), answers: Vec::new(), learnings: Vec::new(), admitted: BTreeMap::new() }
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Admit { node, attribute, value } => self.admit(node, ATTRIBUTES[attribute], &format!("v{value}"))?,
            Op::Tick { node, ms } => self.nodes[node].clock_ms += ms,
            Op::Propose { node } => {
                let (incarnation, now_ms) = (self.nodes[node].incarnation, self.nodes[node].clock_ms);
                let commands = self.nodes[node].limiter.commands(now_ms);
                self.proposals.extend(commands.into_iter().map(|c| (node, incarnation, c)));
            }
            Op::Sync { node } => {
                let now_ms = self.nodes[node].clock_ms;
                for command in self.nodes[node].limiter.commands(now_ms) {
                    let response = self.commit(&command)?;
                    self.nodes[node].limiter.on_response(&command, &response);
                }
            }
            Op::Apply { pick, answered } if !self.proposals.is_empty() => {
                let (node, incarnation, command) = self.proposals.swap_remove(pick.index(self.proposals.len()));
                let response = self.commit(&command)?;
                self.answers.push((node, incarnation, command, answered.then_some(response)));
            }
            Op::Duplicate { pick } if !self.proposals.is_empty() => {
                let command = self.proposals[pick.index(self.proposals.len())].2.clone();
                self.commit(&command)?;
            }
            Op::Lose { pick } if !self.proposals.is_empty() => {
                let (node, incarnation, command) = self.proposals.swap_remove(pick.index(self.proposals.len()));
                self.answers.push((node, incarnation, command, None));
            }
            Op::Answer { pick } if !self.answers.is_empty() => {
                let (node, incarnation, command, response) = self.answers.swap_remove(pick.index(self.answers.len()));
                let target = &mut self.nodes[node];
                if target.incarnation == incarnation {
                    match response {
                        Some(response) => target.limiter.on_response(&command, &response),
                        None => target.limiter.on_failure(&command),
                    }
                }
            }
            Op::Learn { pick } if !self.learnings.is_empty() => {
                let (node, command) = self.learnings.swap_remove(pick.index(self.learnings.len()));
                self.nodes[node].limiter.learn(&command);
            }
            Op::Restart { node } => {
                let target = &mut self.nodes[node];
                target.limiter = sim_limiter(node, &self.config);
                target.incarnation += 1;
            }
            Op::Expire { node } => {
                let before_window = self.config.expire_before(self.nodes[node].clock_ms);
                self.commit(&Command::Expire { before_window })?;
            }
            Op::Apply { .. } | Op::Duplicate { .. } | Op::Lose { .. } | Op::Answer { .. } | Op::Learn { .. } => {}
        }
        self.check()
    }

    fn admit(&mut self, node: usize, attribute: &str, value: &str) -> Result<(), TestCaseError> {
        let now_ms = self.nodes[node].clock_ms;
        let seen = self.admitted.entry((attribute.to_owned(), self.config.window_at(now_ms))).or_default();
        match self.nodes[node].limiter.admit(attribute, value, now_ms) {
            Admit::New => {
                seen.insert(value.to_owned());
            }
            Admit::Known => prop_assert!(seen.contains(value), "{value} is known but was never admitted"),
            Admit::Overflow | Admit::NeedLease => {}
            Admit::Unlimited => prop_assert!(false, "{attribute} is limited"),
        }
        Ok(())
    }

    fn commit(&mut self, command: &Command) -> Result<Response, TestCaseError> {
        let response = self.state.apply(command);
        prop_assert_eq!(self.state.check_invariants(), Ok(()));
        if let (Command::Report { attribute, window, values, .. }, Response::Reported { .. }) = (command, &response) {
            let seen = self.admitted.get(&(attribute.clone(), *window));
            prop_assert!(values.iter().all(|v| seen.is_some_and(|seen| seen.contains(v))), "reported values were admitted");
            self.learnings.extend((0..NODES).map(|node| (node, command.clone())));
        }
        Ok(response)
    }

    /// The limit.
    fn check(&self) -> Result<(), TestCaseError> {
        for ((attribute, window), values) in &self.admitted {
            let limit = self.config.limit(attribute).unwrap_or(0);
            prop_assert!(values.len() as u64 <= limit, "{attribute} in {window:?}: {} values admitted, limit {limit}", values.len());
        }
        Ok(())
    }
}

fn sim_limiter(node: usize, config: &LimiterConfig) -> NodeLimiter {
    let mut limiter = NodeLimiter::new(NodeId(node as u64), config.clone());
    limiter.set_members(NODES as u64);
    limiter
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn distinct_values_never_exceed_the_limit(
        limits in (1..12u64, 1..5u64),
        lease_units in 1..6u64,
        skews_ms in prop::collection::vec(0..1500u64, NODES),
        ops in prop::collection::vec(op(), 1..500),
    ) {
        let limits = [(ATTRIBUTES[0].to_owned(), limits.0), (ATTRIBUTES[1].to_owned(), limits.1)];
        let config = LimiterConfig::new(WINDOW_MS, lease_units, limits).expect("valid config");
        let mut sim = Sim::new(config, &skews_ms);
        for op in ops {
            sim.step(op)?;
        }
    }
}
