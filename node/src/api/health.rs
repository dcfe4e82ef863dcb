//! `GET /healthz` (the process answers), `GET /readyz` (the node can serve:
//! WAL replayed, listeners up) and `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::ApiState;
use crate::error::ErrorCode;
use crate::query::QueryBackend;

/// Prometheus text exposition format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz<B: QueryBackend>(State(state): State<ApiState<B>>) -> impl IntoResponse {
    if state.backend.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (ErrorCode::Unavailable.http_status(), Json(json!({ "status": "not_ready" })))
    }
}

/// The node's metrics count every tenant's traffic: a token bound to one
/// tenant may not read them (403); a node-wide read token may.
pub async fn metrics<B: QueryBackend>(State(state): State<ApiState<B>>, request: axum::extract::Request) -> axum::response::Response {
    if crate::access::layer::caller_of(request.extensions()).is_some_and(|c| c.tenant.is_some()) {
        let message = "node metrics cover every tenant: use a read token not bound to a tenant";
        return super::ApiError::new(ErrorCode::PermissionDenied, message.to_owned()).into_response();
    }
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], state.backend.render_metrics()).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::{header, StatusCode};
    use serde_json::json;

    use super::super::fake::{app, get, FakeBackend};
    use super::PROMETHEUS_CONTENT_TYPE;

    #[tokio::test]
    async fn health_readiness_and_metrics() {
        let (app, _) = app(FakeBackend::default(), true);
        let health = get(&app, "/healthz", &[]).await;
        assert_eq!((health.status, health.json()), (StatusCode::OK, json!({"status": "ok"})), "no tenant needed");
        assert_eq!(get(&app, "/readyz", &[]).await.status, StatusCode::SERVICE_UNAVAILABLE);
        let metrics = get(&app, "/metrics", &[]).await;
        assert_eq!(metrics.status, StatusCode::OK);
        assert_eq!(metrics.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some(PROMETHEUS_CONTENT_TYPE));
        assert!(String::from_utf8_lossy(&metrics.body).contains("ollystack_test_total 1"));

        let (ready_app, _) = app_ready();
        assert_eq!(get(&ready_app, "/readyz", &[]).await.status, StatusCode::OK);
    }

    fn app_ready() -> (axum::Router, std::sync::Arc<FakeBackend>) {
        app(FakeBackend { ready: true, ..Default::default() }, false)
    }

    #[tokio::test]
    async fn unknown_routes_are_json_404() {
        let (app, _) = app(FakeBackend::default(), false);
        let reply = get(&app, "/api/v1/nothing", &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.error().0, "not_found");
    }
}
