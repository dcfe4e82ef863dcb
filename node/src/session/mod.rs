//! Live correlation sessions: one ractor actor per live correlation ID,
//! spawned under a per-node supervisor and found through the node's
//! registry (no process-global actor names, so several nodes can share a
//! process).
//!
//! * [`state`], [`summary`], [`finish`], [`finished`], [`segment`]: the
//!   pure parts, from `ollystack-core` (a segment's compact data, its
//!   running summary, when it finishes, what storage receives).
//! * [`actor`]: the session actor.
//! * [`supervisor`]: the parent of every session actor; rebuilds a failed
//!   one from the WAL entries its [`holding`] lists ([`rebuild`], pure).
//! * [`registry`]: live and closing actors by session key; delivery with
//!   alias resolution; retiring and merging.
//! * [`remote`]: sessions owned by other nodes (the cluster's side).

pub use ollystack_core::session::{finish, finished, segment, state, summary};

pub mod actor;
pub mod holding;
pub mod rebuild;
pub mod registry;
pub mod remote;
pub mod supervisor;

pub use crate::budget::{self, MemoryBudget};
pub use finish::{FinishReason, FinishRules};
pub use remote::{RemoteOwners, ShipError};
pub use state::{LogInput, SessionInput, SessionState, SpanInput};
pub use summary::Summary;
