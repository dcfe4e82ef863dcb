//! Serving tonic services on a [`Transport`](super::Transport) listener,
//! HTTP/2 only.
//!
//! tonic's own `Server` would do, but its hyper server stamps every
//! response with a `Date` header read from the wall clock. gRPC has no use
//! for it (grpc-go sends none), and under simulation it was the one
//! wall-clock value on the wire: its HPACK encoding changes with the
//! second, which changed frame sizes and so the simulated network's draws,
//! and a seed did not always replay. Here the header is off; the rest is
//! what tonic's server did for us: HTTP/2 with hyper's defaults, the
//! client's `grpc-timeout` deadline, service errors answered as gRPC
//! statuses, and a graceful stop (GOAWAY, then wait for open calls).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tonic::body::Body;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tonic::codegen::Service;
use tonic::service::RecoverError;

use super::transport::{accept_retrying, Acceptor, Peer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `service` (tonic routes, possibly layered) on `acceptor` until
/// `shutdown` resolves, then lets open connections finish their calls.
pub async fn serve_grpc<S>(mut acceptor: Box<dyn Acceptor>, service: S, shutdown: impl Future<Output = ()>)
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
{
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new()).auto_date_header(false);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            () = &mut shutdown => break,
            conn = accept_retrying(acceptor.as_mut()) => conn,
        };
        let peer = conn.peer.clone();
        let service = TowerToHyperService::new(RecoverError::new(Deadline { inner: service.clone(), peer }));
        let connection = graceful.watch(http2.serve_connection(TokioIo::new(conn), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "gRPC connection ended with an error");
            }
        });
    }
    // Stop accepting (the listener closes now), then drain.
    drop(acceptor);
    graceful.shutdown().await;
}

/// Hands hyper's requests to the service with the connection's [`Peer`]
/// in their extensions (services authorize by it), ending a call at the
/// client's `grpc-timeout` with [`tonic::TimeoutExpired`] (answered as
/// CANCELLED "Timeout expired", as tonic's server does).
#[derive(Clone)]
struct Deadline<S> {
    inner: S,
    peer: Peer,
}

impl<S> Service<Request<Incoming>> for Deadline<S>
where
    S: Service<Request<Body>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.peer.clone());
        let deadline = grpc_timeout(request.headers());
        let call = self.inner.call(request.map(Body::new));
        Box::pin(async move {
            match deadline {
                None => call.await.map_err(Into::into),
                Some(after) => match tokio::time::timeout(after, call).await {
                    Ok(result) => result.map_err(Into::into),
                    Err(_) => Err(tonic::TimeoutExpired(()).into()),
                },
            }
        })
    }
}

/// The `grpc-timeout` header: at most 8 digits and a unit (H, M, S, m, u,
/// n). A malformed value means no deadline, as in tonic.
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3_600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().expect("header value"));
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(timeout_of("500m"), Some(Duration::from_millis(500)));
        assert_eq!(timeout_of("2S"), Some(Duration::from_secs(2)));
        assert_eq!(timeout_of("1H"), Some(Duration::from_secs(3_600)));
        assert_eq!(timeout_of("3M"), Some(Duration::from_secs(180)));
        assert_eq!(timeout_of("7u"), Some(Duration::from_micros(7)));
        assert_eq!(timeout_of("9n"), Some(Duration::from_nanos(9)));
    }

    #[test]
    fn malformed_grpc_timeout_means_no_deadline() {
        for bad in ["", "m", "123456789m", "5x", "-5m", "5.0S", "5 m"] {
            assert_eq!(timeout_of(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }
}
