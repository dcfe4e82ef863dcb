//! Live correlation sessions: one ractor actor per live correlation ID,
//! spawned under a per-node supervisor and found through the node's
//! registry (no process-global actor names, so several nodes can share a
//! process).
//!
//! * [`state`]: the compact, de-duplicating data of one segment (pure).
//! * [`summary`]: the running summary (pure).
//! * [`finish`]: when a segment finishes (pure).
//! * [`budget`]: the global memory budget.
//! * [`actor`]: the session actor.
//! * [`supervisor`]: the parent of every session actor; rebuilds a failed
//!   one from the WAL entries its [`holding`] lists ([`rebuild`], pure).
//! * [`registry`]: live and closing actors by session key; delivery with
//!   alias resolution; retiring and merging.
//! * [`remote`]: sessions owned by other nodes (the cluster's side).

pub mod actor;
pub mod budget;
pub mod finish;
pub mod holding;
pub mod rebuild;
pub mod registry;
pub mod remote;
pub mod state;
pub mod summary;
pub mod supervisor;

pub use budget::MemoryBudget;
pub use finish::{FinishReason, FinishRules};
pub use remote::{RemoteOwners, ShipError};
pub use state::{LogInput, SessionInput, SessionState, SpanInput};
pub use summary::Summary;
