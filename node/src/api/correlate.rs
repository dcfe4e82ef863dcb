//! `GET /api/v1/correlate/{id}` (everything about a session) and its
//! `timeline` and `impact` views.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;

use super::{compute, params, ApiError, ApiState, Tenant};
use crate::query::{self, CorrelateResponse, ImpactResponse, QueryBackend, SessionData, TimelineResponse};

pub async fn full<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<CorrelateResponse>, ApiError> {
    let data = load(&state, &tenant, id).await?;
    compute(move || query::correlate(&data)).await.map(Json)
}

pub async fn timeline<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TimelineResponse>, ApiError> {
    let data = load(&state, &tenant, id).await?;
    compute(move || query::timeline(query::correlate(&data))).await.map(Json)
}

pub async fn impact<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ImpactResponse>, ApiError> {
    let data = load(&state, &tenant, id).await?;
    compute(move || query::impact(&query::correlate(&data))).await.map(Json)
}

/// `GET /api/v1/correlate/` (no ID): 400 like any other malformed ID,
/// rather than the 404 of an unknown route.
pub async fn empty_id() -> ApiError {
    ApiError::bad_request("correlation id \"\": is empty")
}

/// The session named in the path: 400 for a malformed ID (before any
/// lookup), 404 when there is none.
async fn load<B: QueryBackend>(
    state: &ApiState<B>,
    tenant: &crate::model::TenantId,
    id: Result<Path<String>, PathRejection>,
) -> Result<SessionData, ApiError> {
    let id = params::correlation_id(&params::path(id)?, state.max_id_length)?;
    state
        .backend
        .session(tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session with correlation id {}", params::quoted(id.as_str()))))
}

#[cfg(test)]
#[path = "correlate_test.rs"]
mod tests;
