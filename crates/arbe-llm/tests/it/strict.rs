//! Provider behaviour the strict fake provokes: parallel tool calls (interleaved OpenAI
//! fragments, several Anthropic `tool_use` blocks), tool results merged into one Anthropic user
//! turn, an error inside a 200 body, `retry-after` as an HTTP date, a key echoed anywhere in a
//! long message or a stream event, and a fallback that never takes over a reply that started.

use std::{sync::Arc, time::Duration};

use arbe_core::ErrorClass;
use arbe_llm::{
    ChatProvider, Collect, Message, ProviderKind, ToolCall, WithFallback, provider_for,
    testkit::{FakeModel, Reply},
};
use serde_json::json;

use crate::{KEY, config, request};

fn calls() -> Vec<(String, serde_json::Value)> {
    vec![
        ("run_command".into(), json!({"command": "ls -la /workspace"})),
        ("run_command".into(), json!({"command": "cat README.md | head -n 20"})),
        ("run_command".into(), json!({"command": "git status"})),
    ]
}

#[tokio::test]
async fn parallel_tool_calls_are_joined_by_their_index_in_both_formats() {
    for (kind, model, stream) in [
        (ProviderKind::OpenRouter, "anthropic/claude-haiku-4.5", true),
        (ProviderKind::OpenRouter, "anthropic/claude-haiku-4.5", false),
        (ProviderKind::Anthropic, "claude-haiku-4-5", true),
        (ProviderKind::Anthropic, "claude-haiku-4-5", false),
    ] {
        let server = FakeModel::start(vec![Reply::ParallelTools(calls())]).await.expect_key(KEY);
        let reply = provider_for(config(kind, &server.url, stream)).chat(&request(model), &mut ()).await.unwrap();
        let got: Vec<serde_json::Value> =
            reply.tool_calls.iter().map(|c| serde_json::from_str(&c.arguments).unwrap()).collect();
        let want: Vec<serde_json::Value> = calls().into_iter().map(|(_, args)| args).collect();
        assert_eq!(got, want, "{kind:?}, stream {stream}");
        let ids: std::collections::HashSet<_> = reply.tool_calls.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids.len(), 3, "three distinct ids");
    }
}

#[tokio::test]
async fn several_tool_results_go_back_to_anthropic_in_one_user_turn() {
    // The fake refuses a conversation whose tool_use blocks are not all answered at the start
    // of the next user message, as Anthropic does.
    let server = FakeModel::start(vec![Reply::text_answer("All three done.")]).await;
    let mut req = request("claude-haiku-4-5");
    let tool_calls: Vec<ToolCall> = calls()
        .into_iter()
        .enumerate()
        .map(|(i, (name, args))| ToolCall { id: format!("toolu_{i}"), name, arguments: args.to_string() })
        .collect();
    req.messages.push(Message::Assistant { text: String::new(), tool_calls: tool_calls.clone() });
    for call in &tool_calls {
        req.messages.push(Message::Tool { call_id: call.id.clone(), content: format!("output of {}", call.id) });
    }
    let reply = provider_for(config(ProviderKind::Anthropic, &server.url, true)).chat(&req, &mut ()).await.unwrap();
    assert_eq!(reply.text, "All three done.");
    let body = &server.received()[0].body;
    let last = body["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "user");
    assert_eq!(last["content"].as_array().unwrap().len(), 3, "{last}");
}

#[tokio::test]
async fn an_error_inside_a_200_body_is_classified() {
    let body = json!({"error": {"code": 402, "message": "Insufficient credits"}});
    let server = FakeModel::start(vec![Reply::json(200, body)]).await;
    let err = provider_for(config(ProviderKind::OpenRouter, &server.url, false))
        .chat(&request("anthropic/claude-haiku-4.5"), &mut ())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Billing, "{err}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_read() {
    let when = (chrono::Utc::now() + chrono::TimeDelta::seconds(30)).to_rfc2822().replace("+0000", "GMT");
    let limited = json!({"error": {"code": 429, "message": "Rate limit exceeded"}});
    let server = FakeModel::start(vec![Reply::json(429, limited).header("retry-after", &when)]).await;
    let err = provider_for(config(ProviderKind::OpenRouter, &server.url, false))
        .chat(&request("m"), &mut ())
        .await
        .unwrap_err();
    let failure = err.failure().unwrap();
    assert_eq!((failure.class, failure.retryable), (ErrorClass::Quota, true));
    // About 30 s from when the header was written (it has a second's precision).
    let wait = failure.retry_after.expect("the date was read");
    assert!((Duration::from_secs(25)..=Duration::from_secs(31)).contains(&wait), "{wait:?}");
}

#[tokio::test]
async fn a_key_echoed_anywhere_in_a_long_message_or_a_stream_event_never_survives() {
    // At the start, across the 300-character cap, and at its very end.
    for at in [0usize, 295, 299] {
        let message = format!("{}{KEY} was refused", "x".repeat(at));
        for (kind, body) in [
            (ProviderKind::OpenAi, json!({"error": {"message": message, "type": "invalid_request_error"}})),
            (
                ProviderKind::Anthropic,
                json!({"type": "error", "error": {"type": "authentication_error", "message": message}}),
            ),
        ] {
            let server = FakeModel::start(vec![Reply::json(401, body)]).await;
            let err = provider_for(config(kind, &server.url, true)).chat(&request("m"), &mut ()).await.unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(&KEY[..10]), "a prefix of the key survived at offset {at} ({kind:?}): {shown}");
        }
    }
    // Mid-stream, in an OpenAI-compatible error chunk and an Anthropic error event.
    let openai =
        format!("data: {}\n\n", json!({"error": {"code": 502, "message": format!("upstream rejected key {KEY}")}}));
    let anthropic = format!(
        "event: error\ndata: {}\n\n",
        json!({"type": "error", "error": {"type": "overloaded_error", "message": format!("key {KEY} overloaded")}})
    );
    for (kind, chunk) in [(ProviderKind::OpenRouter, openai), (ProviderKind::Anthropic, anthropic)] {
        let server = FakeModel::start(vec![Reply::sse(&[&chunk])]).await;
        let err = provider_for(config(kind, &server.url, true)).chat(&request("m"), &mut ()).await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(&KEY[..10]), "{kind:?}: {shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

#[tokio::test]
async fn a_reply_that_started_streaming_never_reaches_the_fallback() {
    let text =
        format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]}));
    let seen = Arc::new(tokio::sync::Notify::new());
    let primary = FakeModel::start(vec![Reply::sse(&[&text]).cut_when(seen.clone())]).await;
    let fallback = FakeModel::start(vec![Reply::text_answer("from the fallback")]).await;
    let provider = WithFallback::new(
        provider_for(config(ProviderKind::OpenRouter, &primary.url, true)),
        provider_for(config(ProviderKind::OpenAi, &fallback.url, true)),
        "gpt-4o-mini",
    );
    let mut deltas = Collect::default();
    let mut sink = |delta| {
        deltas.0.push(delta);
        seen.notify_one();
    };
    let err = provider.chat(&request("m"), &mut sink).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Network);
    assert_eq!(deltas.0.len(), 1);
    assert!(fallback.received().is_empty(), "the user saw the primary's token: no second answer");
}
