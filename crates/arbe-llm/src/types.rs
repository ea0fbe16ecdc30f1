//! The shapes of one tool-calling chat turn, independent of any wire format.

use serde::{Deserialize, Serialize};

/// One message of the conversation so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// Instructions for the model.
    System {
        /// The text.
        text: String,
    },
    /// What the person (or the dispatcher on their behalf) said.
    User {
        /// The text.
        text: String,
    },
    /// An earlier model turn, echoed back: its text and the tools it called.
    Assistant {
        /// The text, possibly empty.
        text: String,
        /// The tool calls it made.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call.
    Tool {
        /// The call it answers.
        call_id: String,
        /// What the tool returned.
        content: String,
    },
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Its name (`run_command`).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// A JSON Schema object for its arguments.
    pub parameters: serde_json::Value,
}

/// A tool call the model made. `arguments` is the JSON text exactly as the model produced it:
/// it may be invalid, so parse it with [`ToolCall::parsed_arguments`] before acting on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call, echoed back with its result.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

impl ToolCall {
    /// The arguments as a JSON object, or why they are not one.
    pub fn parsed_arguments(&self) -> Result<serde_json::Map<String, serde_json::Value>, arbe_core::InvalidInput> {
        let text = if self.arguments.trim().is_empty() { "{}" } else { &self.arguments };
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => Err(arbe_core::InvalidInput::new(
                format!("arguments of tool call {}", self.name),
                "must be a JSON object",
            )),
            Err(err) => Err(arbe_core::InvalidInput::new(
                format!("arguments of tool call {}", self.name),
                format!("must be valid JSON ({err})"),
            )),
        }
    }
}

/// One chat turn to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model as the provider names it (`anthropic/claude-haiku-4.5` on OpenRouter).
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// The most tokens the reply may have.
    pub max_tokens: u32,
    /// Sampling temperature, if not the provider's default.
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// A request for `model` with no tools and 4,096 output tokens.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self { model: model.into(), messages, tools: Vec::new(), max_tokens: 4096, temperature: None }
    }
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It wants tool results.
    ToolUse,
    /// It hit `max_tokens`.
    MaxTokens,
    /// A content filter or refusal stopped it.
    ContentFilter,
    /// Something else, as the provider named it.
    Other(String),
}

/// Tokens used by one turn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

/// The assembled result of one turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The reply's text (possibly empty when it only calls tools).
    pub text: String,
    /// The tools it called, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Tokens used.
    pub usage: Usage,
}

impl ChatResponse {
    /// The reply as a message to append to the conversation.
    pub fn to_message(&self) -> Message {
        Message::Assistant { text: self.text.clone(), tool_calls: self.tool_calls.clone() }
    }
}

/// A piece of a reply as it streams in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    /// More reply text.
    Text {
        /// The new text.
        text: String,
    },
    /// A tool call started.
    ToolCall {
        /// Its position among the turn's calls.
        index: usize,
        /// Its id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// More of a tool call's arguments.
    ToolArguments {
        /// Which call.
        index: usize,
        /// The next piece of the JSON text.
        fragment: String,
    },
}
