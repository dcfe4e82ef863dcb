//! The per-node half of the limiter: admission on the ingest hot path from
//! leased quota and known values, and the commands that keep both fed.

use std::collections::{BTreeMap, HashSet, VecDeque};

use super::config::{LimiterConfig, Window};
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
    /// The state answered that no unit is left (or refused the window).
    exhausted: bool,
    /// A lease request is due.
    want_lease: bool,
    lease_in_flight: bool,
    report_in_flight: bool,
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
/// for command in node.commands() {
///     let response = state.apply(&command);
///     node.on_response(&command, &response);
/// }
/// assert_eq!(node.admit("user.id", "alice", now_unix_ms), Admit::New);
/// assert_eq!(node.admit("user.id", "alice", now_unix_ms), Admit::Known);
///
/// // Reporting "alice" lets other nodes admit it without spending quota.
/// let mut other = NodeLimiter::new(NodeId(2), config.clone());
/// assert_eq!(other.admit("user.id", "bob", now_unix_ms), Admit::NeedLease);
/// for command in node.commands() {
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
    /// Attribute → its current and previous window (at most 2).
    windows: BTreeMap<String, BTreeMap<Window, NodeWindow>>,
    counters: AdmitCounters,
}

impl NodeLimiter {
    pub fn new(node: NodeId, config: LimiterConfig) -> Self {
        let windows = config.limits().map(|(attribute, _)| (attribute.to_owned(), BTreeMap::new())).collect();
        Self { node, config, windows, counters: AdmitCounters::default() }
    }

    pub fn counters(&self) -> AdmitCounters {
        self.counters
    }

    /// Decides whether `value` of `attribute` may pass at `now_unix_ms`.
    pub fn admit(&mut self, attribute: &str, value: &str, now_unix_ms: u64) -> Admit {
        let (Some(limit), Some(windows)) = (self.config.limit(attribute), self.windows.get_mut(attribute)) else {
            return Admit::Unlimited;
        };
        let low_water = self.config.lease_units() / 2;
        let decision = match window_for_admit(windows, self.config.window_at(now_unix_ms)) {
            // Older than the previous window: its state is gone.
            None => Admit::Overflow,
            Some(state) if state.known.contains(value) => Admit::Known,
            Some(state) => match &mut state.lease {
                Some(lease) if lease.consumed < lease.granted => {
                    lease.consumed += 1;
                    lease.unacked.push_back(value.to_owned());
                    state.want_lease |= lease.granted - lease.consumed <= low_water && !state.exhausted;
                    state.known.insert(value.to_owned());
                    debug_assert!(state.known.len() as u64 <= limit);
                    Admit::New
                }
                _ if state.exhausted => Admit::Overflow,
                _ => {
                    state.want_lease = true;
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

    /// The commands due now: a lease request where units run low, and a
    /// report of unacknowledged values per lease. At most one of each in
    /// flight per (attribute, window).
    pub fn commands(&mut self) -> Vec<Command> {
        let mut commands = Vec::new();
        for (attribute, windows) in &mut self.windows {
            for (&window, state) in windows.iter_mut() {
                if state.want_lease && !state.lease_in_flight && !state.exhausted {
                    state.lease_in_flight = true;
                    let lease = state.lease.as_ref().map(|l| l.id);
                    let want = self.config.lease_units();
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
                match (response, &mut state.lease) {
                    (&Response::Leased { lease, granted }, None) => {
                        state.lease = Some(HeldLease { id: lease, granted, consumed: 0, acked: 0, unacked: VecDeque::new() });
                        state.want_lease = false;
                    }
                    (&Response::Leased { lease, granted }, Some(held)) if held.id == lease => {
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
        self.windows.get_mut(attribute)?.get_mut(&window)
    }
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
