//! This node's part in the cluster: its Raft instance (membership, ring
//! epochs, cardinality limits), the node-to-node gRPC service, routing of
//! ingest and queries to the ring owner.
//!
//! | file | what |
//! |---|---|
//! | `this_node.rs` | [`Cluster`]: this node's view of the cluster: the Raft handle, the current ring, peer channels |
//! | `error.rs` | [`ClusterError`], and the gRPC status each becomes |
//! | `start.rs` | opens the Raft store, starts Raft, bootstraps or joins |
//! | `limiter.rs` | [`ClusterLimiter`]: cluster-wide cardinality limits on ingest |
//! | `membership.rs` | join, leave, `members`, the leader's ring upkeep and probes |
//! | `service.rs` | the `ollystack.v1.Cluster` gRPC service |
//! | `route.rs` | ingest: [`IngestRouter`] splits a batch by trace home, [`Shipper`] forwards the parts and waits until durable |
//! | `encoded.rs` | an encoded OTLP request scanned for its traces and cut into parts by byte ranges (pure) |
//! | `routed_queries.rs` | queries: [`ClusterBackend`] asks the owner, or every node |
//! | `convert.rs` | session data ⇄ protobuf |
//! | `binding_sync.rs` | trace bindings follow their trace's home after ring changes |
//! | `handover.rs` | a leaving node hands over its archived segments and bindings |
//!
//! Decisions (placement, failure detection, the ring to propose) are pure
//! functions in the `ollystack-cluster` crate; this module carries them out.

mod binding_sync;
mod convert;
mod encoded;
mod error;
mod handover;
mod limiter;
mod membership;
mod recent;
mod route;
mod routed_queries;
mod service;
mod start;
mod this_node;

pub use binding_sync::{follow_ring, send_bindings_home};
pub use error::ClusterError;
pub use handover::{hand_over_archive, Unanswered};
pub use limiter::{ClusterLimiter, LimiterCluster};
pub use membership::{join_via_seed, leave_via, members_via, DrainedCheck, HandOver, MembersTable, Membership};
pub use route::{IngestRouter, Shipper};
pub use routed_queries::ClusterBackend;
pub use service::ClusterService;
pub use start::{enter, start_raft, JoinMode, StartedRaft};
pub use this_node::Cluster;
