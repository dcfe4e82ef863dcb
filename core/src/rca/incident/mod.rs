//! Root-cause analysis of an incident: what changed between a baseline
//! window and an incident window across all sessions, blamed causally
//! through the dependency graph. Also the window anomaly analysis.
//!
//! The computation is split so a cluster can fan it out:
//! 1. every node reads its own sessions of a window into a mergeable
//!    [`WindowAggregate`] (the node's `collect_window`, which folds
//!    sessions with [`fold`]);
//! 2. the aggregates of all nodes are merged ([`Collected::merge`], exact);
//! 3. a pure function ranks what changed ([`incident`], [`anomalies`]).
//!
//! | file | what |
//! |---|---|
//! | `sketch.rs` | latency sketch that merges exactly (log-linear buckets, ≤ 1.6% error) |
//! | `logline.rs` | log templates (variable parts masked) |
//! | `aggregate.rs` | the per-node window aggregate: per operation and per edge, with `merge` |
//! | `window.rs` | what a node reads of a window (by event time), folded into an aggregate; bounded |
//! | `changes.rs` | statistical tests: what left its baseline, per operation and per edge |
//! | `deps.rs` | the service dependency graph (petgraph) for causal walks |
//! | `blame.rs` | the ranked candidates and the causal rules that blame services for changes |
//! | `answer.rs` | the answers and their deterministic explanations |

mod aggregate;
mod answer;
mod blame;
mod changes;
mod deps;
mod logline;
mod sketch;
mod window;

pub use aggregate::{EdgeStats, OpStats, WindowAggregate, KEYS_MAX_DEFAULT};
pub use answer::{anomalies, incident, AnomalyReport, IncidentResult};
pub use blame::{rank, IncidentCandidate, CANDIDATES_MAX};
pub use changes::{EdgeChange, OpChange, Pair, TemplateChange};
pub use sketch::LatencySketch;
pub use window::{fold, window_input, Collected, WindowQuery, BATCH_SESSIONS, SESSIONS_MAX_DEFAULT};
