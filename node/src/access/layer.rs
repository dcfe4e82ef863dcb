//! The tower layer that authenticates every request on an OTLP or API
//! listener before anything else runs (no body is read for a caller
//! refused). A caller let in travels with its request as a [`Caller`]
//! extension; on the OTLP ports a caller bound to a tenant also gets a
//! [`PinTenant`], which the receivers apply to the decoded batch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{self, HeaderMap};

use super::store::TokenStore;
use super::tokens::{Caller, Denied, Scope};
use crate::model::TenantId;

/// The tenant an ingest caller's data goes to, whatever its attributes
/// say: written as the resource attribute `attribute` of every resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinTenant {
    pub attribute: Arc<str>,
    pub tenant: TenantId,
}

/// Answers a refused call in the listener's own terms.
pub type Reject<B> = fn(&Denied, &HeaderMap) -> http::Response<B>;

/// Requires a token with a scope.
pub struct AuthLayer<B> {
    tokens: Arc<TokenStore>,
    /// The scope a request needs (given its path).
    scope: fn(&str) -> Option<Scope>,
    /// Set on the OTLP ports when tenancy is on: the tenant attribute.
    pin: Option<Arc<str>>,
    reject: Reject<B>,
}

impl<B> Clone for AuthLayer<B> {
    fn clone(&self) -> Self {
        Self { tokens: self.tokens.clone(), scope: self.scope, pin: self.pin.clone(), reject: self.reject }
    }
}

impl<B> AuthLayer<B> {
    /// `scope` maps a request path to the scope it needs (`None`: open to
    /// everyone, like a health check).
    pub fn new(tokens: Arc<TokenStore>, scope: fn(&str) -> Option<Scope>, reject: Reject<B>) -> Self {
        Self { tokens, scope, pin: None, reject }
    }

    /// Pins a tenant-bound caller's data to its tenant through `attribute`.
    pub fn pinning(mut self, attribute: Option<&str>) -> Self {
        self.pin = attribute.map(Arc::from);
        self
    }
}

impl<S, B> tower::Layer<S> for AuthLayer<B> {
    type Service = Auth<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth { inner, layer: self.clone() }
    }
}

/// [`AuthLayer`] around a service.
pub struct Auth<S, B> {
    inner: S,
    layer: AuthLayer<B>,
}

impl<S: Clone, B> Clone for Auth<S, B> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), layer: self.layer.clone() }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, B> tower::Service<http::Request<ReqBody>> for Auth<S, B>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let Some(scope) = (self.layer.scope)(request.uri().path()) else {
            return Box::pin(self.inner.call(request));
        };
        let tokens = self.layer.tokens.current();
        let authorization = request.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
        match tokens.authenticate(authorization, scope) {
            Ok(caller) => {
                if let (Some(attribute), Some(tenant)) = (&self.layer.pin, &caller.tenant) {
                    request.extensions_mut().insert(PinTenant { attribute: attribute.clone(), tenant: tenant.clone() });
                }
                request.extensions_mut().insert(caller);
                Box::pin(self.inner.call(request))
            }
            Err(denied) => {
                tracing::debug!(path = request.uri().path(), reason = %denied, "call refused");
                let response = (self.layer.reject)(&denied, request.headers());
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

/// The scope of every OTLP path.
pub fn ingest_scope(_path: &str) -> Option<Scope> {
    Some(Scope::Ingest)
}

/// The scope of an API path: health checks are open (orchestrators probe
/// them), everything else reads.
pub fn api_scope(path: &str) -> Option<Scope> {
    match path {
        "/healthz" | "/readyz" => None,
        _ => Some(Scope::Read),
    }
}

/// A caller from a request's extensions, if the listener authenticates.
pub fn caller_of(extensions: &http::Extensions) -> Option<&Caller> {
    extensions.get::<Caller>()
}

/// gRPC's answer: UNAUTHENTICATED or PERMISSION_DENIED.
pub fn reject_grpc(denied: &Denied, _headers: &HeaderMap) -> http::Response<tonic::body::Body> {
    denied.code().grpc_status(denied.to_string()).into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_are_open_and_the_rest_reads() {
        assert_eq!(api_scope("/healthz"), None);
        assert_eq!(api_scope("/readyz"), None);
        for path in ["/metrics", "/api/v1/correlate/x", "/api/v1/ai/rca", "/nope"] {
            assert_eq!(api_scope(path), Some(Scope::Read), "{path}");
        }
        assert_eq!(ingest_scope("/v1/traces"), Some(Scope::Ingest));
    }
}
