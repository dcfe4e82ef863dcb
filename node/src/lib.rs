//! An OllyStack node.
//!
//! Data flows one way through these modules:
//!
//! ```text
//! receive (OTLP gRPC :4317, HTTP :4318)
//!   └─▶ ingest (split by session via correlate, memory budget, WAL append)
//!         ├─▶ cluster (groups another node owns are forwarded to it, :4320)
//!         └─▶ session (one ractor actor per live correlation ID)
//!               └─▶ store (embedded sled archive or ClickHouse) on idle timeout / max age
//! api (HTTP :8080) ─▶ query (merge live actor state with archived segments;
//!                     cluster: ask the owner, or every node)
//! ```
//!
//! The pure decisions live in the `ollystack-core` crate (no I/O); this
//! crate carries them out and re-exports the core's modules under the same
//! names, so `crate::correlate`, `crate::rca`, `crate::query` read alike:
//!
//! * [`model`], [`correlate`], [`rca`]: from the core (identifier newtypes;
//!   the correlation rules; root-cause analysis and latency baselines).
//! * [`query`]: the core's answer builders, plus the [`query::QueryBackend`]
//!   trait through which the API reaches live actors and storage.
//! * [`receive`]: OTLP/gRPC and OTLP/HTTP front ends.
//! * [`ingest`]: OTLP request → durable per-session input.
//! * [`session`]: live session actors, their supervisor and registry, and
//!   this node's answers to queries (live actors, then its store); the
//!   session's pure state, summary and finishing rules come from the core.
//! * [`wal`]: the write-ahead log (segment files, group-commit fsync).
//! * [`store`]: the archive of finished segments, the trace index and the
//!   log of shipments taken from other nodes.
//! * [`budget`]: the node's memory budget (sessions, requests in decode).
//! * [`llm`]: optional LLM providers that only phrase computed RCA results.
//! * [`api`]: axum routes of the HTTP API.
//! * [`access`]: bearer tokens (scopes, tenants) on the OTLP and API ports.
//! * [`cluster`]: this node's part in the cluster: Raft start and join,
//!   membership, routing of ingest and queries to owners, hand-off and
//!   hand-over.
//! * [`certs`]: the `certs` command (a cluster CA and node certificates).
//! * [`secret`]: secrets that never print.
//! * [`config`], [`clock`], [`metrics`], [`error`]: node-wide plumbing.
//! * [`server`]: wires everything together in steps and runs it.
//!
//! Modules depend on each other without cycles (`scripts/check-imports`).

pub use ollystack_core::{correlate, model, rca};

pub mod access;
pub mod api;
pub mod budget;
pub mod certs;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod ingest;
pub mod llm;
pub mod metrics;
pub mod query;
pub mod receive;
pub mod secret;
pub mod server;
pub mod session;
pub mod store;
pub mod wal;
