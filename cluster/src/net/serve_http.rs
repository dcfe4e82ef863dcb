//! Serving HTTP (1.1 and 2) on a [`Transport`](super::Transport) listener,
//! for the ports clients call (OTLP/HTTP, the API), with the bounds a
//! public port needs and axum's own server does not set: a deadline on
//! request headers (a client that opens a connection and sends nothing,
//! or headers a byte at a time, is cut off), a cap on open connections
//! (beyond it new ones are closed at once), a cap on concurrent requests
//! per HTTP/2 connection, and keep-alive pings that drop dead HTTP/2
//! peers. No `Date` header (nothing needs it, and under simulation it was
//! the one wall-clock value on the wire; see `serve`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::Service;

use super::transport::{accept_retrying, Acceptor};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The bounds of one HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpBounds {
    /// A request's headers must arrive within this (HTTP/1.1); it also
    /// bounds how long a keep-alive connection may sit idle between
    /// requests (checked by `idle_keep_alive_connections_are_closed`).
    pub header_read_timeout: Duration,
    /// Open connections, at most.
    pub max_connections: usize,
    /// Concurrent requests per HTTP/2 connection, at most.
    pub max_streams_per_connection: u32,
}

impl Default for HttpBounds {
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(10), max_connections: 4_096, max_streams_per_connection: 100 }
    }
}

/// Serves `service` on `acceptor` until `shutdown` resolves, then lets open
/// connections finish their requests.
pub async fn serve_http<S, B>(mut acceptor: Box<dyn Acceptor>, service: S, bounds: HttpBounds, shutdown: impl Future<Output = ()>)
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(bounds.header_read_timeout).auto_date_header(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(bounds.max_streams_per_connection)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .auto_date_header(false);
    let connections = Arc::new(Semaphore::new(bounds.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            () = &mut shutdown => break,
            conn = accept_retrying(acceptor.as_mut()) => conn,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::debug!(peer = %conn.peer.addr, limit = bounds.max_connections, "too many open connections; closing a new one");
            continue;
        };
        let connection =
            graceful.watch(builder.serve_connection(TokioIo::new(conn), TowerToHyperService::new(service.clone())).into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(acceptor);
    graceful.shutdown().await;
}
