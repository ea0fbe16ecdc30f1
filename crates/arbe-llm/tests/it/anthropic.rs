//! The Anthropic Messages wire format.

use arbe_core::ErrorClass;
use arbe_llm::{
    ChatProvider, Collect, Delta, Message, ProviderKind, RetryPolicy, Retrying, StopReason, ToolCall, provider_for,
};
use serde_json::json;

use arbe_llm::testkit::{FakeModel, Reply};

use crate::{KEY, config, request};

fn event(kind: &str, data: serde_json::Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

#[tokio::test]
async fn streamed_reply_with_pings_text_and_tool_input_fragments() {
    let stream = [
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 120, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me check."}}),
        ),
        event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "run_command", "input": {}}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"command\""}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ": \"ls\"}"}}),
        ),
        event("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 40}}),
        ),
        event("message_stop", json!({"type": "message_stop"})),
    ];
    let chunks: Vec<&str> = stream.iter().map(String::as_str).collect();
    let server = FakeModel::start(vec![Reply::sse(&chunks)]).await;
    let provider = provider_for(config(ProviderKind::Anthropic, &server.url, true));
    let mut req = request("claude-haiku-4-5");
    req.messages.push(Message::Assistant {
        text: "Earlier.".into(),
        tool_calls: vec![ToolCall {
            id: "toolu_00".into(),
            name: "run_command".into(),
            arguments: "{\"command\":\"pwd\"}".into(),
        }],
    });
    req.messages.push(Message::Tool { call_id: "toolu_00".into(), content: "/workspace".into() });
    let mut deltas = Collect::default();
    let reply = provider.chat(&req, &mut deltas).await.unwrap();

    assert_eq!(reply.text, "Let me check.");
    assert_eq!(reply.stop, StopReason::ToolUse);
    assert_eq!((reply.usage.input_tokens, reply.usage.output_tokens), (120, 40));
    assert_eq!(
        reply.tool_calls,
        vec![ToolCall { id: "toolu_01".into(), name: "run_command".into(), arguments: "{\"command\": \"ls\"}".into() }]
    );
    assert!(deltas.0.contains(&Delta::ToolCall { index: 0, id: "toolu_01".into(), name: "run_command".into() }));

    let sent = &server.received()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], KEY);
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert!(sent.headers.get("authorization").is_none());
    let body = &sent.body;
    assert_eq!(body["system"], "You are a coding agent.");
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["tools"][0]["input_schema"]["required"][0], "command");
    assert_eq!(body["messages"][0], json!({"role": "user", "content": [{"type": "text", "text": "List the files"}]}));
    assert_eq!(
        body["messages"][1]["content"][1],
        json!({"type": "tool_use", "id": "toolu_00", "name": "run_command", "input": {"command": "pwd"}})
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_00", "content": "/workspace"}]})
    );
}

#[tokio::test]
async fn whole_message_reply() {
    let body = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": "toolu_01A", "name": "run_command", "input": {"command": "ls"}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 120, "output_tokens": 40}});
    let server = FakeModel::start(vec![Reply::json(200, body)]).await;
    let reply = provider_for(config(ProviderKind::Anthropic, &server.url, false))
        .chat(&request("claude-haiku-4-5"), &mut ())
        .await
        .unwrap();
    assert_eq!(reply.text, "Let me check.");
    assert_eq!(reply.tool_calls[0].parsed_arguments().unwrap()["command"], "ls");
    assert_eq!(server.received()[0].body["stream"], false);
}

#[tokio::test]
async fn overloaded_error_event_mid_stream_is_network() {
    let stream = [
        event("message_start", json!({"type": "message_start", "message": {"usage": {"input_tokens": 1}}})),
        event("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
    ];
    let chunks: Vec<&str> = stream.iter().map(String::as_str).collect();
    let server = FakeModel::start(vec![Reply::sse(&chunks)]).await;
    let err = provider_for(config(ProviderKind::Anthropic, &server.url, true))
        .chat(&request("m"), &mut ())
        .await
        .unwrap_err();
    let failure = err.failure().unwrap();
    assert_eq!((failure.class, failure.message.as_str(), failure.status), (ErrorClass::Network, "Overloaded", None));
}

#[tokio::test]
async fn spend_limit_429_is_billing_and_not_retried() {
    let body = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "monthly spend limit reached",
        "details": {"error_code": "enforced_spend_limit_reached"}}});
    let server =
        FakeModel::start(vec![Reply::json(429, body.clone()).header("retry-after", "0"), Reply::json(429, body)]).await;
    let provider =
        Retrying::new(provider_for(config(ProviderKind::Anthropic, &server.url, true)), RetryPolicy::default());
    let err = provider.chat(&request("m"), &mut ()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Billing);
    assert_eq!(server.received().len(), 1, "a spend cap is never retried");
}

#[tokio::test]
async fn anthropic_error_statuses_are_classified() {
    for (status, kind, class) in [
        (401, "authentication_error", ErrorClass::Auth),
        (403, "permission_error", ErrorClass::Auth),
        (402, "billing_error", ErrorClass::Billing),
        (429, "rate_limit_error", ErrorClass::Quota),
        (500, "api_error", ErrorClass::Network),
        (504, "timeout_error", ErrorClass::Network),
        (529, "overloaded_error", ErrorClass::Network),
        (404, "not_found_error", ErrorClass::Unknown),
    ] {
        let body = json!({"type": "error", "error": {"type": kind, "message": "m"}, "request_id": "req_1"});
        let server = FakeModel::start(vec![Reply::json(status, body)]).await;
        let err = provider_for(config(ProviderKind::Anthropic, &server.url, true))
            .chat(&request("m"), &mut ())
            .await
            .unwrap_err();
        assert_eq!(err.class(), class, "{status} {kind}");
    }
}
