//! Link faults as TCP sees them. turmoil's `partition` and its random
//! link failures drop messages, and a dropped message of a TCP connection
//! is a gap in the byte stream: the receiver's HTTP/2 decoder then waits for
//! bytes that never come, or misreads the next frames. Real TCP never does
//! that; it retransmits, so a partition or a lossy path *stalls* a
//! connection, and what was sent arrives, in order, once the path is back
//! (or the connection fails). Here every link fault is a turmoil `hold`
//! (messages kept) and its end a `release` (delivered in order).
//!
//! * partitions (both kinds: with TCP, a one-way loss stalls a connection
//!   both ways, as nothing is acknowledged) hold a pair until repaired;
//! * loss: each millisecond, with the seed's probability, a random pair of
//!   nodes stalls for 20-300 ms.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::run::node_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Until the plan repairs it.
    Partition,
    /// A loss stall, until this step.
    Stall(u64),
}

/// The held links of a run, by node pair (smaller index first).
#[derive(Debug)]
pub struct Links {
    held: BTreeMap<(usize, usize), Hold>,
    rng: StdRng,
    stall_rate: f64,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Links {
    /// `stall_rate`: probability per simulated millisecond that a loss stall
    /// starts (0 without the loss class).
    pub fn new(seed: u64, stall_rate: f64) -> Self {
        Self { held: BTreeMap::new(), rng: StdRng::seed_from_u64(seed ^ 0x11_4c5), stall_rate }
    }

    pub fn partition(&mut self, sim: &mut turmoil::Sim<'_>, a: usize, b: usize) {
        if self.held.insert(pair(a, b), Hold::Partition).is_none() {
            sim.hold(node_name(a).as_str(), node_name(b).as_str());
        }
    }

    pub fn repair(&mut self, sim: &mut turmoil::Sim<'_>, a: usize, b: usize) {
        if self.held.remove(&pair(a, b)).is_some() {
            sim.release(node_name(a).as_str(), node_name(b).as_str());
        }
    }

    /// Ends the stalls due at `step` and maybe starts one between two of
    /// `started` nodes. Returns the stall started, for the event trace.
    pub fn tick(&mut self, sim: &mut turmoil::Sim<'_>, step: u64, started: &[usize]) -> Option<(usize, usize, u64)> {
        let due: Vec<(usize, usize)> =
            self.held.iter().filter(|(_, h)| matches!(h, Hold::Stall(until) if *until <= step)).map(|(p, _)| *p).collect();
        for (a, b) in due {
            self.repair(sim, a, b);
        }
        if self.stall_rate <= 0.0 || started.len() < 2 || !self.rng.random_bool(self.stall_rate) {
            return None;
        }
        let a = started[self.rng.random_range(0..started.len())];
        let b = started[self.rng.random_range(0..started.len())];
        let ms = self.rng.random_range(20..300);
        if a == b || self.held.contains_key(&pair(a, b)) {
            return None;
        }
        self.held.insert(pair(a, b), Hold::Stall(step + ms));
        sim.hold(node_name(a).as_str(), node_name(b).as_str());
        Some((a, b, ms))
    }

    /// Releases every held link; no more stalls start.
    pub fn heal(&mut self, sim: &mut turmoil::Sim<'_>) {
        let held: Vec<(usize, usize)> = self.held.keys().copied().collect();
        for (a, b) in held {
            self.repair(sim, a, b);
        }
        self.stall_rate = 0.0;
    }
}
