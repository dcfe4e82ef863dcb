//! How many units a node asks for per lease request: sized from its own
//! recent rate of new values, and capped by a fair share of what the
//! window has left. Pure: time is passed in.
//!
//! # Why adaptive
//!
//! Every lease request is a Raft round trip (an fsync'd log entry, about
//! 20 ms). A fixed lease either caps a busy node's new values per second
//! at `lease / round trip` (64 units: ~46K/s on three nodes), or, if made
//! large, lets one node sit on quota it never uses ("stranded" units: the
//! state counts them as outstanding until the window expires, so other
//! nodes overflow early). Sizing each request from the requester's own
//! rate gives a busy node leases that last about [`LEASE_REFILL_MS`] and an
//! idle node leases of one or two units.
//!
//! # The size of one request ([`LeaseSizer`])
//!
//! * **Rate**: the units asked for are the new values this node admitted
//!   for the attribute in the last full refill interval, or in the current
//!   one if that is more already: enough for one more interval at the
//!   recent rate. Intervals are [`LEASE_REFILL_MS`] long, aligned to the
//!   epoch, and counted per attribute across windows (a busy node starts a
//!   new window with a lease sized for its rate).
//! * **Growth**: the count grows as the node spends its leases, so a burst
//!   asks for 1, 1, 2, 4, ... units: each request about the sum of those
//!   before. And a node that ran dry while a refill it asked for ahead of
//!   need was still in flight (the refill came too late) asks, within a
//!   refill interval of that request, for at least twice it. Without this,
//!   a node whose round trips are slower than half the interval would
//!   measure only the rate its leases allowed, and never grow. Running dry
//!   after a quiet spell is no sign of a high rate, and does not double;
//!   nor does waiting for a first lease, or for one asked for with no unit
//!   left (a one-unit lease that was spent at once).
//! * **Shrink**: after two intervals without a new value the rate is zero
//!   and the request falls to the minimum.
//! * **Bounds**: at least `min_units` (`limits.lease_units`, at least 1)
//!   and at most [`MAX_LEASE_UNITS`] (or `min_units` if that is larger: a
//!   config that asks for fixed large leases keeps them).
//!
//! # The fair share ([`fair_share_units`])
//!
//! A request asks for at most `free / (2 · members)` units (at least 1),
//! where `free` is what the window had left at this node's last grant (the
//! state answers it with each lease; the whole limit before the first)
//! and `members` the nodes in the ring. Why this bound:
//!
//! * The units an idle node strands are at most its last request and the
//!   (at most half a request) it had left when it asked: with a small
//!   limit (10 over 3 nodes: 1 unit at a time; 100: at most 16 a request,
//!   fewer as the window fills), no single node can sit on much of what
//!   others may need. An idle node's requests are small anyway (what it
//!   used in the last refill interval, or `lease_units`).
//! * Requests are made against views that may be stale (other nodes lease
//!   meanwhile). If every member asks at once against the same view, they
//!   take at most half of it together, so half of what was free stays for
//!   whoever needs it next; each later round halves at most again.
//! * At least 1: a node that needs a unit can always ask for one; near
//!   the end of a window units go out one at a time.
//!
//! The share caps the *request*; the grant is still `min(request, free)`,
//! decided by [`LimiterState`](super::LimiterState) on the exact count, so
//! the limit never depends on this module. Keeping the cap on the asking
//! side leaves the log's commands and the state's `apply` unchanged: every
//! replica, of any version, applies every entry the same way.

/// A lease should last about this long at the requester's recent rate:
/// several Raft round trips, so a refill asked for at half a lease left
/// arrives in time, and short enough that a node that goes quiet holds
/// little.
pub const LEASE_REFILL_MS: u64 = 200;

/// The most units one request asks for (unless `limits.lease_units` asks
/// for more): 330K new values/s on one node at [`LEASE_REFILL_MS`], and a
/// bound on the values a node keeps unreported.
pub const MAX_LEASE_UNITS: u64 = 65_536;

/// The most units one request should ask for when the window has `free`
/// units left and `members` nodes share it: half an even split, at least 1.
/// See the module docs for why.
pub fn fair_share_units(free: u64, members: u64) -> u64 {
    (free / members.max(1).saturating_mul(2)).max(1)
}

/// Sizes one attribute's lease requests on one node from its recent rate
/// of new values. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseSizer {
    /// The smallest request (`limits.lease_units`); at least 1.
    min_units: u64,
    /// The refill interval (`now_ms / LEASE_REFILL_MS`) `current` counts.
    interval: u64,
    /// New values admitted in `interval`.
    current: u64,
    /// New values admitted in `interval - 1`.
    previous: u64,
    /// The units of the last request; 0 before the first.
    last_units: u64,
    /// The refill interval of the last request.
    last_interval: u64,
    /// A new value found no unit since the last request.
    starved: bool,
}

impl LeaseSizer {
    pub fn new(min_units: u64) -> Self {
        Self { min_units: min_units.max(1), interval: 0, current: 0, previous: 0, last_units: 0, last_interval: 0, starved: false }
    }

    /// A new value was admitted on a unit at `now_ms`.
    pub fn record_new(&mut self, now_ms: u64) {
        self.roll(now_ms);
        self.current = self.current.saturating_add(1);
    }

    /// A new value found no unit left while a refill asked for ahead of
    /// need was in flight: the lease ran dry before its refill landed.
    pub fn record_starved(&mut self) {
        self.starved = true;
    }

    /// The units the next request would ask for at `now_ms`, before the
    /// fair share. Does not count as a request.
    pub fn units(&mut self, now_ms: u64) -> u64 {
        self.roll(now_ms);
        let recent = self.previous.max(self.current);
        // Ran dry in the interval of the last request or the next.
        let ran_dry_quickly = self.starved && self.interval <= self.last_interval + 1;
        let units = if ran_dry_quickly { recent.max(self.last_units.saturating_mul(2)) } else { recent };
        units.clamp(self.min_units, MAX_LEASE_UNITS.max(self.min_units))
    }

    /// The units to ask for in a request made at `now_ms`; remembers them
    /// (the next starved request doubles them) and clears the starvation.
    pub fn request(&mut self, now_ms: u64) -> u64 {
        let units = self.units(now_ms);
        self.last_units = units;
        self.last_interval = self.interval;
        self.starved = false;
        units
    }

    /// Moves the counts to the interval of `now_ms`. A clock that steps
    /// back keeps counting in the newest interval seen.
    fn roll(&mut self, now_ms: u64) {
        let interval = now_ms / LEASE_REFILL_MS;
        if interval <= self.interval {
            return;
        }
        self.previous = if interval == self.interval + 1 { self.current } else { 0 };
        self.current = 0;
        self.interval = interval;
    }
}

#[cfg(test)]
#[path = "lease_size_test.rs"]
mod lease_size_test;
