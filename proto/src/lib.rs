//! OllyStack's protobuf messages and the OTLP types the rest of the workspace
//! uses.
//!
//! * [`store`]: records a node writes to disk (WAL entries, archived session
//!   segments), from `proto/ollystack/v1/store.proto`.
//! * [`cluster`]: node-to-node RPC (Raft transport, join/leave/members,
//!   forwarding, routed queries), from `proto/ollystack/v1/cluster.proto`.
//!
//! Both are compiled by protox at build time (no system `protoc`).
//! * [`otlp`]: the OpenTelemetry protocol types and tonic services, re-exported
//!   from `opentelemetry-proto` so every crate agrees on one version.

/// Everything compiled from `proto/ollystack/v1/*.proto` (one protobuf
/// package). Use it through [`store`] or [`cluster`], named by role.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/ollystack.v1.rs"));
}

/// Records a node writes to disk (`store.proto`).
pub use v1 as store;

/// Node-to-node RPC (`cluster.proto`): the Raft transport, membership,
/// forwarding and routed queries, with their tonic clients and servers.
pub use v1 as cluster;

pub mod wire;

/// OpenTelemetry protocol types (OTLP/gRPC services and messages).
pub use opentelemetry_proto::tonic as otlp;
