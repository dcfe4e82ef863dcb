//! `GET /api/v1/metrics/{name}/exemplars?start=&end=&service=&limit=`:
//! exemplars of a metric in an event-time window, each with its session.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

use super::{params, ApiError, ApiState, Tenant};
use crate::query::{self, ExemplarFilter, ExemplarsResponse, QueryBackend};

/// Query parameters, as text (checked in [`filter`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExemplarParams {
    /// Inclusive bounds: RFC 3339 UTC or Unix nanoseconds.
    start: Option<String>,
    end: Option<String>,
    service: Option<String>,
    limit: Option<String>,
    /// Read by the [`Tenant`] extractor; listed so it is not unknown here.
    #[allow(dead_code)]
    tenant: Option<String>,
}

pub async fn list<B: QueryBackend>(
    State(state): State<ApiState<B>>,
    Tenant(tenant): Tenant,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<ExemplarParams>, QueryRejection>,
) -> Result<Json<ExemplarsResponse>, ApiError> {
    let filter = filter(params::path(name)?, &params::query(query)?)?;
    let mut hits = state.backend.exemplars(&tenant, &filter).await?;
    hits.truncate(filter.limit);
    Ok(Json(query::exemplars_view(&filter.metric_name, &hits)))
}

fn filter(name: String, p: &ExemplarParams) -> Result<ExemplarFilter, ApiError> {
    let metric_name = params::name("metric name", Some(&name))?.ok_or_else(|| ApiError::bad_request("metric name is empty"))?;
    let start_unix_nano = params::event_time("start", p.start.as_deref())?;
    let end_unix_nano = params::event_time("end", p.end.as_deref())?;
    if let (Some(start), Some(end)) = (start_unix_nano, end_unix_nano) {
        if start > end {
            return Err(ApiError::bad_request(format!("start {start} is after end {end} (Unix ns)")));
        }
    }
    Ok(ExemplarFilter {
        metric_name,
        start_unix_nano,
        end_unix_nano,
        service: params::name("service", p.service.as_deref())?,
        limit: params::limit(p.limit.as_deref())?,
    })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use super::super::fake::{app, get, FakeBackend};
    use crate::model::CorrelationId;
    use crate::query::fixtures::{exemplar, T0};
    use crate::query::ExemplarHit;

    fn with_hits() -> FakeBackend {
        let hit = |id: &str, t| ExemplarHit {
            correlation_id: CorrelationId::from_trusted(id),
            exemplar: exemplar("api", "latency", t, 0.2, 1, 1),
        };
        FakeBackend { hits: vec![hit("a", T0), hit("b", T0 + 1)], ..Default::default() }
    }

    #[tokio::test]
    async fn lists_exemplars_with_their_sessions() {
        let (app, backend) = app(with_hits(), false);
        let uri = "/api/v1/metrics/latency/exemplars?start=2023-11-14T22:13:20Z&end=1700000001000000000&service=api&limit=1";
        let reply = get(&app, uri, &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.json();
        assert_eq!(body["metric_name"], "latency");
        assert_eq!(body["exemplars"].as_array().map(Vec::len), Some(1), "limit enforced");
        assert_eq!(
            body["exemplars"][0],
            json!({
                "correlation_id": "a", "timestamp": "2023-11-14T22:13:20.000000000Z", "metric_name": "latency", "value": 0.2,
                "trace_id": "01".repeat(16), "span_id": "01".repeat(8), "service_name": "api", "labels": {"route": "/checkout"}
            })
        );
        let filter = backend.last_exemplar_filter.lock().clone().expect("asked");
        assert_eq!(filter.metric_name, "latency");
        assert_eq!((filter.start_unix_nano, filter.end_unix_nano), (Some(T0), Some(1_700_000_001_000_000_000)));
        assert_eq!((filter.service.as_deref(), filter.limit), (Some("api"), 1));
    }

    #[tokio::test]
    async fn defaults_and_bad_parameters() {
        let (app, backend) = app(with_hits(), false);
        assert_eq!(get(&app, "/api/v1/metrics/http.server.duration/exemplars", &[]).await.status, StatusCode::OK);
        let filter = backend.last_exemplar_filter.lock().clone().expect("asked");
        assert_eq!((filter.start_unix_nano, filter.end_unix_nano, filter.limit), (None, None, 50));
        for (query, named) in
            [("start=soon", "start \"soon\""), ("end=x", "end \"x\""), ("start=5&end=4", "after end"), ("limit=0", "limit")]
        {
            let reply = get(&app, &format!("/api/v1/metrics/latency/exemplars?{query}"), &[]).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
            assert!(reply.error().1.contains(named), "{query}: {}", reply.error().1);
        }
    }
}
