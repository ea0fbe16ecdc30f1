//! The README's example (examples/one_turn.rs) run against a fake OpenAI-compatible server.

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/one_turn.rs"]
mod one_turn;

use serde_json::json;

use arbe_llm::testkit::{FakeModel, Reply};

#[tokio::test]
async fn readme_example_runs_one_tool_calling_turn() {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
    };
    let stream = [
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_9", "function": {"name": "run_command", "arguments": "{\"command\":\"ls\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        "data: [DONE]\n\n".to_owned(),
    ];
    let chunks: Vec<&str> = stream.iter().map(String::as_str).collect();
    let server = FakeModel::start(vec![Reply::sse(&chunks)]).await;
    let reply = one_turn::one_turn(&server.url, None, "llama3.2").await.unwrap();
    assert_eq!(reply.tool_calls[0].parsed_arguments().unwrap()["command"], "ls");
    let sent = &server.received()[0];
    assert!(sent.headers.get("authorization").is_none(), "no key, no credentials");
    assert_eq!(sent.body["tools"][0]["function"]["name"], "run_command");
}
