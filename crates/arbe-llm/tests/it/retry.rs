//! Retries only what can succeed, only before anything streamed; fallback on quota and network.

use std::time::Duration;

use arbe_core::ErrorClass;
use arbe_llm::{ChatProvider, ProviderKind, RetryPolicy, Retrying, WithFallback, provider_for};
use serde_json::json;

use arbe_llm::testkit::{FakeModel, Reply};

use crate::{config, request};

fn ok_body(text: &str) -> serde_json::Value {
    json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
}

fn quick() -> RetryPolicy {
    RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(200) }
}

#[tokio::test]
async fn rate_limit_is_retried_after_the_asked_wait() {
    let limited = json!({"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}});
    let server = FakeModel::start(vec![
        Reply::json(429, limited).header("retry-after-ms", "50"),
        Reply::json(200, ok_body("finally")),
    ])
    .await;
    let provider = Retrying::new(provider_for(config(ProviderKind::OpenAi, &server.url, false)), quick());
    let started = std::time::Instant::now();
    let reply = provider.chat(&request("m"), &mut ()).await.unwrap();
    assert_eq!(reply.text, "finally");
    assert_eq!(server.received().len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(50), "the Retry-After wait was honoured");
}

#[tokio::test]
async fn auth_failure_is_not_retried() {
    let server = FakeModel::start(vec![
        Reply::json(401, json!({"error": {"message": "bad key"}})),
        Reply::json(200, ok_body("x")),
    ])
    .await;
    let provider = Retrying::new(provider_for(config(ProviderKind::OpenAi, &server.url, false)), quick());
    assert_eq!(provider.chat(&request("m"), &mut ()).await.unwrap_err().class(), ErrorClass::Auth);
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_attempt_limit() {
    let down = || Reply::json(503, json!({"error": {"code": 503, "message": "down"}}));
    let server = FakeModel::start(vec![down(), down(), down(), down()]).await;
    let provider = Retrying::new(provider_for(config(ProviderKind::OpenRouter, &server.url, true)), quick());
    assert_eq!(provider.chat(&request("m"), &mut ()).await.unwrap_err().class(), ErrorClass::Network);
    assert_eq!(server.received().len(), 3);
}

#[tokio::test]
async fn a_reply_that_started_streaming_is_never_retried() {
    let text =
        format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]}));
    // The connection is cut only once the user has seen the token.
    let seen = std::sync::Arc::new(tokio::sync::Notify::new());
    let server =
        FakeModel::start(vec![Reply::sse(&[&text]).cut_when(seen.clone()), Reply::json(200, ok_body("second"))]).await;
    let provider = Retrying::new(provider_for(config(ProviderKind::OpenRouter, &server.url, true)), quick());
    let mut deltas = Vec::new();
    let mut sink = |delta| {
        deltas.push(delta);
        seen.notify_one();
    };
    let err = provider.chat(&request("m"), &mut sink).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Network);
    assert_eq!(deltas.len(), 1, "the user saw a token, so the call must not silently restart");
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn fallback_model_answers_when_the_primary_is_out_of_quota_or_down() {
    let primary = FakeModel::start(vec![Reply::json(
        429,
        json!({"error": {"message": "Rate limit", "code": "rate_limit_exceeded"}}),
    )])
    .await;
    let fallback = FakeModel::start(vec![Reply::json(200, ok_body("from fallback"))]).await;
    let provider = WithFallback::new(
        provider_for(config(ProviderKind::OpenRouter, &primary.url, false)),
        provider_for(config(ProviderKind::Ollama, &fallback.url, false)),
        "llama3.2",
    );
    let reply = provider.chat(&request("anthropic/claude-haiku-4.5"), &mut ()).await.unwrap();
    assert_eq!(reply.text, "from fallback");
    assert_eq!(fallback.received()[0].body["model"], "llama3.2");
    assert_eq!(fallback.received()[0].path, "/v1/chat/completions");
}

#[tokio::test]
async fn fallback_is_not_used_for_auth_or_billing() {
    for (status, body, class) in [
        (401, json!({"error": {"message": "bad key"}}), ErrorClass::Auth),
        (402, json!({"error": {"code": 402, "message": "no credits"}}), ErrorClass::Billing),
    ] {
        let primary = FakeModel::start(vec![Reply::json(status, body)]).await;
        let fallback = FakeModel::start(vec![Reply::json(200, ok_body("x"))]).await;
        let provider = WithFallback::new(
            provider_for(config(ProviderKind::OpenRouter, &primary.url, false)),
            provider_for(config(ProviderKind::OpenAi, &fallback.url, false)),
            "gpt-4o-mini",
        );
        assert_eq!(provider.chat(&request("m"), &mut ()).await.unwrap_err().class(), class);
        assert!(fallback.received().is_empty());
    }
}
