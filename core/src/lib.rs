//! OllyStack's core: the plain data types and the pure decisions of a node,
//! with no I/O (no sockets, files, clocks, actors or async runtime). The
//! node crate (`ollystack-node`) carries them out: its actors, servers and
//! stores call into these modules, never the other way round.
//!
//! Modules depend on each other one way, in this order:
//!
//! ```text
//! model ◀── correlate
//!   ▲
//!   └── session ◀── query ◀── rca
//! ```
//!
//! * [`model`]: identifier newtypes (correlation, trace, span, tenant IDs,
//!   session keys).
//! * [`correlate`]: the rules that find, derive, validate and sanitize
//!   correlation IDs and migrate semantic conventions.
//! * [`session`]: a segment's compact state, its running summary, when it
//!   finishes, and the finished segment handed to storage.
//! * [`query`]: API answers built from segments (merge, views, timeline,
//!   impact, paging, listings, natural-language query parsing).
//! * [`rca`]: root-cause analysis of a session and of an incident window,
//!   latency baselines.

pub mod correlate;
pub mod model;
pub mod query;
pub mod rca;
pub mod session;
