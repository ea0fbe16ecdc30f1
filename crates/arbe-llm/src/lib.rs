#![doc = include_str!("../README.md")]

mod anthropic;
mod cassette;
mod classify;
mod error;
mod http;
mod keys;
mod model;
mod openai;
mod provider;
mod retry;
mod scripted;
mod types;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use anthropic::AnthropicProvider;
pub use cassette::{Cassette, CassetteMode};
pub use classify::{classify_provider_error, classify_transport_error, retry_after};
pub use error::{LlmError, ProviderFailure, Result};
pub use keys::{KeySource, lookup_key};
pub use model::{ProviderKind, ResolvedModel, resolve_model};
pub use openai::OpenAiProvider;
pub use provider::{ChatProvider, Collect, DeltaSink, ProviderConfig, provider_for};
pub use retry::{RetryPolicy, Retrying, WithFallback};
pub use scripted::FnProvider;
pub use types::{ChatRequest, ChatResponse, Delta, Message, StopReason, ToolCall, ToolSpec, Usage};
