//! One tool-calling turn against any OpenAI-compatible server (OpenAI, OpenRouter, Ollama, a
//! gateway).
//!
//! Run with:
//! `OPENAI_BASE_URL=http://localhost:11434/v1 MODEL=llama3.2 cargo run -p arbe-llm --example one_turn`
//! (add `OPENAI_API_KEY=…` for a server that needs a key).

#![allow(clippy::print_stdout)]

use arbe_core::SecretValue;
use arbe_llm::{
    ChatProvider, ChatRequest, ChatResponse, Message, ProviderConfig, ProviderKind, ToolSpec, provider_for,
};

/// Asks the model to list files, offering it a `run_command` tool, and returns its reply.
pub async fn one_turn(base_url: &str, api_key: Option<&str>, model: &str) -> arbe_llm::Result<ChatResponse> {
    let key = api_key.map(|k| SecretValue::new(k.to_owned())).transpose()?;
    let provider = provider_for(ProviderConfig {
        base_url: Some(base_url.to_owned()),
        ..ProviderConfig::new(ProviderKind::OpenAi, key)
    });
    let mut request = ChatRequest::new(
        model,
        vec![
            Message::System { text: "You are a coding agent. Act through run_command.".into() },
            Message::User { text: "List the files in the working directory.".into() },
        ],
    );
    request.tools.push(ToolSpec {
        name: "run_command".into(),
        description: "Run a shell command in the sandbox".into(),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"]
        }),
    });
    // Print the reply as it streams in.
    let mut print = |delta: arbe_llm::Delta| {
        if let arbe_llm::Delta::Text { text } = delta {
            print!("{text}");
        }
    };
    provider.chat(&request, &mut print).await
}

#[tokio::main]
async fn main() {
    let base_url = std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "https://api.openai.com/v1".into());
    let model = std::env::var("MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
    let key = std::env::var("OPENAI_API_KEY").ok();
    match one_turn(&base_url, key.as_deref(), &model).await {
        Ok(reply) => {
            println!();
            for call in &reply.tool_calls {
                println!("tool call {} {}: {}", call.id, call.name, call.arguments);
            }
            println!(
                "stop: {:?}, tokens in/out: {}/{}",
                reply.stop, reply.usage.input_tokens, reply.usage.output_tokens
            );
        }
        Err(err) => {
            println!("error ({}): {err}", err.class());
            std::process::exit(1);
        }
    }
}
