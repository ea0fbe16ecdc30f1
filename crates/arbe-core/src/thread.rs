//! Threads: conversations under a parent reference, optionally bound to an environment.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    agent::ModelRef,
    environment::EnvironmentSnapshot,
    error::InvalidInput,
    ids::{AgentId, EnvironmentId, HouseId, MemberId, ThreadId},
};

/// What a thread hangs under: a channel (by name) or another thread (by id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ParentRef {
    /// A channel name: 1 to 100 letters, digits, `-`, `_`, `.` or `#`.
    Channel(String),
    /// Another thread.
    Thread(ThreadId),
}

impl ParentRef {
    /// Parses a UUID as a thread, anything else as a channel name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        if let Ok(id) = ThreadId::parse(s) {
            return Ok(Self::Thread(id));
        }
        let ok = (1..=100).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'#'));
        if ok {
            Ok(Self::Channel(s.to_owned()))
        } else {
            Err(InvalidInput::new(
                "parent",
                "must be a thread id or a channel name of 1 to 100 letters, digits, '-', '_', '.' or '#'",
            ))
        }
    }
}

impl fmt::Display for ParentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Channel(name) => f.write_str(name),
            Self::Thread(id) => id.fmt(f),
        }
    }
}

impl Serialize for ParentRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// On the wire a parent is its text: a channel name or a thread id.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ParentRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A channel name or a thread id"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ParentRef {}

impl<'de> Deserialize<'de> for ParentRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A thread's dispatch status, as `signal.thread.status` entries report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ThreadStatus {
    /// Nothing dispatched yet, or the last dispatch finished long ago.
    Idle,
    /// A dispatch is waiting for a worker.
    Queued,
    /// A worker is running the agents.
    Running,
    /// The last dispatch finished well.
    Succeeded,
    /// The last dispatch failed; an `agent_failed` entry says why.
    Failed,
    /// The last dispatch was cancelled.
    Cancelled,
}

impl ThreadStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        Ok(match s {
            "idle" => Self::Idle,
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => {
                return Err(InvalidInput::new(
                    "status",
                    "must be idle, queued, running, succeeded, failed or cancelled",
                ));
            }
        })
    }

    /// Whether a dispatch ends here.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for ThreadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Thread {
    /// Its id.
    pub id: ThreadId,
    /// The house it belongs to.
    pub house_id: HouseId,
    /// What it hangs under.
    pub parent: ParentRef,
    /// Who created it.
    pub author_id: MemberId,
    /// Its environment, while that row exists (`ON DELETE SET NULL`).
    pub environment_id: Option<EnvironmentId>,
    /// The environment as it was when the thread was created; never rewritten.
    pub environment: Option<EnvironmentSnapshot>,
    /// Pins every agent of the thread to this model.
    pub model_override: Option<ModelRef>,
    /// The agents that reply; empty means the house's default agent.
    pub agent_ids: Vec<AgentId>,
    /// The current dispatch status.
    pub status: ThreadStatus,
    /// The sequence number of its last entry (0 when it has none).
    pub last_seq: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_ref_tells_threads_from_channels() {
        let id = ThreadId::new();
        assert_eq!(ParentRef::parse(&id.to_string()).unwrap(), ParentRef::Thread(id));
        assert_eq!(ParentRef::parse("#general").unwrap(), ParentRef::Channel("#general".into()));
        assert!(ParentRef::parse("a b").is_err());
        assert!(ParentRef::parse("").is_err());
    }

    #[test]
    fn terminal_statuses() {
        assert!(ThreadStatus::Failed.is_terminal());
        assert!(!ThreadStatus::Running.is_terminal());
        assert_eq!(ThreadStatus::parse("cancelled").unwrap(), ThreadStatus::Cancelled);
    }
}
