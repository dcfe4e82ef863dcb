//! API errors as JSON: `{"error": {"code": "not_found", "message": "…"}}`
//! with the HTTP status of their [`ErrorCode`].

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::access::Denied;
use crate::error::ErrorCode;
use crate::query::QueryError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    /// Says what was wrong, naming the parameter and value when the request was.
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`), for
    /// answers that shed load.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after_s: None }
    }

    /// Too much of this work is running: retry after `retry_after_s`.
    pub fn busy(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self { retry_after_s: Some(retry_after_s), ..Self::new(ErrorCode::ResourceExhausted, message) }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Unavailable(reason) => {
                tracing::warn!(%reason, "query unavailable");
                Self::new(ErrorCode::Unavailable, format!("unavailable: {reason}"))
            }
            QueryError::Storage(reason) => {
                tracing::error!(%reason, "query storage error");
                Self::internal(format!("storage error: {reason}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code.as_str(), "message": self.message } });
        let mut response = (self.code.http_status(), Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

/// The API's answer to a call its listener's [`AuthLayer`](crate::access::AuthLayer)
/// refused: its JSON error, 401 (with `WWW-Authenticate`) or 403.
pub fn reject_api(denied: &Denied, _headers: &HeaderMap) -> Response {
    let mut response = ApiError::new(denied.code(), denied.to_string()).into_response();
    if denied.code() == ErrorCode::Unauthenticated {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn query_errors_map_to_503_and_500() {
        let unavailable = ApiError::from(QueryError::Unavailable("owner down".into()));
        assert_eq!(unavailable.code.http_status(), StatusCode::SERVICE_UNAVAILABLE);
        let storage = ApiError::from(QueryError::Storage("sled".into()));
        assert_eq!(storage.code.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(storage.message, "storage error: sled");
    }

    #[tokio::test]
    async fn body_names_code_and_message() {
        let response = ApiError::bad_request("limit \"x\" is not a number").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(json, serde_json::json!({"error": {"code": "bad_request", "message": "limit \"x\" is not a number"}}));
    }
}
