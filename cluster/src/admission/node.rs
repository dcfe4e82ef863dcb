//! The per-node half of the limiter: admission on the ingest hot path from
//! leased quota and known values, and the commands that keep both fed.

use std::collections::{BTreeMap, HashSet, VecDeque};

use super::config::{LimiterConfig, Window};
use super::lease_size::{fair_share_units, LeaseSizer};
use super::state::{Command, LeaseId, Response};
use crate::NodeId;

/// The decision for one attribute value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Admit {
    /// Already admitted in this window (here or, as reported, elsewhere).
    Known,
    /// Newly admitted on a unit of this node's lease.
    New,
    /// Past the limit: write [`OVERFLOW_VALUE`](super::OVERFLOW_VALUE) instead.
    Overflow,
    /// Not known and no unit left here: a lease request is due
    /// ([`NodeLimiter::commands`]). Hold the signal until it is answered, or
    /// write the overflow marker.
    NeedLease,
    /// The attribute has no limit.
    Unlimited,
}

/// How many decisions of each kind this node made; read by metrics and tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct AdmitCounters {
    pub known: u64,
    pub new: u64,
    pub overflow: u64,
    pub need_lease: u64,
}

/// This node's lease on one (attribute, window).
#[derive(Debug)]
struct HeldLease {
    id: LeaseId,
    /// Units granted in all, as last answered by the state.
    granted: u64,
    /// Units used here; at most `granted`.
    consumed: u64,
    /// Units the state acknowledged as consumed.
    acked: u64,
    /// Values admitted on units `acked..consumed`, in that order: the next report.
    unacked: VecDeque<String>,
}

#[derive(Debug, Default)]
struct NodeWindow {
    /// Values admitted in this window: here or reported by the cluster. At
    /// most the limit.
    known: HashSet<String>,
    lease: Option<HeldLease>,
    /// Units the window had left to grant at this node's last grant, as the
    /// state answered; `None` before one (or from a state that does not
    /// say). Caps requests at a fair share.
    free: Option<u64>,
    /// The state answered that no unit is left (or refused the window).
    exhausted: bool,
    /// A lease request is due.
    want_lease: bool,
    lease_in_flight: bool,
    /// The lease request in flight was made ahead of need (units left):
    /// running dry before it lands means leases are too small for the
    /// round trip at this rate.
    refill_ahead: bool,
    report_in_flight: bool,
}

/// One limited attribute on this node.
#[derive(Debug)]
struct NodeAttribute {
    /// Its current and previous window (at most 2).
    windows: BTreeMap<Window, NodeWindow>,
    /// Sizes its lease requests from its rate of new values, across windows.
    sizer: LeaseSizer,
}

/// One node's limiter. Windows come from the `now_unix_ms` passed in; it
/// never reads a clock. Commands it returns must be proposed through Raft
/// and their outcome handed back to the same `NodeLimiter`
/// ([`on_response`](Self::on_response) or [`on_failure`](Self::on_failure),
/// exactly one per command); a restarted node starts a new `NodeLimiter`.
///
/// ```
/// use ollystack_cluster::admission::{Admit, LimiterConfig, LimiterState, NodeLimiter};
/// use ollystack_cluster::NodeId;
///
/// let config = LimiterConfig::new(60_000, 8, [("user.id".to_owned(), 1000)]).unwrap();
/// let mut state = LimiterState::new(config.clone());
/// let mut node = NodeLimiter::new(NodeId(1), config.clone());
/// let now_unix_ms = 1_700_000_000_000;
///
/// // No lease yet: ask the cluster for one.
/// assert_eq!(node.admit("user.id", "alice", now_unix_ms), Admit::NeedLease);
/// for command in node.commands(now_unix_ms) {
///     let response = state.apply(&command);
///     node.on_response(&command, &response);
/// }
/// assert_eq!(node.admit("user.id", "alice", now_unix_ms), Admit::New);
/// assert_eq!(node.admit("user.id", "alice", now_unix_ms), Admit::Known);
///
/// // Reporting "alice" lets other nodes admit it without spending quota.
/// let mut other = NodeLimiter::new(NodeId(2), config.clone());
/// assert_eq!(other.admit("user.id", "bob", now_unix_ms), Admit::NeedLease);
/// for command in node.commands(now_unix_ms) {
///     let response = state.apply(&command);
///     node.on_response(&command, &response);
///     other.learn(&command);
/// }
/// assert_eq!(other.admit("user.id", "alice", now_unix_ms), Admit::Known);
/// assert_eq!(other.admit("service.name", "checkout", now_unix_ms), Admit::Unlimited);
/// ```
#[derive(Debug)]
pub struct NodeLimiter {
    node: NodeId,
    config: LimiterConfig,
    /// Limited attribute → its windows and lease sizing.
    attributes: BTreeMap<String, NodeAttribute>,
    /// Nodes sharing the quota (the ring's members), for the fair share of
    /// a lease request; at least 1.
    members: u64,
    counters: AdmitCounters,
}

impl NodeLimiter {
    pub fn new(node: NodeId, config: LimiterConfig) -> Self {
        let attributes = config
            .limits()
            .map(|(attribute, _)| {
                let state = NodeAttribute { windows: BTreeMap::new(), sizer: LeaseSizer::new(config.lease_units()) };
                (attribute.to_owned(), state)
            })
            .collect();
        Self { node, config, attributes, members: 1, counters: AdmitCounters::default() }
    }

    /// How many nodes share the quota (the ring's members); lease requests
    /// ask for at most a fair share of what is left among them. 1 until set.
    pub fn set_members(&mut self, members: u64) {
        self.members = members.max(1);
    }

    /// Units of this node's lease on (`attribute`, `window`) not used yet:
    /// counted by the cluster, unavailable to other nodes.
    pub fn held_units(&self, attribute: &str, window: Window) -> u64 {
        let lease = self.attributes.get(attribute).and_then(|a| a.windows.get(&window)).and_then(|w| w.lease.as_ref());
        lease.map_or(0, |l| l.granted - l.consumed)
    }

    pub fn counters(&self) -> AdmitCounters {
        self.counters
    }

    /// Decides whether `value` of `attribute` may pass at `now_unix_ms`.
    pub fn admit(&mut self, attribute: &str, value: &str, now_unix_ms: u64) -> Admit {
        let (Some(limit), Some(NodeAttribute { windows, sizer })) = (self.config.limit(attribute), self.attributes.get_mut(attribute))
        else {
            return Admit::Unlimited;
        };
        let decision = match window_for_admit(windows, self.config.window_at(now_unix_ms)) {
            // Older than the previous window: its state is gone.
            None => Admit::Overflow,
            Some(state) if state.known.contains(value) => Admit::Known,
            Some(state) => match &mut state.lease {
                Some(lease) if lease.consumed < lease.granted => {
                    lease.consumed += 1;
                    lease.unacked.push_back(value.to_owned());
                    sizer.record_new(now_unix_ms);
                    // Refill at half a lease left: half of what the next
                    // request would ask for, so it lands before the lease
                    // runs dry.
                    let low_water = request_units(sizer.units(now_unix_ms), state.free, limit, self.members) / 2;
                    state.want_lease |= lease.granted - lease.consumed <= low_water && !state.exhausted;
                    state.known.insert(value.to_owned());
                    debug_assert!(state.known.len() as u64 <= limit);
                    Admit::New
                }
                _ if state.exhausted => Admit::Overflow,
                _ => {
                    state.want_lease = true;
                    if state.lease_in_flight && state.refill_ahead {
                        sizer.record_starved();
                    }
                    Admit::NeedLease
                }
            },
        };
        match decision {
            Admit::Known => self.counters.known += 1,
            Admit::New => self.counters.new += 1,
            Admit::Overflow => self.counters.overflow += 1,
            Admit::NeedLease => self.counters.need_lease += 1,
            Admit::Unlimited => {}
        }
        decision
    }

    /// The commands due at `now_unix_ms`: a lease request where units run
    /// low, sized by [`LeaseSizer`] and capped by [`fair_share_units`], and
    /// a report of unacknowledged values per lease. At most one of each in
    /// flight per (attribute, window).
    pub fn commands(&mut self, now_unix_ms: u64) -> Vec<Command> {
        let mut commands = Vec::new();
        for (attribute, NodeAttribute { windows, sizer }) in &mut self.attributes {
            let limit = self.config.limit(attribute).unwrap_or(0);
            for (&window, state) in windows.iter_mut() {
                if state.want_lease && !state.lease_in_flight && !state.exhausted {
                    state.lease_in_flight = true;
                    state.refill_ahead = state.lease.as_ref().is_some_and(|l| l.consumed < l.granted);
                    let lease = state.lease.as_ref().map(|l| l.id);
                    let want = request_units(sizer.request(now_unix_ms), state.free, limit, self.members);
                    commands.push(Command::Lease { node: self.node, attribute: attribute.clone(), window, lease, want });
                }
                if let Some(lease) = state.lease.as_ref().filter(|l| !l.unacked.is_empty() && !state.report_in_flight) {
                    state.report_in_flight = true;
                    let values = lease.unacked.iter().cloned().collect();
                    let (node, attribute) = (self.node, attribute.clone());
                    commands.push(Command::Report { node, attribute, window, lease: lease.id, consumed: lease.consumed, values });
                }
            }
        }
        commands
    }

    /// The outcome of a command from [`commands`](Self::commands).
    pub fn on_response(&mut self, command: &Command, response: &Response) {
        match command {
            Command::Lease { attribute, window, .. } => {
                let Some(state) = self.window_mut(attribute, *window) else { return };
                state.lease_in_flight = false;
                if let Response::Leased { free: Some(free), .. } = *response {
                    state.free = Some(free);
                }
                match (response, &mut state.lease) {
                    (&Response::Leased { lease, granted, .. }, None) => {
                        state.lease = Some(HeldLease { id: lease, granted, consumed: 0, acked: 0, unacked: VecDeque::new() });
                        state.want_lease = false;
                    }
                    (&Response::Leased { lease, granted, .. }, Some(held)) if held.id == lease => {
                        held.granted = held.granted.max(granted);
                        state.want_lease = false;
                    }
                    // A retried request made a second lease: its units stay
                    // unused (fewer admissions, never more).
                    (Response::Leased { .. }, Some(_)) => {}
                    (Response::Exhausted | Response::Refused(_), _) => {
                        state.exhausted = true;
                        state.want_lease = false;
                    }
                    (Response::Reported { .. } | Response::Expired { .. }, _) => {}
                }
            }
            Command::Report { attribute, window, lease, .. } => {
                let Some(state) = self.window_mut(attribute, *window) else { return };
                state.report_in_flight = false;
                let Some(held) = state.lease.as_mut().filter(|held| held.id == *lease) else { return };
                match *response {
                    Response::Reported { consumed, .. } => {
                        let newly = (consumed.saturating_sub(held.acked) as usize).min(held.unacked.len());
                        held.unacked.drain(..newly);
                        held.acked += newly as u64;
                    }
                    // The window closed (or a bug): these values cannot be
                    // recorded any more; they stay known here.
                    Response::Refused(_) => {
                        held.unacked.clear();
                        held.acked = held.consumed;
                    }
                    _ => {}
                }
            }
            Command::Expire { .. } => {}
        }
    }

    /// A command from [`commands`](Self::commands) whose outcome is unknown
    /// (timeout, leader change): it will be proposed again.
    pub fn on_failure(&mut self, command: &Command) {
        match command {
            Command::Lease { attribute, window, .. } => {
                if let Some(state) = self.window_mut(attribute, *window) {
                    state.lease_in_flight = false;
                }
            }
            Command::Report { attribute, window, .. } => {
                if let Some(state) = self.window_mut(attribute, *window) {
                    state.report_in_flight = false;
                }
            }
            Command::Expire { .. } => {}
        }
    }

    /// A command this node's replica of the state applied: values other
    /// nodes admitted become known here, for windows this node tracks.
    pub fn learn(&mut self, applied: &Command) {
        let Command::Report { attribute, window, values, .. } = applied else { return };
        let Some(limit) = self.config.limit(attribute) else { return };
        let Some(state) = self.window_mut(attribute, *window) else { return };
        for value in values {
            if state.known.len() as u64 >= limit {
                break;
            }
            if !state.known.contains(value) {
                state.known.insert(value.clone());
            }
        }
    }

    fn window_mut(&mut self, attribute: &str, window: Window) -> Option<&mut NodeWindow> {
        self.attributes.get_mut(attribute)?.windows.get_mut(&window)
    }
}

/// The units to ask for: what the sizer wants, within the fair share of
/// what the window had left when last heard (the whole limit before that).
fn request_units(sized: u64, free: Option<u64>, limit: u64, members: u64) -> u64 {
    sized.min(fair_share_units(free.unwrap_or(limit), members))
}

/// The state of `window`, created if it is the newest or the one before;
/// windows older than the newest but one are dropped (their unreported units
/// stay counted by the cluster until the window expires).
fn window_for_admit(windows: &mut BTreeMap<Window, NodeWindow>, window: Window) -> Option<&mut NodeWindow> {
    let newest = windows.keys().next_back().copied().map_or(window, |newest| newest.max(window));
    let oldest_kept = Window(newest.0.saturating_sub(1));
    if window < oldest_kept {
        return None;
    }
    windows.retain(|&w, _| w >= oldest_kept);
    Some(windows.entry(window).or_default())
}

#[cfg(test)]
#[path = "node_test.rs"]
mod node_test;
