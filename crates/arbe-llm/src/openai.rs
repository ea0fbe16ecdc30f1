//! OpenAI-compatible chat completions: OpenRouter (the default), OpenAI, Gemini's and Ollama's
//! OpenAI endpoints, and any compatible gateway.

use serde_json::{Value, json};

use crate::{
    ChatProvider, ChatRequest, ChatResponse, Delta, DeltaSink, Message, ProviderConfig, Result, StopReason, ToolCall,
    Usage,
    http::{self, Events, Target},
};

/// A provider speaking `POST {base}/chat/completions`.
#[derive(Debug)]
pub struct OpenAiProvider {
    config: ProviderConfig,
    client: reqwest::Client,
    endpoint: String,
}

impl OpenAiProvider {
    /// A provider for `config` (whose kind must use the OpenAI wire format).
    pub fn new(config: ProviderConfig) -> Self {
        Self { client: config.client(), endpoint: config.endpoint(), config }
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let messages: Vec<Value> = request.messages.iter().map(message).collect();
        let mut body = json!({
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "stream": self.config.stream,
        });
        if self.config.stream {
            body["stream_options"] = json!({ "include_usage": true });
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
                .collect();
            body["tools"] = tools.into();
        }
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        body
    }
}

fn message(m: &Message) -> Value {
    match m {
        Message::System { text } => json!({"role": "system", "content": text}),
        Message::User { text } => json!({"role": "user", "content": text}),
        Message::Assistant { text, tool_calls } => {
            let mut v =
                json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
            if !tool_calls.is_empty() {
                v["tool_calls"] = tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect::<Vec<_>>()
                    .into();
            }
            v
        }
        Message::Tool { call_id, content } => json!({"role": "tool", "tool_call_id": call_id, "content": content}),
    }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "stop" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    }
}

fn usage(v: &Value) -> Usage {
    Usage {
        input_tokens: v["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: v["completion_tokens"].as_u64().unwrap_or(0),
    }
}

#[async_trait::async_trait]
impl ChatProvider for OpenAiProvider {
    fn name(&self) -> &str {
        self.config.kind.name()
    }

    async fn chat(&self, request: &ChatRequest, sink: &mut dyn DeltaSink) -> Result<ChatResponse> {
        let target = Target { provider: self.name(), model: &request.model, key: self.config.api_key.as_ref() };
        let mut http = self.client.post(&self.endpoint).json(&self.body(request));
        if let Some(key) = &self.config.api_key {
            http = http.bearer_auth(key.expose());
        }
        if self.config.kind == crate::ProviderKind::OpenRouter {
            // App attribution; optional for the call itself.
            http = http.header("X-OpenRouter-Title", "arbe").header("X-Title", "arbe");
        }
        let response = http::send(target, http).await?;
        if self.config.stream { stream(target, response, sink).await } else { whole(target, response).await }
    }
}

/// The most tool calls one reply may carry (indices 0 to 127).
const MAX_TOOL_CALLS: usize = 128;

async fn whole(target: Target<'_>, response: reqwest::Response) -> Result<ChatResponse> {
    let body = http::json(target, response).await?;
    if !body["error"].is_null() {
        return Err(target.fail(None, &body.to_string(), None));
    }
    let choice = &body["choices"][0];
    if choice.is_null() {
        return Err(target.malformed("response without choices"));
    }
    let message = &choice["message"];
    let tool_calls = message["tool_calls"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| ToolCall {
            id: c["id"].as_str().unwrap_or_default().to_owned(),
            name: c["function"]["name"].as_str().unwrap_or_default().to_owned(),
            arguments: c["function"]["arguments"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    if choice["finish_reason"] == "error" {
        return Err(target.fail(None, &body.to_string(), None));
    }
    Ok(ChatResponse {
        text: message["content"].as_str().unwrap_or_default().to_owned(),
        tool_calls,
        stop: stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
        usage: usage(&body["usage"]),
    })
}

async fn stream(target: Target<'_>, response: reqwest::Response, sink: &mut dyn DeltaSink) -> Result<ChatResponse> {
    let mut events = Events::new(response);
    let mut text = String::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut finish: Option<String> = None;
    let mut usage_seen = Usage::default();
    while let Some(event) = events.next(target).await? {
        if event.data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(&event.data).map_err(|_| target.malformed("stream chunk"))?;
        if !chunk["error"].is_null() {
            return Err(target.fail(None, &event.data, None));
        }
        if chunk["usage"].is_object() {
            usage_seen = usage(&chunk["usage"]);
        }
        let Some(choice) = chunk["choices"].get(0) else { continue };
        let delta = &choice["delta"];
        if let Some(piece) = delta["content"].as_str().filter(|s| !s.is_empty()) {
            text.push_str(piece);
            sink.delta(Delta::Text { text: piece.to_owned() });
        }
        for call in delta["tool_calls"].as_array().map(Vec::as_slice).unwrap_or_default() {
            // The provider picks the index: bound it before sizing anything by it.
            let index = call["index"].as_u64().unwrap_or(calls.len() as u64);
            if index >= MAX_TOOL_CALLS as u64 {
                return Err(target.malformed("tool call (index out of range)"));
            }
            let index = index as usize;
            if index >= calls.len() {
                calls.resize_with(index + 1, || ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
            }
            let entry = &mut calls[index];
            if let Some(id) = call["id"].as_str() {
                entry.id = id.to_owned();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                entry.name.push_str(name);
            }
            if call["id"].is_string() {
                sink.delta(Delta::ToolCall { index, id: entry.id.clone(), name: entry.name.clone() });
            }
            if let Some(fragment) = call["function"]["arguments"].as_str().filter(|s| !s.is_empty()) {
                entry.arguments.push_str(fragment);
                sink.delta(Delta::ToolArguments { index, fragment: fragment.to_owned() });
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            if reason == "error" {
                return Err(target.fail(None, &event.data, None));
            }
            finish = Some(reason.to_owned());
        }
    }
    // No finish reason means the stream was cut short; `[DONE]` without one too.
    let Some(reason) = finish else { return Err(target.truncated()) };
    Ok(ChatResponse { text, tool_calls: calls, stop: stop_reason(&reason), usage: usage_seen })
}
