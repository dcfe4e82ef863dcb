//! `POST /api/v1/ai/analyze`: anomalies in an event-time window — the
//! services and operations whose error rate, latency percentiles (self
//! time, duration) or log lines left their baseline, and the calls whose
//! client or server side changed.
//!
//! Request body: `{"start", "end", "baseline_start"?, "baseline_end"?}`
//! (formats in `window.rs`). The baseline is the window of the same length
//! right before `start` unless given: a window of recorded data, not the
//! node's learned HDR baselines, because those hold whatever this node
//! ingested lately (including the incident itself) while windows work on
//! any period, even a months-old one replayed with its timestamps.
//!
//! Answer (field names are stable):
//!
//! ```text
//! {
//!   "window": {"start", "end", "baseline_start", "baseline_end", "baseline": "given"|"previous_window"},
//!   "partial": false, "partial_reason"?: "...",
//!   "sessions": {"baseline", "incident"}, "failed_session_rate": {"baseline", "incident"},
//!   "anomalies": [{"service", "operation", "calls", "error_rate", "origin_error_rate", "error_logs_per_call",
//!                  "self_time", "duration", "departures", "templates"}],     // as "changes" in incident RCA
//!   "edge_anomalies": [{"caller", "caller_operation", "callee", ...}],         // as "edge_changes"
//!   "explanation": "...", "explanation_source": "deterministic"|"llm:<provider>", "explanation_error"?: "..."
//! }
//! ```

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::incident::read;
use super::window::{object, only, windows, WindowView};
use super::{compute, phrase, ApiError, ApiState, Phrasing, Tenant};
use crate::query::QueryBackend;
use crate::rca::incident::{anomalies, AnomalyReport};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyzeResponse {
    pub window: WindowView,
    pub partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    #[serde(flatten)]
    pub report: AnomalyReport,
    #[serde(flatten)]
    pub phrasing: Phrasing,
}

pub async fn analyze<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    body: Bytes,
) -> Result<Json<AnalyzeResponse>, ApiError> {
    let fields = object(&body, "start and end")?;
    only(&fields, &["start", "end", "baseline_start", "baseline_end"])?;
    let w = windows(&fields)?;
    let (base, inc, partial_reason) = read(&state, &tenant, &w).await?;
    let report = compute(move || anomalies(&base.aggregate, &inc.aggregate)).await?;
    let mut r = AnalyzeResponse {
        window: w.view(),
        partial: partial_reason.is_some(),
        partial_reason,
        report,
        phrasing: Phrasing::deterministic(),
    };
    (r.report.explanation, r.phrasing) = phrase(&state.explainer, &r, &r.report.explanation).await;
    Ok(Json(r))
}
