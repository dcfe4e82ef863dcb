//! Explanations through each provider's API, spoken by a local axum server
//! on 127.0.0.1:0 that checks the request's shape and returns a canned
//! answer; and the fallbacks (timeout, error status, off).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::*;

type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A server answering `path` with `answer`, recording what it was sent.
async fn provider_server(path: &str, answer: Value) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let handler = move |State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>| {
        let answer = answer.clone();
        async move {
            seen.lock().push((headers, body));
            Json(answer)
        }
    };
    let url = serve(Router::new().route(path, post(handler)).with_state(seen.clone())).await;
    (url, seen)
}

fn settings(provider: Provider, url: &str, api_key: &str, timeout_ms: u64) -> LlmSettings {
    LlmSettings {
        provider,
        url: url.to_owned(),
        model: "test-model".into(),
        api_key: api_key.into(),
        timeout: Duration::from_millis(timeout_ms),
    }
}

fn computed() -> Value {
    json!({"root_cause": {"service": "db", "operation": "query", "kind": "latency"}, "explanation": "Most likely root cause: db query."})
}

async fn explain(s: LlmSettings) -> Explanation {
    Explainer::new(Some(s)).expect("client").explain(&computed(), "Most likely root cause: db query.".into()).await
}

#[tokio::test]
async fn openai_compatible_chat_completions() {
    let answer = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "The db query got slow."}}]});
    let (url, seen) = provider_server("/v1/chat/completions", answer).await;
    let e = explain(settings(Provider::OpenAi, &url, "sk-test", 5_000)).await;
    assert_eq!((e.text.as_str(), e.source.as_str(), e.error), ("The db query got slow.", "llm:openai", None));
    let (headers, body) = seen.lock()[0].clone();
    assert_eq!(headers["authorization"], "Bearer sk-test");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["model"], "test-model");
    assert_eq!((body["messages"][0]["role"].clone(), body["messages"][1]["role"].clone()), (json!("system"), json!("user")));
    assert!(body["messages"][0]["content"].as_str().is_some_and(|s| s.contains("Do not add causes")));
    let user = body["messages"][1]["content"].as_str().expect("user");
    assert!(user.contains(r#""root_cause":{"kind":"latency","operation":"query","service":"db"}"#), "{user}");
}

#[tokio::test]
async fn anthropic_messages() {
    let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "db query is slow."}]});
    let (url, seen) = provider_server("/v1/messages", answer).await;
    let e = explain(settings(Provider::Anthropic, &url, "ak-test", 5_000)).await;
    assert_eq!((e.text.as_str(), e.source.as_str()), ("db query is slow.", "llm:anthropic"));
    let (headers, body) = seen.lock()[0].clone();
    assert_eq!(headers["x-api-key"], "ak-test");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert!(!headers.contains_key("authorization"));
    assert!(body["system"].as_str().is_some_and(|s| s.contains("Do not add causes")));
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["max_tokens"], 600);
}

#[tokio::test]
async fn ollama_chat_without_streaming() {
    let answer = json!({"model": "test-model", "message": {"role": "assistant", "content": "db query."}, "done": true});
    let (url, seen) = provider_server("/api/chat", answer).await;
    let e = explain(settings(Provider::Ollama, &url, "", 5_000)).await;
    assert_eq!((e.text.as_str(), e.source.as_str()), ("db query.", "llm:ollama"));
    let (headers, body) = seen.lock()[0].clone();
    assert_eq!(body["stream"], false);
    assert_eq!(body["model"], "test-model");
    assert!(!headers.contains_key("authorization"), "no key configured, none sent");
}

#[tokio::test]
async fn a_provider_that_never_answers_falls_back_to_the_deterministic_text() {
    let never = Router::new().route("/v1/chat/completions", post(std::future::pending::<&'static str>));
    let url = serve(never).await;
    let e = explain(settings(Provider::OpenAi, &url, "k", 200)).await;
    assert_eq!((e.text.as_str(), e.source.as_str()), ("Most likely root cause: db query.", "deterministic"));
    let error = e.error.expect("says why");
    assert!(error.contains("llm:openai timed out after 200 ms"), "{error}");
}

#[tokio::test]
async fn error_answers_and_unreachable_providers_fall_back_too() {
    let busy = Router::new().route("/api/chat", post(|| async { (StatusCode::TOO_MANY_REQUESTS, "slow down") }));
    let url = serve(busy).await;
    let e = explain(settings(Provider::Ollama, &url, "", 5_000)).await;
    assert_eq!(e.source, "deterministic");
    // The status, not the provider's text (it is logged only).
    assert!(e.error.as_deref().is_some_and(|m| m.contains("HTTP 429") && !m.contains("slow down")), "{e:?}");
    let (url, _) = provider_server("/v1/messages", json!({"content": []})).await;
    let e = explain(settings(Provider::Anthropic, &url, "k", 5_000)).await;
    assert!(e.error.as_deref().is_some_and(|m| m.contains("unexpected answer")), "{e:?}");
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let e = explain(settings(Provider::OpenAi, &format!("http://{closed}"), "k", 5_000)).await;
    assert!(e.error.as_deref().is_some_and(|m| m.contains("request failed")), "{e:?}");
}

#[tokio::test]
async fn off_is_deterministic_without_error() {
    let e = Explainer::off().explain(&computed(), "text".into()).await;
    assert_eq!(e, Explanation { text: "text".into(), source: "deterministic".into(), error: None });
}

#[test]
fn api_callers_see_the_kind_of_error_not_the_providers_text() {
    let leaky = LlmError::Status { status: 401, body: "invalid key sk-live-123 for org acme".into() };
    assert_eq!(leaky.public(), "answered HTTP 401");
    assert!(!LlmError::Transport("dns error for internal-host.corp".into()).public().contains("corp"));
    assert!(!LlmError::BadAnswer("{\"secret\":1}".into()).public().contains("secret"));
}

#[tokio::test]
async fn calls_beyond_the_bound_answer_the_deterministic_text_at_once() {
    let never = Router::new().route("/v1/chat/completions", post(std::future::pending::<&'static str>));
    let url = serve(never).await;
    let explainer = Arc::new(Explainer::new(Some(settings(Provider::OpenAi, &url, "k", 60_000))).expect("client"));
    let computed = json!({"root_cause": "db"});
    let stuck: Vec<_> = (0..CALLS_IN_FLIGHT_MAX)
        .map(|_| {
            let (e, c) = (explainer.clone(), computed.clone());
            tokio::spawn(async move { e.explain(&c, "d".into()).await })
        })
        .collect();
    // Until every bounded call is in flight.
    while explainer.calls.available_permits() > 0 {
        tokio::task::yield_now().await;
    }
    let e = tokio::time::timeout(Duration::from_secs(5), explainer.explain(&computed, "d".into())).await.expect("answered at once");
    assert_eq!(e.source, "deterministic");
    assert!(e.error.as_deref().is_some_and(|m| m.contains("busy")), "{e:?}");
    for s in stuck {
        s.abort();
    }
}
