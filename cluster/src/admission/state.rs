//! The replicated half of the limiter: what the Raft state machine holds and
//! how each committed command changes it.

use std::collections::{BTreeMap, BTreeSet};

use super::config::{LimiterConfig, Window};
use crate::NodeId;

/// At most this many open windows per attribute: the current and previous
/// window, plus slack for nodes whose clocks run ahead. A lease request that
/// would open one more is refused (its node overflows).
pub const MAX_OPEN_WINDOWS: usize = 4;

/// A lease, numbered by the state machine in apply order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct LeaseId(pub u64);

/// A change to the limiter, proposed through Raft and applied in log order.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// `node` asks for `want` more units of (`attribute`, `window`), on its
    /// lease `lease` or, when `None`, on a new lease.
    Lease { node: NodeId, attribute: String, window: Window, lease: Option<LeaseId>, want: u64 },
    /// `node` has consumed `consumed` units of `lease` in all (cumulative,
    /// so a repeated report is harmless); `values` are the values admitted on
    /// it that were not acknowledged yet.
    Report { node: NodeId, attribute: String, window: Window, lease: LeaseId, consumed: u64, values: Vec<String> },
    /// Drop every window before `before_window` and close it for good.
    Expire { before_window: Window },
}

/// What applying a [`Command`] did.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub enum Response {
    /// The lease now grants `granted` units in all; `free` units are left
    /// to grant in the window. `free` is advice for sizing the next
    /// request (see `lease_size`); `None` from a version that did not
    /// send it.
    Leased {
        lease: LeaseId,
        granted: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        free: Option<u64>,
    },
    /// No unit is left in this window: admitted values and outstanding
    /// leases reach the limit. Stays so until the window expires.
    Exhausted,
    /// The state now counts `consumed` units of `lease` as consumed.
    Reported {
        lease: LeaseId,
        consumed: u64,
    },
    Expired {
        windows_removed: usize,
    },
    Refused(Refusal),
}

/// Why a command changed nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    UnknownAttribute,
    /// The window expired (or never can be leased again).
    WindowClosed,
    /// The attribute already has [`MAX_OPEN_WINDOWS`] open windows.
    TooManyWindows,
    /// `want` was 0.
    EmptyRequest,
    /// No such lease in this (attribute, window).
    UnknownLease,
    /// The lease belongs to another node.
    NotLeaseHolder,
    /// The report claims more units than the lease grants, or more new
    /// values than the units it newly reports consumed: a bug in the node.
    OverLimit,
}

/// Counts of one (attribute, window), for metrics and `members` output.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Usage {
    pub limit: u64,
    pub admitted: u64,
    /// Units granted and not reported as consumed.
    pub outstanding: u64,
}

/// A broken invariant of [`LimiterState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{attribute:?} in {window:?}: {what}")]
pub struct Violation {
    pub attribute: String,
    pub window: Window,
    pub what: &'static str,
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseState {
    node: NodeId,
    /// Units granted in all; at least 1.
    granted: u64,
    /// Units the holder reported as consumed; at most `granted`.
    consumed: u64,
}

#[derive(Clone, PartialEq, Eq, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowState {
    admitted: BTreeSet<String>,
    /// A list of pairs in JSON: its keys are not strings.
    #[serde(with = "super::map_pairs")]
    leases: BTreeMap<LeaseId, LeaseState>,
}

impl WindowState {
    fn outstanding(&self) -> u64 {
        self.leases.values().map(|l| l.granted - l.consumed).sum()
    }

    /// Units still free to grant.
    fn free(&self, limit: u64) -> u64 {
        limit.saturating_sub(self.admitted.len() as u64 + self.outstanding())
    }
}

/// The limiter's replicated state. Deterministic: the same commands in the
/// same order give the same state on every replica. Serializable for Raft
/// snapshots; deserializing checks [`LimiterState::check_invariants`], so a
/// corrupt snapshot is refused instead of breaking the limit.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "LimiterStateRecord")]
pub struct LimiterState {
    config: LimiterConfig,
    /// Windows before this one are closed.
    open_from: Window,
    /// The ID of the next lease created.
    next_lease: u64,
    /// A list of pairs in JSON: its keys are not strings.
    #[serde(with = "super::map_pairs")]
    windows: BTreeMap<(String, Window), WindowState>,
}

/// The unchecked serialized form of [`LimiterState`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LimiterStateRecord {
    config: LimiterConfig,
    open_from: Window,
    next_lease: u64,
    #[serde(with = "super::map_pairs")]
    windows: BTreeMap<(String, Window), WindowState>,
}

impl TryFrom<LimiterStateRecord> for LimiterState {
    type Error = Violation;

    fn try_from(record: LimiterStateRecord) -> Result<Self, Violation> {
        let state = Self { config: record.config, open_from: record.open_from, next_lease: record.next_lease, windows: record.windows };
        state.check_invariants()?;
        Ok(state)
    }
}

impl LimiterState {
    pub fn new(config: LimiterConfig) -> Self {
        Self { config, open_from: Window(0), next_lease: 0, windows: BTreeMap::new() }
    }

    pub fn config(&self) -> &LimiterConfig {
        &self.config
    }

    /// Applies one committed command.
    pub fn apply(&mut self, command: &Command) -> Response {
        let response = match command {
            Command::Lease { node, attribute, window, lease, want } => self.lease(*node, attribute, *window, *lease, *want),
            Command::Report { node, attribute, window, lease, consumed, values } => {
                self.report(*node, attribute, *window, *lease, *consumed, values)
            }
            Command::Expire { before_window } => self.expire(*before_window),
        };
        debug_assert_eq!(self.check_invariants(), Ok(()));
        response
    }

    fn lease(&mut self, node: NodeId, attribute: &str, window: Window, lease: Option<LeaseId>, want: u64) -> Response {
        let Some(limit) = self.config.limit(attribute) else { return Response::Refused(Refusal::UnknownAttribute) };
        if want == 0 {
            return Response::Refused(Refusal::EmptyRequest);
        }
        if window < self.open_from {
            return Response::Refused(Refusal::WindowClosed);
        }
        let key = (attribute.to_owned(), window);
        if !self.windows.contains_key(&key) && self.open_windows(attribute) >= MAX_OPEN_WINDOWS {
            return Response::Refused(Refusal::TooManyWindows);
        }
        let state = self.windows.entry(key).or_default();
        if let Some(id) = lease {
            match state.leases.get(&id) {
                None => return Response::Refused(Refusal::UnknownLease),
                Some(held) if held.node != node => return Response::Refused(Refusal::NotLeaseHolder),
                Some(_) => {}
            }
        }
        let grant = want.min(state.free(limit));
        if grant == 0 {
            return Response::Exhausted;
        }
        let id = lease.unwrap_or_else(|| {
            self.next_lease += 1;
            LeaseId(self.next_lease - 1)
        });
        let held = state.leases.entry(id).or_insert(LeaseState { node, granted: 0, consumed: 0 });
        held.granted += grant;
        let granted = held.granted;
        Response::Leased { lease: id, granted, free: Some(state.free(limit)) }
    }

    fn report(&mut self, node: NodeId, attribute: &str, window: Window, lease: LeaseId, consumed: u64, values: &[String]) -> Response {
        if self.config.limit(attribute).is_none() {
            return Response::Refused(Refusal::UnknownAttribute);
        }
        if window < self.open_from {
            return Response::Refused(Refusal::WindowClosed);
        }
        let Some(state) = self.windows.get_mut(&(attribute.to_owned(), window)) else { return Response::Refused(Refusal::UnknownLease) };
        let (granted, consumed_before) = match state.leases.get(&lease) {
            None => return Response::Refused(Refusal::UnknownLease),
            Some(held) if held.node != node => return Response::Refused(Refusal::NotLeaseHolder),
            Some(held) => (held.granted, held.consumed),
        };
        if consumed > granted {
            return Response::Refused(Refusal::OverLimit);
        }
        let consumed_after = consumed.max(consumed_before);
        let fresh: BTreeSet<&str> = values.iter().map(String::as_str).filter(|v| !state.admitted.contains(*v)).collect();
        // A report carries the values of units `acked..consumed` (with
        // `acked` at most what the state counts), and values of units the
        // state already counts are admitted, so an honest report adds at
        // most as many values as it newly reports consumed: admitted plus
        // outstanding never grows. Refuse one that would.
        if fresh.len() as u64 > consumed_after - consumed_before {
            return Response::Refused(Refusal::OverLimit);
        }
        state.admitted.extend(fresh.into_iter().map(str::to_owned));
        if let Some(held) = state.leases.get_mut(&lease) {
            held.consumed = consumed_after;
        }
        Response::Reported { lease, consumed: consumed_after }
    }

    fn expire(&mut self, before_window: Window) -> Response {
        self.open_from = self.open_from.max(before_window);
        let open_from = self.open_from;
        let count = self.windows.len();
        self.windows.retain(|(_, window), _| *window >= open_from);
        Response::Expired { windows_removed: count - self.windows.len() }
    }

    fn open_windows(&self, attribute: &str) -> usize {
        self.windows.keys().filter(|(a, _)| a == attribute).count()
    }

    /// The counts of (`attribute`, `window`), if it has state.
    pub fn usage(&self, attribute: &str, window: Window) -> Option<Usage> {
        let state = self.windows.get(&(attribute.to_owned(), window))?;
        let limit = self.config.limit(attribute)?;
        Some(Usage { limit, admitted: state.admitted.len() as u64, outstanding: state.outstanding() })
    }

    /// Whether `value` is admitted in (`attribute`, `window`).
    pub fn is_admitted(&self, attribute: &str, window: Window, value: &str) -> bool {
        self.windows.get(&(attribute.to_owned(), window)).is_some_and(|s| s.admitted.contains(value))
    }

    /// The invariants that make the limit hold.
    pub fn check_invariants(&self) -> Result<(), Violation> {
        let mut open: BTreeMap<&str, usize> = BTreeMap::new();
        for ((attribute, window), state) in &self.windows {
            let violation = |what| Err(Violation { attribute: attribute.clone(), window: *window, what });
            let Some(limit) = self.config.limit(attribute) else { return violation("attribute is not limited") };
            if *window < self.open_from {
                return violation("window is closed but kept");
            }
            if state.leases.values().any(|l| l.granted == 0 || l.consumed > l.granted) {
                return violation("a lease grants nothing or is consumed past its grant");
            }
            if state.leases.keys().any(|id| id.0 >= self.next_lease) {
                return violation("a lease ID was never issued");
            }
            if state.admitted.len() as u64 + state.outstanding() > limit {
                return violation("admitted values and outstanding units exceed the limit");
            }
            *open.entry(attribute).or_default() += 1;
        }
        match open.into_iter().find(|&(_, count)| count > MAX_OPEN_WINDOWS) {
            Some((attribute, _)) => {
                Err(Violation { attribute: attribute.to_owned(), window: self.open_from, what: "too many open windows" })
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "state_test.rs"]
mod state_test;
