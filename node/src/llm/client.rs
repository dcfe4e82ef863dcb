//! The HTTP call to a provider: hyper over rustls (ring, the system's root
//! certificates; plain http for local servers), one client per node, with
//! the configured timeout over the whole exchange and a bound on the
//! answer's size.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::provider::{answer_text, request};
use super::{LlmError, LlmSettings, Provider};

/// Largest answer body read, in bytes.
pub const ANSWER_BYTES_MAX: usize = 1 << 20;
/// Characters of an error body quoted in an error.
const ERROR_BODY_CHARS_MAX: usize = 200;

pub struct LlmClient {
    settings: LlmSettings,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient").field("settings", &self.settings).finish()
    }
}

impl LlmClient {
    pub fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let tls = match builder.with_provider_and_native_roots(provider.clone()) {
            Ok(tls) => tls,
            Err(e) => {
                // No system roots: https providers will fail (and say so per
                // answer); local http providers still work.
                tracing::warn!(error = %e, "no system root certificates; https llm providers will fail");
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| LlmError::Setup(e.to_string()))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let connector = tls.https_or_http().enable_http1().build();
        Ok(Self { settings, http: Client::builder(TokioExecutor::new()).build(connector) })
    }

    pub fn provider(&self) -> Provider {
        self.settings.provider
    }

    /// The provider's answer to `user` under `system`, within the timeout.
    pub async fn complete(&self, system: &str, user: &str) -> Result<String, LlmError> {
        let timeout_ms = self.settings.timeout.as_millis() as u64;
        tokio::time::timeout(self.settings.timeout, self.exchange(system, user)).await.map_err(|_| LlmError::Timeout(timeout_ms))?
    }

    async fn exchange(&self, system: &str, user: &str) -> Result<String, LlmError> {
        let call = request(&self.settings, system, user);
        let body = serde_json::to_vec(&call.body).map_err(|e| LlmError::Setup(e.to_string()))?;
        let mut req = Request::post(call.url.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| LlmError::Setup(e.to_string()))?;
        for (name, value) in &call.headers {
            let value = HeaderValue::from_str(value).map_err(|_| LlmError::Setup(format!("header {name} is not a valid value")))?;
            req.headers_mut().insert(HeaderName::from_static(name), value);
        }
        let response = self.http.request(req).await.map_err(|e| LlmError::Transport(chain(&e)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), ANSWER_BYTES_MAX)
            .collect()
            .await
            .map_err(|e| LlmError::BadAnswer(format!("reading the answer failed (over {ANSWER_BYTES_MAX} bytes?): {e}")))?
            .to_bytes();
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&body).chars().take(ERROR_BODY_CHARS_MAX).collect();
            return Err(LlmError::Status { status: status.as_u16(), body: text });
        }
        let answer: Value = serde_json::from_slice(&body).map_err(|e| LlmError::BadAnswer(format!("not JSON: {e}")))?;
        answer_text(self.settings.provider, &answer)
    }
}

/// An error with its sources ("client error (Connect): connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
