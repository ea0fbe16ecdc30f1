//! Anthropic Messages: `POST {base}/v1/messages` with `x-api-key` and `anthropic-version`.

use serde_json::{Value, json};

use crate::{
    ChatProvider, ChatRequest, ChatResponse, Delta, DeltaSink, Message, ProviderConfig, Result, StopReason, ToolCall,
    Usage,
    http::{self, Events, Target},
};

/// The API version every request names.
const VERSION: &str = "2023-06-01";

/// A provider speaking the Anthropic Messages API.
#[derive(Debug)]
pub struct AnthropicProvider {
    config: ProviderConfig,
    client: reqwest::Client,
    endpoint: String,
}

impl AnthropicProvider {
    /// A provider for `config`.
    pub fn new(config: ProviderConfig) -> Self {
        Self { client: config.client(), endpoint: config.endpoint(), config }
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter_map(|m| match m {
                Message::System { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let mut body = json!({
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": messages(&request.messages),
            "stream": self.config.stream,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
                .collect::<Vec<_>>()
                .into();
        }
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        body
    }
}

/// Messages as content blocks. Tool results go in a user message, and consecutive blocks of one
/// role merge, because the API wants user and assistant turns to alternate.
fn messages(messages: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in messages {
        let (role, blocks) = match m {
            Message::System { .. } => continue,
            Message::User { text } => ("user", vec![json!({"type": "text", "text": text})]),
            Message::Tool { call_id, content } => {
                ("user", vec![json!({"type": "tool_result", "tool_use_id": call_id, "content": content})])
            }
            Message::Assistant { text, tool_calls } => {
                let mut blocks = Vec::new();
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for call in tool_calls {
                    let input = call.parsed_arguments().map(Value::Object).unwrap_or_else(|_| json!({}));
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
                ("assistant", blocks)
            }
        };
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect()
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" | "stop_sequence" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "refusal" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    }
}

#[async_trait::async_trait]
impl ChatProvider for AnthropicProvider {
    fn name(&self) -> &str {
        "anthropic"
    }

    async fn chat(&self, request: &ChatRequest, sink: &mut dyn DeltaSink) -> Result<ChatResponse> {
        let target = Target { provider: self.name(), model: &request.model, key: self.config.api_key.as_ref() };
        let mut http = self.client.post(&self.endpoint).header("anthropic-version", VERSION).json(&self.body(request));
        if let Some(key) = &self.config.api_key {
            http = http.header("x-api-key", key.expose());
        }
        let response = http::send(target, http).await?;
        if self.config.stream { stream(target, response, sink).await } else { whole(target, response).await }
    }
}

async fn whole(target: Target<'_>, response: reqwest::Response) -> Result<ChatResponse> {
    let body = http::json(target, response).await?;
    if body["type"] == "error" {
        return Err(target.fail(None, &body.to_string(), None));
    }
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in body["content"].as_array().map(Vec::as_slice).unwrap_or_default() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                arguments: block["input"].to_string(),
            }),
            _ => {}
        }
    }
    let Some(reason) = body["stop_reason"].as_str() else {
        return Err(target.malformed("message without stop_reason"));
    };
    Ok(ChatResponse {
        text,
        tool_calls,
        stop: stop_reason(reason),
        usage: Usage {
            input_tokens: body["usage"]["input_tokens"].as_u64().unwrap_or(0),
            output_tokens: body["usage"]["output_tokens"].as_u64().unwrap_or(0),
        },
    })
}

async fn stream(target: Target<'_>, response: reqwest::Response, sink: &mut dyn DeltaSink) -> Result<ChatResponse> {
    let mut events = Events::new(response);
    let mut text = String::new();
    // Content blocks by their index; tool_use blocks become calls in order.
    let mut calls: Vec<(usize, ToolCall)> = Vec::new();
    let mut usage = Usage::default();
    let mut stop: Option<String> = None;
    let mut stopped = false;
    while let Some(event) = events.next(target).await? {
        let data: Value = serde_json::from_str(&event.data).map_err(|_| target.malformed("stream event"))?;
        let kind =
            if event.event.is_empty() { data["type"].as_str().unwrap_or_default() } else { event.event.as_str() };
        match kind {
            "ping" => {}
            "error" => return Err(target.fail(None, &event.data, None)),
            "message_start" => {
                usage.input_tokens = data["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0);
                usage.output_tokens = data["message"]["usage"]["output_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" => {
                let index = data["index"].as_u64().unwrap_or(0) as usize;
                let block = &data["content_block"];
                if block["type"] == "tool_use" {
                    let call = ToolCall {
                        id: block["id"].as_str().unwrap_or_default().to_owned(),
                        name: block["name"].as_str().unwrap_or_default().to_owned(),
                        arguments: String::new(),
                    };
                    sink.delta(Delta::ToolCall { index: calls.len(), id: call.id.clone(), name: call.name.clone() });
                    calls.push((index, call));
                } else if let Some(piece) = block["text"].as_str().filter(|s| !s.is_empty()) {
                    text.push_str(piece);
                    sink.delta(Delta::Text { text: piece.to_owned() });
                }
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap_or(0) as usize;
                let delta = &data["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        let piece = delta["text"].as_str().unwrap_or_default();
                        text.push_str(piece);
                        sink.delta(Delta::Text { text: piece.to_owned() });
                    }
                    Some("input_json_delta") => {
                        let fragment = delta["partial_json"].as_str().unwrap_or_default();
                        if let Some(position) = calls.iter().position(|(i, _)| *i == index) {
                            calls[position].1.arguments.push_str(fragment);
                            sink.delta(Delta::ToolArguments { index: position, fragment: fragment.to_owned() });
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    stop = Some(reason.to_owned());
                }
                if let Some(out) = data["usage"]["output_tokens"].as_u64() {
                    usage.output_tokens = out;
                }
                if let Some(input) = data["usage"]["input_tokens"].as_u64() {
                    usage.input_tokens = input;
                }
            }
            "message_stop" => {
                stopped = true;
                break;
            }
            _ => {}
        }
    }
    let (true, Some(reason)) = (stopped, stop) else { return Err(target.truncated()) };
    let tool_calls = calls
        .into_iter()
        .map(|(_, mut call)| {
            if call.arguments.is_empty() {
                call.arguments = "{}".to_owned();
            }
            call
        })
        .collect();
    Ok(ChatResponse { text, tool_calls, stop: stop_reason(&reason), usage })
}
