//! The HTTP API (axum): routes only. Each route file parses and validates
//! its request, asks the [`QueryBackend`] and answers with a view built by
//! the pure functions of [`crate::query`]; building runs on the blocking
//! pool, off the async threads.
//!
//! | route | file |
//! |---|---|
//! | `GET /api/v1/correlate/{id}`, `…/timeline`, `…/impact` | `correlate.rs` |
//! | `GET /api/v1/sessions` | `sessions.rs` |
//! | `GET /api/v1/traces/{trace_id}`, `GET /api/v1/exemplars/{trace_id}/trace` | `traces.rs` |
//! | `GET /api/v1/metrics/{name}/exemplars` | `exemplars.rs` |
//! | `GET /healthz`, `/readyz`, `/metrics` | `health.rs` |
//! | `POST /api/v1/ai/rca` | `rca.rs` (one request), `incident.rs` (a window) |
//! | `POST /api/v1/ai/analyze` | `analyze.rs` |
//! | `POST /api/v1/ai/nlq` | `nlq.rs` |
//!
//! Errors are JSON, `{"error": {"code", "message"}}`, with the status of
//! their [`ErrorCode`](crate::error::ErrorCode) (`error.rs`). Requests are
//! scoped to a tenant (`tenant.rs`); query parameters are checked in
//! `params.rs`, event-time windows of bodies in `window.rs`.

mod analyze;
mod correlate;
mod error;
mod exemplars;
#[cfg(test)]
mod fake;
mod health;
mod incident;
mod nlq;
mod params;
mod rca;
mod sessions;
mod tenant;
mod traces;
mod window;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

pub use correlate::{session_reads, SESSION_READS_MAX};
pub use error::{reject_api, ApiError};
pub use tenant::{Tenant, TENANT_HEADER};

use crate::clock::SharedClock;
use crate::query::QueryBackend;

/// What every handler needs.
pub struct ApiState<B> {
    /// Live sessions and the archive.
    pub backend: Arc<B>,
    /// When true, every query names its tenant (header or `tenant` parameter).
    pub tenancy_enabled: bool,
    /// Longest correlation ID accepted in a path, in bytes (the same limit
    /// ingest applies, so a longer one cannot exist).
    pub max_id_length: usize,
    /// Node clock, for relative `since` values such as `15m`.
    pub clock: SharedClock,
    /// Latency baselines learned from finished sessions, for RCA.
    pub baselines: Arc<crate::rca::Baselines>,
    /// Phrases computed RCA results (deterministic, or the configured LLM).
    pub explainer: Arc<crate::llm::Explainer>,
    /// Permits for reads of one session's signals (`correlate`, `traces`):
    /// each may hold a page of decoded records, so only so many run at
    /// once ([`SESSION_READS_MAX`]); beyond, callers get 429.
    pub session_reads: Arc<tokio::sync::Semaphore>,
}

// Not derived: a derive would require `B: Clone`, but only the `Arc` is cloned.
impl<B> Clone for ApiState<B> {
    fn clone(&self) -> Self {
        Self {
            backend: Arc::clone(&self.backend),
            tenancy_enabled: self.tenancy_enabled,
            max_id_length: self.max_id_length,
            clock: Arc::clone(&self.clock),
            baselines: Arc::clone(&self.baselines),
            explainer: Arc::clone(&self.explainer),
            session_reads: Arc::clone(&self.session_reads),
        }
    }
}

/// All routes of the HTTP API.
pub fn router<B: QueryBackend>(state: ApiState<B>) -> Router {
    Router::new()
        .route("/api/v1/correlate/", get(correlate::empty_id))
        .route("/api/v1/correlate/{id}", get(correlate::full::<B>))
        .route("/api/v1/correlate/{id}/timeline", get(correlate::timeline::<B>))
        .route("/api/v1/correlate/{id}/impact", get(correlate::impact::<B>))
        .route("/api/v1/sessions", get(sessions::list::<B>))
        .route("/api/v1/traces/{trace_id}", get(traces::trace::<B>))
        .route("/api/v1/exemplars/{trace_id}/trace", get(traces::exemplar_trace::<B>))
        .route("/api/v1/metrics/{name}/exemplars", get(exemplars::list::<B>))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<B>))
        .route("/metrics", get(health::metrics::<B>))
        .route("/api/v1/ai/rca", post(rca::rca::<B>))
        .route("/api/v1/ai/analyze", post(analyze::analyze::<B>))
        .route("/api/v1/ai/nlq", post(nlq::nlq::<B>))
        .fallback(unknown_route)
        .with_state(state)
}

async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", params::quoted(uri.path())))
}

/// Where an answer's `explanation` came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Phrasing {
    /// `deterministic` or `llm:<provider>`.
    pub explanation_source: String,
    /// Why the configured LLM's text is not used (timeout, error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation_error: Option<String>,
}

impl Phrasing {
    pub fn deterministic() -> Self {
        Self { explanation_source: "deterministic".to_owned(), explanation_error: None }
    }
}

/// The explanation of a computed answer whose deterministic text is
/// `deterministic`: that text, or the configured LLM's phrasing of the
/// answer, with where it came from.
async fn phrase<T: serde::Serialize>(explainer: &crate::llm::Explainer, answer: &T, deterministic: &str) -> (String, Phrasing) {
    let explained = match serde_json::to_value(answer) {
        Ok(computed) => explainer.explain(&computed, deterministic.to_owned()).await,
        Err(e) => crate::llm::Explanation {
            text: deterministic.to_owned(),
            source: "deterministic".to_owned(),
            error: Some(format!("answer not serializable for the llm: {e}")),
        },
    };
    (explained.text, Phrasing { explanation_source: explained.source, explanation_error: explained.error })
}

/// Runs CPU-bound answer building off the async threads.
async fn compute<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    ollystack_cluster::blocking::unblock(work).await.map_err(|e| {
        tracing::error!(error = %e, "answer building task failed");
        ApiError::internal("building the answer failed")
    })
}
