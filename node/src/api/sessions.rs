//! `GET /api/v1/sessions?service=&status=error&since=&limit=`: recent
//! sessions, newest first.
//!
//! Listings are answered from the archive's time index (and its service
//! index when `service` is given), on the blocking pool, and each call
//! looks at a bounded number of index entries
//! ([`crate::store::listing::EXAMINE_MAX`]). When it stopped there, the
//! answer says `stopped_early: true` and `next` holds the path and query
//! that continue it (`before=<Unix ms>`: archived sessions that finished
//! before then; live ones were in the first answer).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{params, ApiError, ApiState, Tenant};
use crate::query::{QueryBackend, SessionFilter, SessionListItem};

/// Query parameters, as text: each is checked in [`filter`] so that errors
/// name the parameter and value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionParams {
    service: Option<String>,
    /// `error` (only sessions with errors) or `all`.
    status: Option<String>,
    /// RFC 3339 time or a duration before now (`15m`).
    since: Option<String>,
    limit: Option<String>,
    /// Continues a listing that stopped early (Unix ms, from `next`).
    before: Option<String>,
    /// Read by the [`Tenant`] extractor; listed so it is not unknown here,
    /// and kept in `next`.
    tenant: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionListItem>,
    /// True when the scan behind this answer stopped at its bound: older
    /// sessions may match too; `next` continues.
    pub stopped_early: bool,
    /// Path and query of the continuation; `None` when the scan was whole.
    pub next: Option<String>,
}

pub async fn list<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    query: Result<Query<SessionParams>, QueryRejection>,
) -> Result<Json<SessionsResponse>, ApiError> {
    let params = params::query(query)?;
    let filter = filter(&params, state.clock.now_unix_ms())?;
    let listing = state.backend.session_listing(&tenant, &filter).await?;
    let mut sessions = listing.sessions;
    sessions.truncate(filter.limit);
    let next = listing.resume_before_unix_ms.map(|before| next_link(&params, &filter, before));
    Ok(Json(SessionsResponse { sessions, stopped_early: next.is_some(), next }))
}

/// The same listing, continued before `before` (Unix ms). A relative
/// `since` is pinned to the time it meant in this call.
fn next_link(p: &SessionParams, filter: &SessionFilter, before: u64) -> String {
    let mut query = vec![format!("before={before}"), format!("limit={}", filter.limit)];
    if let Some(service) = &filter.service {
        query.push(format!("service={}", params::encode_query_value(service)));
    }
    if filter.errors_only {
        query.push("status=error".to_owned());
    }
    if let Some(since) = filter.since_unix_ms {
        query.push(format!("since={}", params::encode_query_value(&crate::query::format_rfc3339_nanos(since.saturating_mul(1_000_000)))));
    }
    if let Some(tenant) = &p.tenant {
        query.push(format!("tenant={}", params::encode_query_value(tenant)));
    }
    format!("/api/v1/sessions?{}", query.join("&"))
}

fn filter(p: &SessionParams, now_unix_ms: u64) -> Result<SessionFilter, ApiError> {
    let errors_only = match p.status.as_deref() {
        None | Some("") | Some("all") => false,
        Some("error") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!("status {}: must be \"error\" or \"all\"", params::quoted(other))));
        }
    };
    Ok(SessionFilter {
        service: params::name("service", p.service.as_deref())?,
        errors_only,
        since_unix_ms: params::since(p.since.as_deref(), now_unix_ms)?,
        event_overlap_unix_nano: None,
        limit: params::limit(p.limit.as_deref())?,
        before_unix_ms: match p.before.as_deref() {
            None => None,
            Some(raw) => Some(raw.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("before {}: must be a time in Unix milliseconds (from `next`)", params::quoted(raw)))
            })?),
        },
    })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use super::super::fake::{app, get, FakeBackend, NOW_UNIX_MS};
    use crate::model::{CorrelationId, TenantId};
    use crate::query::SessionListItem;

    fn item(id: &str) -> SessionListItem {
        SessionListItem {
            correlation_id: CorrelationId::from_trusted(id),
            tenant_id: TenantId::default_tenant(),
            live: true,
            start: "2023-11-14T22:13:20.000000000Z".into(),
            end: "2023-11-14T22:13:20.100000000Z".into(),
            duration_ms: 100.0,
            total_spans: 3,
            total_logs: 2,
            total_metrics: 1,
            error_count: 2,
            services: vec!["checkout".into(), "frontend".into()],
            root_span: Some("GET /checkout".into()),
            last_seen_unix_ms: NOW_UNIX_MS,
        }
    }

    #[tokio::test]
    async fn lists_with_defaults() {
        let (app, backend) = app(FakeBackend { listed: vec![item("a"), item("b")], ..Default::default() }, false);
        let reply = get(&app, "/api/v1/sessions", &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.json();
        assert_eq!(body["sessions"][0]["correlation_id"], "a");
        assert_eq!(body["sessions"][1]["root_span"], "GET /checkout");
        assert_eq!(body["sessions"][0]["tenant_id"], "default");
        let filter = backend.last_session_filter.lock().clone().expect("asked");
        assert_eq!((filter.service, filter.errors_only, filter.since_unix_ms, filter.limit), (None, false, None, 50));
    }

    #[tokio::test]
    async fn parameters_become_the_filter() {
        let (app, backend) = app(FakeBackend::default(), false);
        let reply = get(&app, "/api/v1/sessions?service=checkout&status=error&since=15m&limit=7", &[]).await;
        assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!({"sessions": [], "stopped_early": false, "next": null})));
        let filter = backend.last_session_filter.lock().clone().expect("asked");
        assert_eq!(filter.service.as_deref(), Some("checkout"));
        assert!(filter.errors_only);
        assert_eq!(filter.since_unix_ms, Some(NOW_UNIX_MS - 15 * 60_000));
        assert_eq!(filter.limit, 7);

        get(&app, "/api/v1/sessions?status=all&since=2023-11-14T22:13:20Z", &[]).await;
        let filter = backend.last_session_filter.lock().clone().expect("asked");
        assert_eq!((filter.errors_only, filter.since_unix_ms), (false, Some(1_700_000_000_000)));
    }

    #[tokio::test]
    async fn bad_parameters_are_400_naming_them() {
        let (app, _) = app(FakeBackend::default(), false);
        let cases = [
            ("limit=0", "limit \"0\""),
            ("limit=1001", "limit \"1001\""),
            ("limit=many", "limit \"many\""),
            ("status=failed", "status \"failed\""),
            ("since=yesterday", "since \"yesterday\""),
            ("before=soon", "before \"soon\""),
            ("colour=red", "colour"),
        ];
        for (query, named) in cases {
            let reply = get(&app, &format!("/api/v1/sessions?{query}"), &[]).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
            let (code, message) = reply.error();
            assert_eq!(code, "bad_request");
            assert!(message.contains(named), "{query}: {message}");
        }
    }

    #[tokio::test]
    async fn tenant_parameter_is_not_unknown() {
        let (app, _) = app(FakeBackend::default(), true);
        assert_eq!(get(&app, "/api/v1/sessions?tenant=acme&limit=5", &[]).await.status, StatusCode::OK);
        assert_eq!(get(&app, "/api/v1/sessions?limit=5", &[]).await.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_listing_that_stopped_early_says_how_to_continue() {
        let backend = FakeBackend { listed: vec![item("a")], resume_before_unix_ms: Some(1_700_000_000_123), ..Default::default() };
        let (app, backend) = app(backend, false);
        let body = get(&app, "/api/v1/sessions?service=check%20out&status=error&since=2023-11-14T22:13:20Z&limit=5", &[]).await.json();
        assert_eq!(body["stopped_early"], json!(true));
        let next = body["next"].as_str().expect("next").to_owned();
        assert_eq!(
            next,
            "/api/v1/sessions?before=1700000000123&limit=5&service=check%20out&status=error&since=2023-11-14T22%3A13%3A20.000000000Z"
        );
        // Following it asks for the same filter, before the stop.
        assert_eq!(get(&app, &next, &[]).await.status, StatusCode::OK);
        let filter = backend.last_session_filter.lock().clone().expect("asked");
        assert_eq!(filter.before_unix_ms, Some(1_700_000_000_123));
        assert_eq!(
            (filter.service.as_deref(), filter.errors_only, filter.since_unix_ms),
            (Some("check out"), true, Some(1_700_000_000_000))
        );
    }
}
