//! Root-cause analysis of one request (a correlation session), computed
//! from the session's own spans, logs and exemplars and from latency
//! baselines learned from finished sessions — never guessed; and of an
//! incident (a time window across sessions) in [`incident`].
//!
//! Everything here is a pure function of its input except [`Baselines`],
//! the node's shared, bounded store of learned histograms, which an
//! analysis reads once as a plain [`BaselineView`].
//!
//! | file | what |
//! |---|---|
//! | `model.rs` | the input model (spans, logs, exemplars) decoded once from a merged session |
//! | `tree.rs` | span trees: parents, children, depth, self time; cycles broken |
//! | `graph.rs` | service dependency graph (petgraph) with calls, errors and latency per edge |
//! | `critical_path.rs` | wall-clock critical path, aware of concurrent children |
//! | `origin.rs` | error origins with supporting logs |
//! | `baseline.rs` | HDR-histogram baselines per (tenant, service, operation), bounded |
//! | `anomaly.rs` | spans whose self time or duration left their baseline |
//! | `counterfactual.rs` | re-timing a tree with spans at their p50; failures spared by a fix |
//! | `candidate.rs` | a candidate, its evidence, the facts ranking reads |
//! | `rank.rs` | the ranked candidates with evidence |
//! | `causal.rs` | causal corrections: timeouts blamed on slow callees, retry waits discounted |
//! | `chains.rs` | Chain-of-Event style chains from first cause to symptom |
//! | `result.rs` | the answer's types (result views) |
//! | `explain.rs` | deterministic text from the result |
//! | `analyze.rs` | runs them all and shapes the answer |
//! | `incident/` | per-incident RCA and window anomalies: a mergeable per-node window aggregate, ranked causally (see [`incident`]) |

mod analyze;
mod anomaly;
mod baseline;
mod candidate;
mod causal;
mod chains;
mod counterfactual;
mod critical_path;
mod explain;
#[cfg(test)]
mod fixtures;
mod graph;
pub mod incident;
mod model;
mod origin;
mod rank;
mod result;
mod tree;

pub use analyze::analyze;
pub use baseline::{samples, BaselineView, Baselines, OpBaseline, Percentiles, Sample, BYTES_MAX_DEFAULT, KEYS_MAX_DEFAULT};
pub use candidate::{Candidate, CandidateKind, Evidence};
pub use chains::{Chain, ChainStep, StepKind};
pub use graph::{EdgeView, GraphView};
pub use model::{rca_span, RcaExemplar, RcaInput, RcaLog, RcaSpan};
pub use result::{AnomalyView, CounterfactualView, CriticalPathView, ErrorOriginView, LogRef, PathStepView, RcaResult, SpanRef};
