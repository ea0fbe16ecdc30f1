#![doc = include_str!("../README.md")]

pub mod agent;
pub mod audit;
pub mod entry;
pub mod env_vars;
pub mod environment;
pub mod error;
pub mod house;
pub mod ids;
pub mod job;
pub mod names;
pub mod refs;
pub mod sandbox;
pub mod secret;
pub mod sse;
pub mod thread;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use agent::{Agent, ModelRef};
pub use audit::{AuditAction, AuditEvent};
pub use entry::{Entry, EntryBody, EntryKind, Ledger};
pub use environment::{Environment, EnvironmentSnapshot, SecretBinding};
pub use error::{Classify, ErrorClass, ErrorKind, InvalidInput};
pub use house::{
    Action, ApiKeyMeta, Forbidden, GitHubConnection, House, Member, QuotaExceeded, QuotaKind, Quotas, Role, User,
};
pub use ids::{
    AgentId, ApiKeyId, EntryId, EnvironmentId, HouseId, JobId, MemberId, SandboxId, SecretId, ThreadId, UserId,
};
pub use job::{DispatchJob, JobState};
pub use names::{EnvironmentName, Labels, Name, RepoRef, RuntimeName, SecretName};
pub use refs::{AgentRef, EnvironmentRef, SandboxRef};
pub use sandbox::{Resources, Sandbox, SandboxState};
pub use secret::{Audience, PrivateSecret, SecretMeta, SecretValue};
pub use thread::{ParentRef, Thread, ThreadStatus};
