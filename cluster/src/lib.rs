//! Clustering for OllyStack: the pure decision logic that the cluster's I/O
//! (Raft, routing, handoff) will carry out.
//!
//! * [`ring`]: the consistent-hash ring that maps a correlation session to
//!   its owner node, and the diff of two rings into the hash ranges that move.
//! * [`admission`]: cluster-wide cardinality limits, as two state machines:
//!   [`admission::LimiterState`], the replicated state a Raft state machine
//!   holds, and [`admission::NodeLimiter`], each node's leased quota on the
//!   ingest hot path.
//! * [`raft`]: the Raft store (openraft log store and state machine over
//!   sled) that replicates the ring and the limiter; it does I/O.
//!
//! Apart from [`raft`], nothing here does I/O, reads a clock or spawns a
//! task.

pub mod admission;
mod node_id;
pub mod raft;
pub mod ring;

pub use node_id::NodeId;
