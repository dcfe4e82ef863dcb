//! `POST /api/v1/ai/nlq`: a question in words, answered as a session
//! search. Rule-based (see [`crate::query::nlq`]): the question becomes a
//! structured query of typed fields, run through the session listing; the
//! user's text is never query text.
//!
//! Request body: `{"q": "slowest checkout requests with errors in the last hour"}`
//! (1..=500 characters). Relative times ("last hour") are from the node's
//! clock and, as `since` of `GET /api/v1/sessions`, compare with when a
//! session was last active on this node. Names are recognised among the
//! services and root operations of the node's recent sessions.
//!
//! Answer (field names are stable):
//!
//! ```text
//! {
//!   "q": "...",
//!   "query": {"service": "checkout"|null, "operation": null, "errors": "any"|"only"|"without", "errors_only": true,
//!             "order_by": "duration_desc"|"duration_asc"|"newest"|"oldest"|"errors_desc",
//!             "since_unix_ms": 1700000000000|null, "since": "RFC 3339"|null, "range": "1h"|null,
//!             "min_duration_ms": null, "max_duration_ms": null, "limit": 20},
//!   "results": [session list items, as GET /api/v1/sessions returns them],
//!   "interpretation": "sessions touching service checkout with errors ..., slowest first, at most 20",
//!   "unknown_words": ["..."], "notes": ["..."],
//!   "partial": false, "partial_reason"?: "..."
//! }
//! ```

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::window::{object, only};
use super::{ApiError, ApiState, Tenant};
use crate::query::nlq::{parse, StructuredQuery, Vocabulary, QUESTION_CHARS_MAX, SCAN_MAX};
use crate::query::{QueryBackend, SessionFilter, SessionListItem};

/// Recent sessions whose services and root operations form the vocabulary.
const VOCABULARY_SESSIONS_MAX: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NlqResponse {
    pub q: String,
    pub query: StructuredQuery,
    pub results: Vec<SessionListItem>,
    pub interpretation: String,
    pub unknown_words: Vec<String>,
    pub notes: Vec<String>,
    pub partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
}

pub async fn nlq<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    body: Bytes,
) -> Result<Json<NlqResponse>, ApiError> {
    let fields = object(&body, "q")?;
    only(&fields, &["q"])?;
    let q = match fields.get("q") {
        Some(Value::String(q)) if !q.trim().is_empty() && q.chars().count() <= QUESTION_CHARS_MAX => q.clone(),
        Some(Value::String(_)) => return Err(ApiError::bad_request(format!("body: q must have 1 to {QUESTION_CHARS_MAX} characters"))),
        Some(_) => return Err(ApiError::bad_request("body: q must be a string")),
        None => return Err(ApiError::bad_request("body: q is missing")),
    };
    let recent = state.backend.recent_sessions(&tenant, &SessionFilter { limit: VOCABULARY_SESSIONS_MAX, ..Default::default() }).await?;
    let parsed = parse(&q, state.clock.now_unix_ms(), &vocabulary(&recent));
    let listing = state.backend.session_listing(&tenant, &parsed.query.filter()).await?;
    let rows = listing.sessions;
    let partial_reason = if rows.len() >= SCAN_MAX {
        Some(format!("only the {SCAN_MAX} most recently active matching sessions were searched"))
    } else {
        // The listing's scan is bounded: say what it did not look at.
        listing.resume_before_unix_ms.map(|before| format!("sessions archived before {before} (Unix ms) were not searched"))
    };
    let mut interpretation = parsed.query.interpretation();
    if !parsed.unknown_words.is_empty() {
        interpretation.push_str(&format!("; not understood: {}", parsed.unknown_words.join(" ")));
    }
    Ok(Json(NlqResponse {
        q,
        results: parsed.query.apply(rows),
        query: parsed.query,
        interpretation,
        unknown_words: parsed.unknown_words,
        notes: parsed.notes,
        partial: partial_reason.is_some(),
        partial_reason,
    }))
}

fn vocabulary(rows: &[SessionListItem]) -> Vocabulary {
    let mut services: Vec<String> = rows.iter().flat_map(|r| r.services.iter().cloned()).collect();
    let mut operations: Vec<String> = rows.iter().filter_map(|r| r.root_span.clone()).collect();
    for names in [&mut services, &mut operations] {
        names.sort();
        names.dedup();
    }
    Vocabulary { services, operations }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde_json::json;
    use tower::ServiceExt;

    use super::super::fake::{app, FakeBackend, NOW_UNIX_MS};
    use crate::model::{CorrelationId, TenantId};
    use crate::query::SessionListItem;

    fn item(id: &str, service: &str, root: &str, duration_ms: f64, errors: u64) -> SessionListItem {
        SessionListItem {
            correlation_id: CorrelationId::from_trusted(id),
            tenant_id: TenantId::default_tenant(),
            live: false,
            start: "2023-11-14T22:13:20.000000000Z".into(),
            end: "2023-11-14T22:13:21.000000000Z".into(),
            duration_ms,
            total_spans: 3,
            total_logs: 0,
            total_metrics: 0,
            error_count: errors,
            services: vec![service.into(), "frontend".into()],
            root_span: Some(root.into()),
            last_seen_unix_ms: NOW_UNIX_MS - 60_000,
        }
    }

    async fn ask(app: &axum::Router, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
        let request =
            Request::post("/api/v1/ai/nlq").header("content-type", "application/json").body(Body::from(body.to_string())).expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn a_question_becomes_a_filtered_sorted_search() {
        let listed = vec![
            item("fast", "checkout", "GET /checkout", 20.0, 1),
            item("slow", "checkout", "GET /checkout", 900.0, 2),
            item("mid", "checkout", "GET /checkout", 300.0, 1),
        ];
        let (app, backend) = app(FakeBackend { listed, ..Default::default() }, false);
        let (status, body) = ask(&app, json!({"q": "slowest checkout requests with errors in the last hour, please wibble"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["query"]["service"], "checkout");
        assert_eq!(body["query"]["errors_only"], true);
        assert_eq!(body["query"]["order_by"], "duration_desc");
        assert_eq!(body["query"]["since_unix_ms"], NOW_UNIX_MS - 3_600_000);
        let ids: Vec<&str> = body["results"].as_array().expect("results").iter().filter_map(|r| r["correlation_id"].as_str()).collect();
        assert_eq!(ids, ["slow", "mid", "fast"]);
        assert_eq!(body["unknown_words"], json!(["wibble"]));
        assert!(body["interpretation"].as_str().is_some_and(|t| t.ends_with("not understood: wibble")), "{body}");
        let filter = backend.last_session_filter.lock().clone().expect("searched");
        assert_eq!(
            (filter.service.as_deref(), filter.errors_only, filter.since_unix_ms),
            (Some("checkout"), true, Some(NOW_UNIX_MS - 3_600_000))
        );
    }

    #[tokio::test]
    async fn a_search_whose_scan_stopped_is_partial() {
        let listed = vec![item("a", "checkout", "GET /checkout", 20.0, 1)];
        let backend = FakeBackend { listed, resume_before_unix_ms: Some(1_700_000_000_000), ..Default::default() };
        let (app, _) = app(backend, false);
        let (status, body) = ask(&app, json!({"q": "checkout requests"})).await;
        assert_eq!((status, body["partial"].clone()), (StatusCode::OK, json!(true)), "{body}");
        assert!(body["partial_reason"].as_str().is_some_and(|r| r.contains("1700000000000")), "{body}");
    }

    #[tokio::test]
    async fn bad_bodies_are_400() {
        let (app, _) = app(FakeBackend::default(), false);
        for (body, says) in [
            (json!({}), "q is missing"),
            (json!({"q": 5}), "q must be a string"),
            (json!({"q": "  "}), "1 to 500 characters"),
            (json!({"q": "x".repeat(501)}), "1 to 500 characters"),
            (json!({"q": "x", "sql": "DROP"}), "unknown field \"sql\""),
        ] {
            let (status, reply) = ask(&app, body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(reply["error"]["message"].as_str().is_some_and(|m| m.contains(says)), "{body}: {reply}");
        }
    }
}
