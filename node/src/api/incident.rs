//! Per-incident RCA, the `{"start", "end", ...}` form of
//! `POST /api/v1/ai/rca` (parsed in `rca.rs`, windows in `window.rs`).
//!
//! Both windows are read through [`QueryBackend::window_aggregate`] (on a
//! cluster, every node's aggregate merged), then ranked by the pure
//! [`crate::rca::incident::incident`]. Answer (field names are stable):
//!
//! ```text
//! {
//!   "window": {"start", "end", "baseline_start", "baseline_end", "baseline": "given"|"previous_window"},
//!   "partial": false, "partial_reason"?: "...",     // sessions or keys beyond the bounds, unreadable sessions
//!   "sessions": {"baseline": 812, "incident": 790},
//!   "failed_session_rate": {"baseline": 0.0, "incident": 0.21},
//!   "root_cause": {candidate} | null,              // = candidates[0]
//!   "candidates": [{"service", "operation" ("*" = the whole service),
//!                   "kind": "error"|"latency"|"service_latency"|"network"|"error_log"|"log_change",
//!                   "score": 0..1, "evidence": [{"type", "detail", "value_ms"?, "baseline"?: {"p50_ms", "p90_ms", "p99_ms", "samples"}}]}],
//!   "changes": [{"service", "operation", "calls", "error_rate", "origin_error_rate", "error_logs_per_call",
//!                "self_time", "duration",           // each {"baseline", "incident"}; latencies as percentiles
//!                "departures": ["origin_error_rate"|"error_rate"|"self_time"|"duration"|"error_logs"|"log_template"],
//!                "templates": [{"template", "per_call": {"baseline", "incident"}, "change": "gone"|"new"}]}],
//!   "edge_changes": [{"caller", "caller_operation", "callee", "calls", "error_rate", "caller_only_error_rate",
//!                     "client", "server", "gap", "departures": ["gap"|"server"|"caller_only_errors"]}],
//!   "dependency_graph": {"nodes", "edges": [{"from", "to", "calls", "errors", "p50_ms", "max_ms"}]},
//!   "explanation": "...", "explanation_source": "deterministic"|"llm:<provider>", "explanation_error"?: "..."
//! }
//! ```
//!
//! Evidence types: `error_rate_change`, `failure_message`, `error_log_count`,
//! `self_time_change`, `duration_change`, `service_wide_slowdown`,
//! `client_side_change`, `server_side`, `network_change`, `log_change`,
//! `explains`, `caveat`, `affected_callers`.

use serde::Serialize;

use super::window::{WindowView, Windows};
use super::{compute, phrase, ApiError, ApiState, Phrasing};
use crate::model::TenantId;
use crate::query::QueryBackend;
use crate::rca::incident::{incident, Collected, IncidentResult};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentResponse {
    pub window: WindowView,
    pub partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    #[serde(flatten)]
    pub result: IncidentResult,
    #[serde(flatten)]
    pub phrasing: Phrasing,
}

pub async fn answer<B: QueryBackend>(state: &ApiState<B>, tenant: &TenantId, w: Windows) -> Result<IncidentResponse, ApiError> {
    let (base, inc, partial_reason) = read(state, tenant, &w).await?;
    let result = compute(move || incident(&base.aggregate, &inc.aggregate)).await?;
    let mut r = IncidentResponse {
        window: w.view(),
        partial: partial_reason.is_some(),
        partial_reason,
        result,
        phrasing: Phrasing::deterministic(),
    };
    (r.result.explanation, r.phrasing) = phrase(&state.explainer, &r, &r.result.explanation).await;
    Ok(r)
}

/// Both windows' aggregates (read concurrently) and why either is partial.
pub async fn read<B: QueryBackend>(
    state: &ApiState<B>,
    tenant: &TenantId,
    w: &Windows,
) -> Result<(Collected, Collected, Option<String>), ApiError> {
    let (inc_q, base_q) = w.queries();
    let (inc, base) = tokio::join!(state.backend.window_aggregate(tenant, &inc_q), state.backend.window_aggregate(tenant, &base_q));
    let (inc, base) = (inc?, base?);
    let reasons: Vec<String> = [("incident window", &inc.partial), ("baseline window", &base.partial)]
        .into_iter()
        .filter_map(|(name, reason)| reason.as_ref().map(|r| format!("{name}: {r}")))
        .collect();
    Ok((base, inc, (!reasons.is_empty()).then(|| reasons.join("; "))))
}

#[cfg(test)]
#[path = "incident_test.rs"]
mod tests;
