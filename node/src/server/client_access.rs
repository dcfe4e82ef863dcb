//! What the OTLP and API listeners need to authenticate their callers:
//! TLS from `[client_tls]`, bearer tokens from `[auth]` (both re-read when
//! their files change), and the tower layers that check each call.

use std::sync::Arc;
use std::time::Duration;

use ollystack_cluster::net::{Acceptor, ServerTls};
use tokio::sync::watch;

use super::error::NodeError;
use crate::access::layer::{api_scope, ingest_scope, reject_grpc};
use crate::access::{AuthLayer, TokenStore};
use crate::api::reject_api;
use crate::clock::SharedClock;
use crate::config::ClientAccess;
use crate::receive::reject_http;

/// How often the TLS and tokens files are checked for changes.
const RELOAD_MS: u64 = 10_000;

/// A node's client-facing access settings, loaded.
#[derive(Debug, Clone, Default)]
pub struct ClientGate {
    pub tls: Option<Arc<ServerTls>>,
    pub tokens: Option<Arc<TokenStore>>,
    /// Set when tenancy is on: a tenant-bound ingest token's data goes to
    /// its tenant through this resource attribute.
    pub tenant_attribute: Option<String>,
}

impl ClientGate {
    /// Reads the files; a bad file stops the start.
    pub fn load(access: &ClientAccess, tenant_attribute: Option<String>) -> Result<Self, NodeError> {
        let tls = match &access.tls {
            Some(files) => Some(ServerTls::new(files.clone()).map_err(|e| NodeError::Startup(format!("client TLS: {e}")))?),
            None => None,
        };
        let tokens = match &access.tokens_file {
            Some(path) => Some(Arc::new(TokenStore::open(path).map_err(|e| NodeError::Startup(format!("tokens file: {e}")))?)),
            None => None,
        };
        Ok(Self { tls, tokens, tenant_attribute })
    }

    /// `listener`, serving TLS when it is configured.
    pub fn wrap(&self, listener: Box<dyn Acceptor>) -> Result<Box<dyn Acceptor>, NodeError> {
        match &self.tls {
            Some(tls) => tls.wrap(listener).map_err(|e| NodeError::Startup(format!("client TLS: {e}"))),
            None => Ok(listener),
        }
    }

    pub fn grpc_layer(&self) -> Option<AuthLayer<tonic::body::Body>> {
        let tokens = self.tokens.clone()?;
        Some(AuthLayer::new(tokens, ingest_scope, reject_grpc).pinning(self.tenant_attribute.as_deref()))
    }

    pub fn http_layer(&self) -> Option<AuthLayer<axum::body::Body>> {
        let tokens = self.tokens.clone()?;
        Some(AuthLayer::new(tokens, ingest_scope, reject_http).pinning(self.tenant_attribute.as_deref()))
    }

    pub fn api_layer(&self) -> Option<AuthLayer<axum::body::Body>> {
        Some(AuthLayer::new(self.tokens.clone()?, api_scope, reject_api))
    }

    /// Re-reads the files when they change, until `stop`.
    pub async fn reload(self, clock: SharedClock, mut stop: watch::Receiver<bool>) {
        if self.tls.is_none() && self.tokens.is_none() {
            return;
        }
        loop {
            tokio::select! {
                _ = clock.sleep(Duration::from_millis(RELOAD_MS)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Some(tls) = &self.tls {
                match tls.reload_if_changed() {
                    Ok(true) => tracing::info!("client TLS files changed; new connections use them"),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "client TLS files changed but cannot be used; keeping the ones in use"),
                }
            }
            if let Some(tokens) = &self.tokens {
                match tokens.reload_if_changed() {
                    Ok(Some(count)) => tracing::info!(tokens = count, "tokens file changed; its tokens are in force"),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "tokens file changed but cannot be used; keeping the tokens in force"),
                }
            }
        }
    }
}
