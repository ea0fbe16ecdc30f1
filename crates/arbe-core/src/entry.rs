//! Entries: the append-only record of a thread. Each has a per-thread sequence number with no
//! gaps, and a body whose `kind` names what happened.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    agent::ModelRef,
    error::{ErrorClass, InvalidInput},
    ids::{AgentId, EntryId, JobId, MemberId, ThreadId},
    names::SecretName,
    thread::ThreadStatus,
};

/// The kind of an entry, as stored in its own column so it can be filtered on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EntryKind {
    /// A person wrote to the thread.
    #[serde(rename = "user.message")]
    UserMessage,
    /// An agent replied.
    #[serde(rename = "agent.message")]
    AgentMessage,
    /// An agent called a tool.
    #[serde(rename = "tool.call")]
    ToolCall,
    /// A tool answered (possibly one chunk of a streamed answer).
    #[serde(rename = "tool.result")]
    ToolResult,
    /// The thread's dispatch status changed.
    #[serde(rename = "signal.thread.status")]
    Status,
    /// An agent failed; the cause is classified.
    #[serde(rename = "signal.thread.agent_failed")]
    AgentFailed,
    /// Something a user should know that did not stop the run.
    #[serde(rename = "signal.thread.warning")]
    Warning,
}

impl EntryKind {
    /// The wire name, e.g. `tool.call`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserMessage => "user.message",
            Self::AgentMessage => "agent.message",
            Self::ToolCall => "tool.call",
            Self::ToolResult => "tool.result",
            Self::Status => "signal.thread.status",
            Self::AgentFailed => "signal.thread.agent_failed",
            Self::Warning => "signal.thread.warning",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        Ok(match s {
            "user.message" => Self::UserMessage,
            "agent.message" => Self::AgentMessage,
            "tool.call" => Self::ToolCall,
            "tool.result" => Self::ToolResult,
            "signal.thread.status" => Self::Status,
            "signal.thread.agent_failed" => Self::AgentFailed,
            "signal.thread.warning" => Self::Warning,
            _ => return Err(InvalidInput::new("entry kind", "is not a known entry kind")),
        })
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finished dispatch cost; carried by the terminal status entry. Names, never values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ledger {
    /// Model calls made.
    pub model_turns: u32,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Commands run in the sandbox.
    pub commands_run: u32,
    /// Wall time of the dispatch, milliseconds.
    pub wall_ms: u64,
    /// The secrets resolved for the run, by name.
    pub secret_names: Vec<SecretName>,
}

/// The body of an entry, tagged by its wire kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind")]
pub enum EntryBody {
    /// A person wrote to the thread.
    #[serde(rename = "user.message")]
    UserMessage {
        /// The member who wrote it.
        author_id: MemberId,
        /// What they wrote.
        text: String,
    },
    /// An agent replied.
    #[serde(rename = "agent.message")]
    AgentMessage {
        /// The agent.
        agent_id: AgentId,
        /// The model it replied with.
        model: ModelRef,
        /// What it said.
        text: String,
    },
    /// An agent called a tool.
    #[serde(rename = "tool.call")]
    ToolCall {
        /// The agent.
        agent_id: AgentId,
        /// Pairs the call with its results.
        call_id: String,
        /// `run_command`, `delegate_task`, …
        tool: String,
        /// The arguments, as the model gave them (validated before the tool ran).
        arguments: serde_json::Value,
    },
    /// A tool answered; streamed output comes as several entries with `done: false`.
    #[serde(rename = "tool.result")]
    ToolResult {
        /// Pairs the result with its call.
        call_id: String,
        /// Output, with any secret value replaced by `[redacted:NAME]`.
        output: String,
        /// Whether this is the last piece.
        done: bool,
        /// The command's exit code, on the last piece.
        exit_code: Option<i32>,
        /// Whether the command ran out of time.
        timed_out: bool,
        /// Whether output was cut at the capture cap.
        truncated: bool,
    },
    /// The dispatch status changed.
    #[serde(rename = "signal.thread.status")]
    Status {
        /// The new status.
        status: ThreadStatus,
        /// The dispatch job it belongs to (absent on entries written outside a dispatch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<JobId>,
        /// On a terminal status, what the run cost.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ledger: Option<Ledger>,
    },
    /// An agent failed (seed 002's `pi_failed`).
    #[serde(rename = "signal.thread.agent_failed")]
    AgentFailed {
        /// The classified cause.
        #[serde(rename = "errorClass")]
        error_class: ErrorClass,
        /// A short message a user can act on.
        message: String,
        /// The model provider, when known.
        provider: Option<String>,
        /// The model, when known.
        model: Option<String>,
    },
    /// A non-fatal problem, e.g. a missing optional secret binding.
    #[serde(rename = "signal.thread.warning")]
    Warning {
        /// What happened.
        message: String,
    },
}

impl EntryBody {
    /// The body's kind.
    pub fn kind(&self) -> EntryKind {
        match self {
            Self::UserMessage { .. } => EntryKind::UserMessage,
            Self::AgentMessage { .. } => EntryKind::AgentMessage,
            Self::ToolCall { .. } => EntryKind::ToolCall,
            Self::ToolResult { .. } => EntryKind::ToolResult,
            Self::Status { .. } => EntryKind::Status,
            Self::AgentFailed { .. } => EntryKind::AgentFailed,
            Self::Warning { .. } => EntryKind::Warning,
        }
    }
}

/// One record in a thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    /// Its id.
    pub id: EntryId,
    /// Its thread.
    pub thread_id: ThreadId,
    /// Its position in the thread: 1, 2, 3, … with no gaps.
    pub seq: i64,
    /// What happened.
    #[serde(flatten)]
    pub body: EntryBody,
    /// When it was appended.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_failed_uses_seed_002_field_names() {
        let body = EntryBody::AgentFailed {
            error_class: ErrorClass::Billing,
            message: "out of credit".into(),
            provider: Some("openrouter".into()),
            model: Some("anthropic/claude-haiku-4.5".into()),
        };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["kind"], "signal.thread.agent_failed");
        assert_eq!(json["errorClass"], "billing");
        assert_eq!(body.kind(), EntryKind::AgentFailed);
        let back: EntryBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn entry_kind_names_round_trip() {
        for kind in [
            EntryKind::UserMessage,
            EntryKind::AgentMessage,
            EntryKind::ToolCall,
            EntryKind::ToolResult,
            EntryKind::Status,
            EntryKind::AgentFailed,
            EntryKind::Warning,
        ] {
            assert_eq!(EntryKind::parse(kind.as_str()).unwrap(), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
