//! `GET /api/v1/traces/{trace_id}` (the spans of one trace, with its
//! session) and `GET /api/v1/exemplars/{trace_id}/trace` (redirect from an
//! exemplar's trace to its session).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use axum::Json;

use super::correlate::{session_read_permit, PageParams};
use super::{compute, params, ApiError, ApiState, Tenant};
use crate::model::{CorrelationId, TenantId, TraceId};
use crate::query::{self, QueryBackend, TraceResponse};

/// Pages like `correlate` (`?offset=&limit=`, see `correlate.rs`): a
/// page of the session's records, with this trace's spans among them.
pub async fn trace<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    trace_id: Result<Path<String>, PathRejection>,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<TraceResponse>, ApiError> {
    let trace = params::trace_id(&params::path(trace_id)?)?;
    let params = params::query(query)?;
    let page = params.page()?;
    let id = session_of(&state, &tenant, trace).await?;
    let permit = session_read_permit(&state).await?;
    let paged = state.backend.session_page(&tenant, &id, page).await?.ok_or_else(|| unknown(trace))?;
    let next_link = params.next_link(format!("/api/v1/traces/{}", trace.to_hex()), page.limit);
    compute(move || {
        let _permit = permit;
        let mut answer = query::trace_view(trace, &paged.data);
        answer.truncated = Some(query::is_truncated(paged.page, paged.total));
        answer.page = Some(query::page_view(&paged, next_link));
        answer
    })
    .await
    .map(Json)
}

/// 307 to the session of the trace (keeping `tenant` when tenancy is on, so
/// clients that send it as a parameter can follow).
pub async fn exemplar_trace<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    trace_id: Result<Path<String>, PathRejection>,
) -> Result<Redirect, ApiError> {
    let trace = params::trace_id(&params::path(trace_id)?)?;
    let id = session_of(&state, &tenant, trace).await?;
    // Stored IDs and tenants are `[A-Za-z0-9_-]` only: safe in a URL as they are.
    let location =
        if state.tenancy_enabled { format!("/api/v1/correlate/{id}?tenant={tenant}") } else { format!("/api/v1/correlate/{id}") };
    Ok(Redirect::temporary(&location))
}

async fn session_of<B: QueryBackend>(state: &ApiState<B>, tenant: &TenantId, trace: TraceId) -> Result<CorrelationId, ApiError> {
    state.backend.session_of_trace(tenant, trace).await?.ok_or_else(|| unknown(trace))
}

fn unknown(trace: TraceId) -> ApiError {
    ApiError::not_found(format!("no session holds trace {}", trace.to_hex()))
}

#[cfg(test)]
mod tests {
    use axum::http::{header, StatusCode};

    use super::super::fake::{app, get, FakeBackend};
    use crate::model::{TenantId, TraceId};
    use crate::query::fixtures::{checkout_session, trace_bytes};

    fn trace_one() -> TraceId {
        TraceId::from_bytes(&trace_bytes(1)).expect("valid trace id")
    }

    fn backend(tenant: &str) -> FakeBackend {
        FakeBackend::default().with_session(tenant, checkout_session("order-42")).with_trace(tenant, trace_one(), "order-42")
    }

    #[tokio::test]
    async fn trace_answer_has_its_spans_and_session() {
        let (app, _) = app(backend(TenantId::DEFAULT), false);
        let reply = get(&app, &format!("/api/v1/traces/{}", "01".repeat(16)), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.json();
        assert_eq!(body["correlation_id"], "order-42");
        assert_eq!(body["trace_id"], "01".repeat(16));
        assert_eq!(body["live"], true);
        let names: Vec<&str> = body["spans"].as_array().expect("spans").iter().filter_map(|s| s["span_name"].as_str()).collect();
        assert_eq!(names, ["GET /checkout", "charge", "POST /pay"]);
        assert_eq!(body["spans"][2]["span_kind"], "server");
    }

    #[tokio::test]
    async fn trace_errors() {
        let (app, backend) = app(backend(TenantId::DEFAULT), false);
        for bad in ["xyz", "zz".repeat(16).as_str(), "0".repeat(32).as_str()] {
            let reply = get(&app, &format!("/api/v1/traces/{bad}"), &[]).await;
            assert_eq!((reply.status, reply.error().0.as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{bad}");
        }
        assert_eq!(backend.lookups.load(std::sync::atomic::Ordering::SeqCst), 0);
        let reply = get(&app, &format!("/api/v1/traces/{}", "02".repeat(16)), &[]).await;
        assert_eq!((reply.status, reply.error().0.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    }

    #[tokio::test]
    async fn exemplar_trace_redirects_to_the_session() {
        let (app, _) = app(backend(TenantId::DEFAULT), false);
        let reply = get(&app, &format!("/api/v1/exemplars/{}/trace", "01".repeat(16)), &[]).await;
        assert_eq!(reply.status, StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(reply.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/api/v1/correlate/order-42"));
        let unknown = get(&app, &format!("/api/v1/exemplars/{}/trace", "02".repeat(16)), &[]).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(get(&app, "/api/v1/exemplars/nothex/trace", &[]).await.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn redirect_keeps_the_tenant() {
        let (app, _) = app(backend("acme"), true);
        let reply = get(&app, &format!("/api/v1/exemplars/{}/trace?tenant=acme", "01".repeat(16)), &[]).await;
        assert_eq!(reply.status, StatusCode::TEMPORARY_REDIRECT);
        let location = reply.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(location.as_deref(), Some("/api/v1/correlate/order-42?tenant=acme"));
        let followed = get(&app, location.as_deref().expect("location"), &[]).await;
        assert_eq!(followed.status, StatusCode::OK);
    }
}
