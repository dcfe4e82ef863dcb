//! Optional LLM providers that only *phrase* a computed result: the cause
//! is found by analysis ([`crate::rca`]); a model may rewrite the
//! deterministic explanation for people, never add to it.
//!
//! Off by default (`[llm]` in the config). When on, the prompt is the
//! computed result as JSON plus an instruction not to add causes; on a
//! timeout or any error the deterministic text is answered and the answer
//! says so (`explanation_source`, `explanation_error`).
//!
//! * `provider.rs`: each provider's request and answer shape (pure).
//! * `prompt.rs`: the prompt (pure, bounded).
//! * `client.rs`: the HTTP call (hyper over rustls with ring), bounded in time and size.

mod client;
mod prompt;
mod provider;

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::secret::Secret;

pub use client::LlmClient;
pub use prompt::{prompt, PROMPT_BYTES_MAX};
pub use provider::{answer_text, request, HttpCall};

/// Which API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `POST {url}/v1/chat/completions` (OpenAI and compatible servers).
    OpenAi,
    /// `POST {url}/v1/messages`.
    Anthropic,
    /// `POST {url}/api/chat`.
    Ollama,
}

impl Provider {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "ollama" => Some(Self::Ollama),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Ollama => "ollama",
        }
    }

    /// The base URL used when the config names none.
    pub fn default_url(self) -> &'static str {
        match self {
            Self::OpenAi => "https://api.openai.com",
            Self::Anthropic => "https://api.anthropic.com",
            Self::Ollama => "http://127.0.0.1:11434",
        }
    }
}

/// A validated `[llm]` config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    pub provider: Provider,
    /// Base URL without the API path and without a trailing `/`.
    pub url: String,
    pub model: String,
    /// Empty: no key is sent (local servers).
    pub api_key: Secret,
    pub timeout: Duration,
}

/// Why a provider gave no text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("timed out after {0} ms")]
    Timeout(u64),
    #[error("answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("request failed: {0}")]
    Transport(String),
    #[error("unexpected answer: {0}")]
    BadAnswer(String),
    #[error("client setup failed: {0}")]
    Setup(String),
}

impl LlmError {
    /// The error as API callers see it: its kind and status, never the
    /// provider's text.
    pub fn public(&self) -> String {
        match self {
            Self::Timeout(ms) => format!("timed out after {ms} ms"),
            Self::Status { status, .. } => format!("answered HTTP {status}"),
            Self::Transport(_) => "request failed".to_owned(),
            Self::BadAnswer(_) => "gave an unexpected answer".to_owned(),
            Self::Setup(_) => "client setup failed".to_owned(),
        }
    }
}

/// The explanation an answer carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub text: String,
    /// `deterministic` or `llm:<provider>`.
    pub source: String,
    /// Why a configured provider's text is not used.
    pub error: Option<String>,
}

/// LLM calls in flight per node, at most: each holds an API request open
/// for up to the LLM timeout and costs the operator money, so a burst of
/// RCA requests must not become a burst of provider calls. Beyond it the
/// deterministic text is answered at once.
pub const CALLS_IN_FLIGHT_MAX: usize = 4;

/// Phrases computed results: deterministic, or through one provider.
#[derive(Debug)]
pub struct Explainer {
    client: Option<LlmClient>,
    calls: tokio::sync::Semaphore,
}

impl Default for Explainer {
    fn default() -> Self {
        Self { client: None, calls: tokio::sync::Semaphore::new(CALLS_IN_FLIGHT_MAX) }
    }
}

impl Explainer {
    /// Deterministic text only.
    pub fn off() -> Self {
        Self::default()
    }

    pub fn new(settings: Option<LlmSettings>) -> Result<Self, LlmError> {
        Ok(Self { client: settings.map(LlmClient::new).transpose()?, ..Self::default() })
    }

    /// The provider's phrasing of `computed` (whose deterministic text is
    /// `deterministic`), or that text when no provider is set or it failed.
    pub async fn explain(&self, computed: &Value, deterministic: String) -> Explanation {
        let Some(client) = &self.client else {
            return Explanation { text: deterministic, source: "deterministic".to_owned(), error: None };
        };
        let name = client.provider().as_str();
        let Ok(_call) = self.calls.try_acquire() else {
            return Explanation {
                text: deterministic,
                source: "deterministic".to_owned(),
                error: Some(format!("llm:{name} busy ({CALLS_IN_FLIGHT_MAX} calls in flight); the deterministic explanation is answered")),
            };
        };
        let (system, user) = prompt(computed, &deterministic);
        match client.complete(&system, &user).await {
            Ok(text) => Explanation { text, source: format!("llm:{name}"), error: None },
            Err(e) => {
                tracing::warn!(provider = name, error = %e, "llm explanation failed; answering the deterministic text");
                Explanation {
                    text: deterministic,
                    source: "deterministic".to_owned(),
                    // What went wrong, not what the provider said: its
                    // error text is logged only (it may echo the request,
                    // a key, or internals of the provider).
                    error: Some(format!("llm:{name} {}; the deterministic explanation is answered", e.public())),
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "client_test.rs"]
mod client_test;
