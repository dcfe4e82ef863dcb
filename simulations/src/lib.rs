//! Deterministic simulation of whole OllyStack clusters.
//!
//! Real `ollystack-node` code — Raft, ring, routing, session actors, WAL and
//! embedded storage, the OTLP and API servers — runs on turmoil's simulated
//! network and paused clock, every node a simulated host on one thread. A
//! seed decides everything: parameters and fault classes ([`params`]), the
//! fault schedule ([`plan`]), the workload ([`workload`]), turmoil's
//! network randomness, the nodes' ID randomness and Raft's election
//! timeouts. [`run::run`] executes one seed and reports violations of the
//! invariants checked by [`oracle`] and [`observe`].

pub mod disk;
pub mod links;
pub mod logs;
pub mod net;
pub mod observe;
pub mod oracle;
pub mod os;
pub mod params;
pub mod plan;
pub mod run;
pub mod sink;
pub mod summary;
pub mod workload;

pub use params::Params;
pub use run::{run, Outcome};
