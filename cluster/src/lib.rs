//! Clustering for OllyStack: placement, admission and failure-detection
//! decisions, the Raft store that replicates them, and the Raft transport.
//!
//! * [`ring`]: the consistent-hash ring that maps a correlation session to
//!   its owner node, and the diff of two rings into the hash ranges that move.
//! * [`admission`]: cluster-wide cardinality limits, as two state machines:
//!   [`admission::LimiterState`], the replicated state a Raft state machine
//!   holds, and [`admission::NodeLimiter`], each node's leased quota on the
//!   ingest hot path.
//! * [`raft`]: the Raft store (openraft log store and state machine over
//!   sled) that replicates the ring and the limiter; it does I/O.
//! * [`health`]: failure detection and the ring the leader should propose.
//! * [`net`]: the Raft transport over tonic (client factory and server).
//!
//! `ring`, `admission` and `health` do no I/O, read no clock and spawn no
//! task; `raft` and `net` carry their decisions out.

pub mod admission;
pub mod blocking;
pub mod health;
pub mod net;
mod node_id;
pub mod raft;
pub mod ring;

pub use node_id::NodeId;
