//! The tenant of a request: [`TenantId::default_tenant`] when tenancy is
//! off; else the tenant of the caller's token when it is bound to one
//! (whatever the request says); else the `X-Tenant-ID` header or the
//! `tenant` query parameter, which must then be present and well-formed.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use super::params::quoted;
use super::{ApiError, ApiState};
use crate::correlate::{is_tenant_name, TENANT_ID_BYTES_MAX};
use crate::model::TenantId;
use crate::query::QueryBackend;

/// Header naming the tenant (wins over the query parameter).
pub const TENANT_HEADER: &str = "x-tenant-id";

/// Extracted tenant of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub TenantId);

#[derive(serde::Deserialize)]
struct TenantParam {
    tenant: Option<String>,
}

impl<B: QueryBackend> FromRequestParts<ApiState<B>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState<B>) -> Result<Self, ApiError> {
        if !state.tenancy_enabled {
            return Ok(Tenant(TenantId::default_tenant()));
        }
        if let Some(tenant) = crate::access::layer::caller_of(&parts.extensions).and_then(|c| c.tenant.clone()) {
            return Ok(Tenant(tenant));
        }
        let raw = match parts.headers.get(TENANT_HEADER) {
            Some(value) => {
                value.to_str().map(str::to_owned).map_err(|_| ApiError::bad_request("header X-Tenant-ID: must be visible ASCII"))?
            }
            None => Query::<TenantParam>::try_from_uri(&parts.uri)
                .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?
                .0
                .tenant
                .ok_or_else(|| ApiError::bad_request("tenancy is on: send header X-Tenant-ID or query parameter tenant"))?,
        };
        tenant(&raw).map(Tenant)
    }
}

/// Stored tenants are 1..=64 bytes of `[A-Za-z0-9_-]` (ingest sanitizes
/// them so); anything else cannot name one.
fn tenant(raw: &str) -> Result<TenantId, ApiError> {
    if !is_tenant_name(raw) {
        return Err(ApiError::bad_request(format!(
            "tenant {}: must be 1 to {TENANT_ID_BYTES_MAX} characters of A-Z, a-z, 0-9, '_' and '-'",
            quoted(raw)
        )));
    }
    Ok(TenantId::from_trusted(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_checked() {
        assert_eq!(tenant("acme-1"), Ok(TenantId::from_trusted("acme-1")));
        for bad in ["", "acme corp", "a/b", &"t".repeat(TENANT_ID_BYTES_MAX + 1)] {
            assert!(tenant(bad).is_err(), "{bad:?} accepted");
        }
    }
}
