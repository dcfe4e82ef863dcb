//! Each provider's request and answer shape. Pure: no sockets.

use serde_json::{json, Value};

use super::{LlmError, LlmSettings, Provider};

/// Longest explanation kept from a provider, in characters.
pub const ANSWER_CHARS_MAX: usize = 4_000;
/// Tokens a provider may generate (Anthropic requires a bound).
const MAX_TOKENS: u32 = 600;
/// The Anthropic API version spoken.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// One HTTP request to a provider (always a JSON POST).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub url: String,
    /// Besides `content-type: application/json`.
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

/// The request asking `s`'s provider to answer `user` under `system`.
pub fn request(s: &LlmSettings, system: &str, user: &str) -> HttpCall {
    let messages = json!([{"role": "system", "content": system}, {"role": "user", "content": user}]);
    let bearer = (!s.api_key.is_empty()).then(|| ("authorization", format!("Bearer {}", s.api_key.expose())));
    match s.provider {
        Provider::OpenAi => HttpCall {
            url: format!("{}/v1/chat/completions", s.url),
            headers: bearer.into_iter().collect(),
            body: json!({"model": s.model, "messages": messages, "temperature": 0, "max_tokens": MAX_TOKENS}),
        },
        Provider::Anthropic => HttpCall {
            url: format!("{}/v1/messages", s.url),
            headers: vec![("x-api-key", s.api_key.expose().to_owned()), ("anthropic-version", ANTHROPIC_VERSION.to_owned())],
            body: json!({
                "model": s.model,
                "max_tokens": MAX_TOKENS,
                "temperature": 0,
                "system": system,
                "messages": [{"role": "user", "content": user}],
            }),
        },
        Provider::Ollama => HttpCall {
            url: format!("{}/api/chat", s.url),
            headers: bearer.into_iter().collect(),
            body: json!({"model": s.model, "messages": messages, "stream": false, "options": {"temperature": 0}}),
        },
    }
}

/// The text of a provider's answer, cut to [`ANSWER_CHARS_MAX`]; an error
/// when the answer has none.
pub fn answer_text(provider: Provider, answer: &Value) -> Result<String, LlmError> {
    let text = match provider {
        Provider::OpenAi => answer["choices"][0]["message"]["content"].as_str().map(str::to_owned),
        Provider::Anthropic => answer["content"]
            .as_array()
            .map(|blocks| blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join("")),
        Provider::Ollama => answer["message"]["content"].as_str().map(str::to_owned),
    };
    let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let text = text.ok_or_else(|| LlmError::BadAnswer(format!("no text in the {} answer", provider.as_str())))?;
    Ok(text.chars().take(ANSWER_CHARS_MAX).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(provider: Provider, key: &str) -> LlmSettings {
        LlmSettings { provider, url: "http://h".into(), model: "m".into(), api_key: key.into(), timeout: Duration::from_secs(1) }
    }

    #[test]
    fn requests_follow_each_api() {
        let openai = request(&settings(Provider::OpenAi, "k"), "sys", "usr");
        assert_eq!(openai.url, "http://h/v1/chat/completions");
        assert_eq!(openai.headers, vec![("authorization", "Bearer k".to_owned())]);
        assert_eq!(openai.body["messages"][0], json!({"role": "system", "content": "sys"}));
        let anthropic = request(&settings(Provider::Anthropic, "k"), "sys", "usr");
        assert_eq!(anthropic.url, "http://h/v1/messages");
        assert_eq!(anthropic.body["system"], "sys");
        assert_eq!(anthropic.body["messages"], json!([{"role": "user", "content": "usr"}]));
        assert!(anthropic.headers.contains(&("anthropic-version", ANTHROPIC_VERSION.to_owned())));
        let ollama = request(&settings(Provider::Ollama, ""), "sys", "usr");
        assert_eq!((ollama.url.as_str(), ollama.body["stream"].clone()), ("http://h/api/chat", json!(false)));
        assert!(ollama.headers.is_empty(), "no key, no header");
    }

    #[test]
    fn answers_are_read_per_api_and_bounded() {
        let openai = json!({"choices": [{"message": {"role": "assistant", "content": " db is slow "}}]});
        assert_eq!(answer_text(Provider::OpenAi, &openai), Ok("db is slow".to_owned()));
        let anthropic = json!({"content": [{"type": "text", "text": "db "}, {"type": "text", "text": "is slow"}]});
        assert_eq!(answer_text(Provider::Anthropic, &anthropic), Ok("db is slow".to_owned()));
        let ollama = json!({"message": {"content": "x".repeat(10_000)}});
        assert_eq!(answer_text(Provider::Ollama, &ollama).map(|t| t.len()), Ok(ANSWER_CHARS_MAX));
        assert!(matches!(answer_text(Provider::OpenAi, &json!({"choices": []})), Err(LlmError::BadAnswer(_))));
        assert!(answer_text(Provider::Ollama, &json!({"message": {"content": "  "}})).is_err());
    }
}
