//! The fault schedule of a run's safety phase, drawn from the seed before the
//! run starts. Pure: the same parameters always give the same plan.
//!
//! Faults come one disruption at a time (a partition or a crashed node), each
//! healed after a while, so the cluster keeps a majority most of the time and
//! the workload gets acknowledgements to check; slow nodes overlap with them.
//! Everything is healed when the safety phase ends.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::params::Params;

/// One change to the simulated world. Nodes are indexes (0 = `n1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Partition(usize, usize),
    /// The first node's messages to the second are lost. Over TCP that
    /// stalls the pair's connections both ways (nothing is acknowledged),
    /// so it is carried out like `Partition` (see `links`).
    PartitionOneway(usize, usize),
    /// Undoes a partition (both directions).
    Repair(usize, usize),
    Crash(usize),
    Restart(usize),
    /// Every link of the node gets a fixed extra latency.
    Slow(usize),
    Unslow(usize),
    /// The extra node starts and joins through a member.
    StartJoiner,
    /// One of the node's live session actors (the `pick`-th, modulo how
    /// many there are) panics.
    PanicSession(usize, u64),
}

/// Actions by the simulated millisecond they happen at, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub actions: Vec<(u64, Action)>,
}

/// How long the cluster runs fault-free before the first fault (it forms and
/// the workload starts).
pub const QUIET_START_MS: u64 = 3_000;

impl Plan {
    pub fn draw(params: &Params) -> Plan {
        let mut rng = StdRng::seed_from_u64(params.seed ^ 0x0f1a_77ed);
        let f = params.faults;
        let n = params.nodes;
        let mut actions = Vec::new();
        if f.join {
            let at = rng.random_range(QUIET_START_MS..QUIET_START_MS.max(params.steps * 2 / 3).max(QUIET_START_MS + 1));
            actions.push((at, Action::StartJoiner));
        }
        let mut kinds = Vec::new();
        if f.partition {
            kinds.push(0);
        }
        if f.oneway_partition {
            kinds.push(1);
        }
        if f.crash {
            kinds.push(2);
        }
        let mut t = QUIET_START_MS;
        while !kinds.is_empty() {
            t += rng.random_range(500..3_000);
            let heal_at = t + rng.random_range(300..4_000);
            if heal_at >= params.steps {
                break;
            }
            let a = rng.random_range(0..n);
            let b = (a + rng.random_range(1..n)) % n;
            match kinds[rng.random_range(0..kinds.len())] {
                0 => actions.extend([(t, Action::Partition(a, b)), (heal_at, Action::Repair(a, b))]),
                1 => actions.extend([(t, Action::PartitionOneway(a, b)), (heal_at, Action::Repair(a, b))]),
                _ => actions.extend([(t, Action::Crash(a)), (heal_at, Action::Restart(a))]),
            }
            t = heal_at;
        }
        if f.slow_node {
            let mut t = QUIET_START_MS;
            loop {
                t += rng.random_range(1_000..5_000);
                let until = t + rng.random_range(500..5_000);
                if until >= params.steps {
                    break;
                }
                let node = rng.random_range(0..n);
                actions.extend([(t, Action::Slow(node)), (until, Action::Unslow(node))]);
                t = until;
            }
        }
        if f.actor_panic {
            // A stream of its own, so the other faults of a seed stay put.
            let mut rng = StdRng::seed_from_u64(params.seed ^ 0x0a77_0a1c);
            for _ in 0..rng.random_range(1..=4) {
                let at = rng.random_range(QUIET_START_MS..params.steps.max(QUIET_START_MS + 1));
                actions.push((at, Action::PanicSession(rng.random_range(0..n), rng.random())));
            }
        }
        actions.sort_by_key(|(at, _)| *at);
        Plan { actions }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::FaultClasses;

    #[test]
    fn every_fault_is_healed_within_the_safety_phase() {
        for seed in 0..50 {
            let params = Params::from_seed(seed, None).with_all_faults();
            let plan = Plan::draw(&params);
            let mut down = std::collections::BTreeSet::new();
            let mut cut = std::collections::BTreeSet::new();
            for (at, action) in &plan.actions {
                assert!(*at < params.steps);
                match *action {
                    Action::Crash(n) => assert!(down.insert(n)),
                    Action::Restart(n) => assert!(down.remove(&n)),
                    Action::Partition(a, b) | Action::PartitionOneway(a, b) => assert!(cut.insert((a, b)) && a != b),
                    Action::Repair(a, b) => assert!(cut.remove(&(a, b))),
                    _ => {}
                }
                assert!(down.len() + cut.len() <= 1, "seed {seed}: two disruptions at once");
            }
            assert!(down.is_empty() && cut.is_empty());
        }
    }

    #[test]
    fn no_fault_class_means_no_fault() {
        let mut params = Params::from_seed(3, None);
        params.faults = FaultClasses::default();
        assert!(Plan::draw(&params).actions.is_empty());
    }
}
