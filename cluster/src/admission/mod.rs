//! Cluster-wide cardinality limits: per configured attribute, at most `N`
//! distinct values per time window across the whole cluster. A value past
//! the limit is replaced by [`OVERFLOW_VALUE`] (and counted).
//!
//! # Design: leased quota
//!
//! Two pure state machines share one [`LimiterConfig`]:
//!
//! * [`LimiterState`] is what the Raft state machine holds, per (attribute,
//!   window): the set of admitted values (reported by nodes) and the quota
//!   leases granted to nodes, each with the units granted and the units the
//!   holder has reported as consumed. Commands are applied in log order by
//!   [`LimiterState::apply`]. It never grants a unit that would let
//!   `admitted + Σ (granted − consumed)` exceed `N`.
//! * [`NodeLimiter`] runs on each node's ingest path. A value it knows (its
//!   own admissions and values the cluster reported) is admitted at once; a
//!   new value consumes one unit of the node's lease for that window; with
//!   no unit left it asks for more ([`Admit::NeedLease`]); once the cluster
//!   says the window is exhausted, new values overflow. It hands out the
//!   commands to propose ([`NodeLimiter::commands`]): lease requests
//!   (proactively, before the lease runs dry) and reports of newly admitted
//!   values, so other nodes learn them ([`NodeLimiter::learn`]) and need no
//!   unit for them.
//!
//! A value already admitted never waits for Raft; a new value waits only
//! when its node has no unit left (the caller holds the signal or writes the
//! overflow marker meanwhile).
//!
//! # Lease size
//!
//! A node sizes each lease request from its own recent rate of new values
//! ([`LeaseSizer`]: about [`LEASE_REFILL_MS`] worth, twice the last request
//! when it ran dry, down to `lease_units` when idle, at most
//! [`MAX_LEASE_UNITS`]) and asks for at most a fair share of what the
//! window has left ([`fair_share_units`]: `free / (2 · members)`). A busy
//! node makes a few lease requests per second whatever its rate; an idle
//! node holds a unit or two, so a small limit is not stranded on it. The
//! sizing only shapes requests: the state grants `min(request, free)`, so
//! the bound below does not depend on it (`lease_size`'s docs argue the
//! choices).
//!
//! # Why the bound holds
//!
//! Every distinct value admitted anywhere is either in the state's admitted
//! set or was admitted against a lease unit not yet reported as consumed.
//! Reports carry the lease's cumulative consumed count and every value not
//! yet acknowledged, so a retried, duplicated or reordered report changes
//! nothing twice: the tracked total only falls when values are reported.
//! [`LimiterState::check_invariants`] states this and is asserted after each
//! apply in debug builds and in the tests.
//!
//! * **Leader changes**: the state is replicated by Raft, so a new leader
//!   applies the same log to the same state. A command whose outcome is
//!   unknown (leader lost mid-proposal) is reported to the node with
//!   [`NodeLimiter::on_failure`] and proposed again; applying a lease request
//!   twice only strands units (fewer admissions, never more), and reports are
//!   idempotent.
//! * **Partitions**: a partitioned node can admit new values only within the
//!   lease it already holds, which the state already counts; the rest of the
//!   cluster can lease only what is left. The bound holds on both sides.
//! * **Restarts**: a restarted node has lost its leases and unreported
//!   values; their units stay counted until the window expires (again fewer
//!   admissions, never more), and the node asks for a new lease.
//! * **Window expiry**: [`Command::Expire`] drops old windows and closes them
//!   for good, so a late lease request can never reopen a window with a fresh
//!   quota; a node whose clock lags into a closed window overflows.
//!
//! # Bounds
//!
//! Per (attribute, window), the state holds at most `N` values and `N`
//! leases (each grants at least one unit), for at most
//! [`MAX_OPEN_WINDOWS`] windows per attribute. A node keeps at most `N`
//! known values and one lease per (attribute, window), for the current and
//! the previous window only.
//!
//! # Serialization
//!
//! The commands, responses, config and [`LimiterState`] are serde types, for
//! the Raft log and snapshots. Maps keyed by tuples or newtypes serialize as
//! lists of pairs (JSON keys are strings); deserializing a config or a state
//! validates it.

mod config;
mod lease_size;
mod map_pairs;
mod node;
mod state;

pub use config::{ConfigError, LimiterConfig, Window, MAX_ATTRIBUTES, MAX_VALUES_PER_WINDOW};
pub use lease_size::{fair_share_units, LeaseSizer, LEASE_REFILL_MS, MAX_LEASE_UNITS};
pub use node::{Admit, AdmitCounters, NodeLimiter};
pub use state::{Command, LeaseId, LimiterState, Refusal, Response, Usage, Violation, MAX_OPEN_WINDOWS};

/// The value written in place of an attribute value past its limit. Fixed,
/// so dashboards and queries can match it.
pub const OVERFLOW_VALUE: &str = "__ollystack_overflow__";

#[cfg(test)]
mod sim_test;
#[cfg(test)]
mod strand_test;
