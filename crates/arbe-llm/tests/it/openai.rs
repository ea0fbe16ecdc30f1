//! The OpenAI-compatible wire format (OpenRouter, OpenAI, Gemini, Ollama).

use arbe_core::ErrorClass;
use arbe_llm::{ChatProvider, Collect, Delta, LlmError, ProviderKind, StopReason, provider_for};
use serde_json::json;

use arbe_llm::testkit::{FakeModel, Reply};

use crate::{KEY, config, request};

fn chunk(delta: serde_json::Value, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

#[tokio::test]
async fn streamed_reply_assembles_text_and_tool_call_split_across_chunks() {
    let stream = [
        ": OPENROUTER PROCESSING\n\n".to_owned(),
        chunk(json!({"role": "assistant", "content": "Let me "}), None),
        chunk(json!({"content": "look."}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "run_command", "arguments": ""}}]}),
            None,
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"comm"}}]}), None),
        // An event split across two network chunks.
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "and\": \"ls"}}]}), None)[..20].to_owned(),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "and\": \"ls"}}]}), None)[20..].to_owned(),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": " -la\"}"}}]}), None),
        chunk(json!({}), Some("tool_calls")),
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 82, "completion_tokens": 17}})
        ),
        "data: [DONE]\n\n".to_owned(),
    ];
    let chunks: Vec<&str> = stream.iter().map(String::as_str).collect();
    let server = FakeModel::start(vec![Reply::sse(&chunks)]).await;
    let provider = provider_for(config(ProviderKind::OpenRouter, &server.url, true));
    let mut deltas = Collect::default();
    let reply = provider.chat(&request("anthropic/claude-haiku-4.5"), &mut deltas).await.unwrap();

    assert_eq!(reply.text, "Let me look.");
    assert_eq!(reply.stop, StopReason::ToolUse);
    assert_eq!((reply.usage.input_tokens, reply.usage.output_tokens), (82, 17));
    assert_eq!(reply.tool_calls.len(), 1);
    let call = &reply.tool_calls[0];
    assert_eq!((call.id.as_str(), call.name.as_str()), ("call_1", "run_command"));
    assert_eq!(call.parsed_arguments().unwrap()["command"], "ls -la");
    assert_eq!(deltas.0[0], Delta::Text { text: "Let me ".into() });
    assert_eq!(deltas.0[2], Delta::ToolCall { index: 0, id: "call_1".into(), name: "run_command".into() });
    let fragments: String = deltas
        .0
        .iter()
        .filter_map(|d| match d {
            Delta::ToolArguments { fragment, .. } => Some(fragment.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(fragments, "{\"command\": \"ls -la\"}");

    let sent = &server.received()[0];
    assert_eq!(sent.path, "/chat/completions");
    assert_eq!(sent.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(sent.body["model"], "anthropic/claude-haiku-4.5");
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
    assert_eq!(sent.body["messages"][0], json!({"role": "system", "content": "You are a coding agent."}));
    assert_eq!(sent.body["tools"][0]["type"], "function");
    assert_eq!(sent.body["tools"][0]["function"]["name"], "run_command");
    assert_eq!(sent.body["tools"][0]["function"]["parameters"]["required"][0], "command");
}

#[tokio::test]
async fn whole_reply_and_conversation_with_tool_results() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Done: 3 files."}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 5, "total_tokens": 125}
    });
    let server = FakeModel::start(vec![Reply::json(200, body)]).await;
    let provider = provider_for(config(ProviderKind::OpenAi, &server.url, false));
    let mut req = request("gpt-4o-mini");
    req.messages.push(arbe_llm::Message::Assistant {
        text: String::new(),
        tool_calls: vec![arbe_llm::ToolCall {
            id: "call_1".into(),
            name: "run_command".into(),
            arguments: "{\"command\":\"ls\"}".into(),
        }],
    });
    req.messages.push(arbe_llm::Message::Tool { call_id: "call_1".into(), content: "a\nb\nc".into() });
    let reply = provider.chat(&req, &mut ()).await.unwrap();
    assert_eq!(
        (reply.text.as_str(), reply.stop, reply.usage.input_tokens),
        ("Done: 3 files.", StopReason::EndTurn, 120)
    );
    let sent = &server.received()[0].body;
    assert_eq!(sent["stream"], false);
    assert_eq!(
        sent["messages"][2],
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "run_command", "arguments": "{\"command\":\"ls\"}"}}]})
    );
    assert_eq!(sent["messages"][3], json!({"role": "tool", "tool_call_id": "call_1", "content": "a\nb\nc"}));
}

#[tokio::test]
async fn malformed_tool_arguments_are_reported_not_run() {
    let body = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "run_command", "arguments": "{\"command\": \"ls"}}]}}]});
    let server = FakeModel::start(vec![Reply::json(200, body)]).await;
    let reply =
        provider_for(config(ProviderKind::OpenAi, &server.url, false)).chat(&request("m"), &mut ()).await.unwrap();
    let err = reply.tool_calls[0].parsed_arguments().unwrap_err().to_string();
    assert!(err.starts_with("invalid arguments of tool call run_command: must be valid JSON"), "{err}");
}

async fn stream_failure(chunks: &[&str], aborted: bool) -> arbe_llm::ProviderFailure {
    let reply = if aborted { Reply::sse(chunks).aborted() } else { Reply::sse(chunks) };
    let server = FakeModel::start(vec![reply]).await;
    let err = provider_for(config(ProviderKind::OpenRouter, &server.url, true))
        .chat(&request("m"), &mut ())
        .await
        .unwrap_err();
    match err {
        LlmError::Provider(failure) => failure,
        other => panic!("expected a provider failure, got {other}"),
    }
}

#[tokio::test]
async fn truncated_and_cut_streams_are_retryable_network_failures() {
    let text = chunk(json!({"content": "partial"}), None);
    let truncated = stream_failure(&[&text], false).await;
    assert_eq!((truncated.class, truncated.retryable), (ErrorClass::Network, true));
    assert_eq!(truncated.message, "openrouter ended the stream before the reply was complete");
    let cut = stream_failure(&[&text], true).await;
    assert_eq!((cut.class, cut.retryable), (ErrorClass::Network, true));
}

#[tokio::test]
async fn malformed_chunk_is_an_unknown_failure() {
    let failure = stream_failure(&["data: {\"choices\": [\n\n"], false).await;
    assert_eq!(
        (failure.class, failure.message.as_str()),
        (ErrorClass::Unknown, "openrouter sent a malformed stream chunk")
    );
}

#[tokio::test]
async fn openrouter_error_inside_a_200_stream_is_classified() {
    let text = chunk(json!({"content": "Hel"}), None);
    let error = format!(
        "data: {}\n\n",
        json!({"id": "c1", "error": {"code": 502, "message": "Upstream provider went away"}, "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]})
    );
    let failure = stream_failure(&[": OPENROUTER PROCESSING\n\n", &text, &error], false).await;
    assert_eq!(
        (failure.class, failure.status, failure.message.as_str()),
        (ErrorClass::Network, Some(502), "Upstream provider went away")
    );
    let billing = format!("data: {}\n\n", json!({"error": {"code": 402, "message": "Insufficient credits"}}));
    assert_eq!(stream_failure(&[&billing], false).await.class, ErrorClass::Billing);
}

#[tokio::test]
async fn every_error_status_of_the_reference_is_classified_through_http() {
    let cases = [
        (
            401,
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
            ErrorClass::Auth,
            false,
        ),
        (
            429,
            json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
            ErrorClass::Billing,
            false,
        ),
        (
            429,
            json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}}),
            ErrorClass::Quota,
            true,
        ),
        (402, json!({"error": {"code": 402, "message": "Insufficient credits"}}), ErrorClass::Billing, false),
        (
            403,
            json!({"error": {"code": 403, "message": "flagged", "metadata": {"reasons": ["x"]}}}),
            ErrorClass::Unknown,
            false,
        ),
        (408, json!({"error": {"code": 408, "message": "Timed out"}}), ErrorClass::Network, true),
        (
            500,
            json!({"error": {"message": "The server had an error while processing your request", "type": "server_error"}}),
            ErrorClass::Network,
            true,
        ),
        (502, json!({"error": {"code": 502, "message": "model down"}}), ErrorClass::Network, true),
        (503, json!({"error": {"code": 503, "message": "no provider"}}), ErrorClass::Network, true),
        (400, json!({"error": {"code": 400, "message": "bad params"}}), ErrorClass::Unknown, false),
    ];
    for (status, body, class, retryable) in cases {
        let server = FakeModel::start(vec![Reply::json(status, body.clone()).header("retry-after", "7")]).await;
        let err = provider_for(config(ProviderKind::OpenRouter, &server.url, true))
            .chat(&request("m"), &mut ())
            .await
            .unwrap_err();
        let failure = err.failure().unwrap_or_else(|| panic!("{status}: {err}"));
        assert_eq!((failure.class, failure.retryable, failure.status), (class, retryable, Some(status)), "{body}");
        assert_eq!(failure.retry_after.is_some(), retryable, "{status}");
        assert_eq!(err.class(), class);
    }
}

#[tokio::test]
async fn a_key_echoed_by_the_provider_never_reaches_the_error() {
    let body =
        json!({"error": {"message": format!("Incorrect API key provided: {KEY}"), "type": "invalid_request_error"}});
    let server = FakeModel::start(vec![Reply::json(401, body)]).await;
    let err =
        provider_for(config(ProviderKind::OpenAi, &server.url, true)).chat(&request("m"), &mut ()).await.unwrap_err();
    assert!(!err.to_string().contains(KEY), "{err}");
    assert!(!format!("{err:?}").contains(KEY));
    assert_eq!(err.failure().unwrap().message, "Incorrect API key provided: [redacted]");
}

#[tokio::test]
async fn unreachable_server_is_a_network_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err =
        provider_for(config(ProviderKind::Ollama, &url, true)).chat(&request("llama3.2"), &mut ()).await.unwrap_err();
    let failure = err.failure().unwrap();
    assert_eq!((failure.class, failure.retryable, failure.provider.as_str()), (ErrorClass::Network, true, "ollama"));
}

#[tokio::test]
async fn a_tool_call_index_out_of_range_is_refused_before_anything_is_sized_by_it() {
    // The index is the provider's choice: 10^9 (or u64::MAX) must not size a vector.
    for index in [128u64, 1_000_000_000, u64::MAX] {
        let call = json!({"tool_calls": [{"index": index, "id": "c", "type": "function",
                                           "function": {"name": "run_command", "arguments": "{}"}}]});
        let first = chunk(call, None);
        let last = chunk(json!({}), Some("tool_calls"));
        let failure = stream_failure(&[&first, &last, "data: [DONE]\n\n"], false).await;
        assert_eq!(failure.message, "openrouter sent a malformed tool call (index out of range)", "index {index}");
        assert!(!failure.retryable);
    }
    // 127 is the last index allowed.
    let call = json!({"tool_calls": [{"index": 127, "id": "c", "type": "function",
                                       "function": {"name": "run_command", "arguments": "{}"}}]});
    let (first, last) = (chunk(call, None), chunk(json!({}), Some("tool_calls")));
    let server = FakeModel::start(vec![Reply::sse(&[&first, &last, "data: [DONE]\n\n"])]).await;
    let reply = provider_for(config(ProviderKind::OpenRouter, &server.url, true)).chat(&request("m"), &mut ()).await;
    assert_eq!(reply.unwrap().tool_calls.iter().filter(|c| c.name == "run_command").count(), 1);
}
