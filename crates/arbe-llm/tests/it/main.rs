//! arbe-llm against local fake servers speaking each wire format.

mod anthropic;
mod cassette;
mod example;
mod openai;
mod retry;
mod strict;

use arbe_core::SecretValue;
use arbe_llm::{ChatRequest, Message, ProviderConfig, ProviderKind, ToolSpec};

pub(crate) const KEY: &str = "sk-test-key-0123456789";

pub(crate) fn config(kind: ProviderKind, url: &str, stream: bool) -> ProviderConfig {
    ProviderConfig {
        base_url: Some(url.to_owned()),
        stream,
        ..ProviderConfig::new(kind, Some(SecretValue::new(KEY.into()).unwrap()))
    }
}

pub(crate) fn run_command_tool() -> ToolSpec {
    ToolSpec {
        name: "run_command".into(),
        description: "Run a shell command in the sandbox".into(),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"]
        }),
    }
}

pub(crate) fn request(model: &str) -> ChatRequest {
    let mut request = ChatRequest::new(
        model,
        vec![
            Message::System { text: "You are a coding agent.".into() },
            Message::User { text: "List the files".into() },
        ],
    );
    request.tools.push(run_command_tool());
    request
}
