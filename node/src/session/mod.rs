//! Live correlation sessions: one ractor actor per live correlation ID,
//! spawned under a per-node supervisor and found through the node's
//! registry (no process-global actor names, so several nodes can share a
//! process).
//!
//! * [`state`], [`summary`], [`finish`], [`finished`], [`segment`]: the
//!   pure parts, from `ollystack-core` (a segment's compact data, its
//!   running summary, when it finishes, what storage receives).
//! * [`env`]: what session actors share ([`SessionEnv`]).
//! * [`msg`]: what a session actor is told ([`SessionMsg`]).
//! * [`actor`]: the session actor.
//! * [`supervisor`]: the parent of every session actor; rebuilds a failed
//!   one from the WAL entries its [`holding`] lists ([`rebuild`], pure).
//! * [`registry`]: live and closing actors by session key; delivery with
//!   alias resolution; retiring and merging.
//! * [`remote`]: sessions owned by other nodes (the cluster's side).
//! * [`queries`]: this node's answers to queries, from its live actors
//!   and its store.
//!
//! Files depend one way: `actor` → `registry` → `holding` → `msg`
//! (`env` names the registry; the registry starts actors through
//! [`registry::StartSession`], which `actor` implements for the env).

pub use ollystack_core::session::{finish, finished, segment, state, summary};

pub mod actor;
pub mod env;
pub mod holding;
pub mod msg;
pub mod queries;
pub mod rebuild;
pub mod registry;
pub mod remote;
pub mod supervisor;

pub use crate::budget::{self, MemoryBudget};
pub use env::{SessionEnv, SessionLimits, SessionStorage};
pub use finish::{FinishReason, FinishRules};
pub use msg::SessionMsg;
pub use queries::NodeQueries;
pub use remote::{Remote, RemoteOwners, ShipError};
pub use state::{LogInput, SessionInput, SessionState, SpanInput};
pub use summary::Summary;
