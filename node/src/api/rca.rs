//! `POST /api/v1/ai/rca`: root-cause analysis, computed (never guessed),
//! of one request or of an incident.
//!
//! Request body, one of:
//! * `{"correlation_id": "order-42"}`: one request's session;
//! * `{"start", "end", "baseline_start"?, "baseline_end"?}`: an incident,
//!   every session in an event-time window against a baseline window (see
//!   `window.rs` for the time formats; the baseline defaults to the same
//!   length right before `start`). Answered by `incident.rs`.
//!
//! A body with both `correlation_id` and window fields, or with neither,
//! any other field, or a malformed value is 400; an unknown session is 404
//! (the API's JSON error shape).
//!
//! Answer for one request (field names are stable):
//!
//! ```text
//! {
//!   "correlation_id": "order-42", "live": false, "partial": false, "partial_reason"?: "...",
//!   "request_failed": true,
//!   "root_cause": {candidate} | null,          // = candidates[0]
//!   "candidates": [{"service", "operation", "kind": "error"|"latency"|"network"|"error_log"|"critical_path",
//!                   "score": 0..1, "evidence": [{"type", "detail", "span_id"?, "value_ms"?,
//!                                                 "baseline"?: {"p50_ms", "p90_ms", "p99_ms", "samples"}}]}],
//!   "critical_path": {"total_ms", "steps": [{"service", "operation", "span_id", "self_ms", "start_offset_ms"}]},
//!   "error_origin": {"service", "operation", "span_id", "trace_id", "message", "reaches_root",
//!                    "logs": [{"service", "timestamp", "severity", "body", "span_id", "matched": "span"|"service_time"}]} | null,
//!   "anomalies": [{"service", "operation", "span_id", "duration_ms", "self_ms", "exceeds": ["duration"|"self_time"],
//!                  "baseline": {percentiles of duration}, "self_baseline": {percentiles of self time}}],
//!   "dependency_graph": {"nodes": ["svc"], "edges": [{"from", "to", "calls", "errors", "p50_ms", "max_ms"}]},
//!   "counterfactuals": [
//!     {"kind": "latency", "service", "operation", "statement", "span_ids", "actual_ms", "baseline_p50_ms",
//!      "total_ms", "counterfactual_total_ms", "saved_ms"},
//!     {"kind": "failure", "service", "operation", "statement", "span_id", "spared", "spared_spans": [{"service", "operation", "span_id"}],
//!      "request_would_succeed"}],
//!   "chains": [{"weight", "steps": [{"kind": "span_failure"|"error_log"|"latency_anomaly"|"exemplar_outlier",
//!                                    "service", "operation", "at", "interpretation"}]}],
//!   "explanation": "...",
//!   "explanation_source": "deterministic"|"llm:openai"|"llm:anthropic"|"llm:ollama",
//!   "explanation_error"?: "llm:openai timed out after 10000 ms; the deterministic explanation is answered"
//! }
//! ```
//!
//! `explanation` is built from the computed fields; with `[llm]` configured
//! a model rephrases it (prompted with this JSON and told not to add
//! causes), and on any failure the deterministic text is answered and
//! `explanation_error` says why.
//!
//! The answer for an incident is documented in `incident.rs`.
//!
//! The algorithms and their definitions are in [`crate::rca`].

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::window::{object, only, windows, Windows};
use super::{compute, incident, params, phrase, ApiError, ApiState, Phrasing, Tenant};
use crate::model::{CorrelationId, TenantId};
use crate::query::{is_truncated, merge, Page, QueryBackend, SessionData};
use crate::rca::{analyze, samples, Baselines, RcaInput, RcaResult, RcaSpan};

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RcaResponse {
    pub correlation_id: CorrelationId,
    /// A live session actor contributed signals (the request may still be running).
    pub live: bool,
    pub partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    #[serde(flatten)]
    pub result: RcaResult,
    #[serde(flatten)]
    pub phrasing: Phrasing,
}

/// Records of each kind one session's analysis reads at most (in storage
/// order): bounds its memory like a page of `correlate`, a few pages' worth.
pub const RCA_RECORDS_MAX: u64 = 5 * crate::query::PAGE_LIMIT_MAX;

pub async fn rca<B: QueryBackend>(State(state): State<ApiState<B>>, Tenant(tenant): Tenant, body: Bytes) -> Result<Response, ApiError> {
    let raw_id = match parse(&body)? {
        RcaRequest::Session(raw_id) => raw_id,
        RcaRequest::Incident(w) => return incident::answer(&state, &tenant, w).await.map(|r| Json(r).into_response()),
    };
    let id = params::correlation_id(&raw_id, state.max_id_length)?;
    let permit = super::correlate::session_read_permit(&state).await?;
    let paged = state
        .backend
        .session_page(&tenant, &id, Page::first(RCA_RECORDS_MAX))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session with correlation id {}", params::quoted(id.as_str()))))?;
    let baselines = state.baselines.clone();
    let mut r = compute(move || {
        let _permit = permit;
        let mut data = paged.data;
        if is_truncated(paged.page, paged.total) {
            let t = paged.total;
            let why = format!(
                "the session holds {} spans, {} logs and {} exemplars; the analysis read the first {RCA_RECORDS_MAX} of each",
                t.spans, t.logs, t.exemplars
            );
            data.partial = Some(data.partial.map_or_else(|| why.clone(), |p| format!("{p}; {why}")));
        }
        answer(&tenant, &data, &baselines)
    })
    .await?;
    (r.result.explanation, r.phrasing) = phrase(&state.explainer, &r, &r.result.explanation).await;
    Ok(Json(r).into_response())
}

/// The analysis of one session against the node's baselines, leaving the
/// session's own archived segments out of them.
pub fn answer(tenant: &TenantId, data: &SessionData, baselines: &Baselines) -> RcaResponse {
    let merged = merge(data);
    let input = RcaInput::from_merged(&merged);
    let own: Vec<_> = data
        .segments
        .iter()
        .filter(|s| !s.live)
        .flat_map(|s| {
            let archived = SessionData {
                id: data.id.clone(),
                segments: vec![crate::query::Segment { live: false, ..s.clone() }],
                partial: None,
                aliases: Vec::new(),
            };
            let spans: Vec<RcaSpan> = RcaInput::from_merged(&merge(&archived)).spans;
            samples(&spans)
        })
        .collect();
    let view = baselines.view(tenant, input.spans.iter().map(|s| (s.service.as_str(), s.operation.as_str())), &own);
    RcaResponse {
        correlation_id: data.id.clone(),
        live: merged.live,
        partial: data.partial.is_some(),
        partial_reason: data.partial.clone(),
        result: analyze(&input, &view),
        phrasing: Phrasing::deterministic(),
    }
}

/// What a body asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RcaRequest {
    /// The raw correlation ID (checked by the caller).
    Session(String),
    Incident(Windows),
}

const WINDOW_FIELDS: [&str; 4] = ["start", "end", "baseline_start", "baseline_end"];

/// The body, checked field by field (see the module doc).
fn parse(body: &[u8]) -> Result<RcaRequest, ApiError> {
    let fields = object(body, "correlation_id, or start and end")?;
    let has_window = WINDOW_FIELDS.iter().any(|f| fields.contains_key(*f));
    match (fields.get("correlation_id"), has_window) {
        (Some(_), true) => {
            Err(ApiError::bad_request("body: give either correlation_id (one request) or start and end (an incident window), not both"))
        }
        (None, false) => {
            only(&fields, &[])?;
            Err(ApiError::bad_request("body: needs correlation_id (one request) or start and end (an incident window)"))
        }
        (Some(id), false) => {
            only(&fields, &["correlation_id"])?;
            match id {
                Value::String(id) => Ok(RcaRequest::Session(id.clone())),
                _ => Err(ApiError::bad_request("body: correlation_id must be a string")),
            }
        }
        (None, true) => {
            only(&fields, &WINDOW_FIELDS)?;
            windows(&fields).map(RcaRequest::Incident)
        }
    }
}

#[cfg(test)]
#[path = "rca_test.rs"]
mod tests;
