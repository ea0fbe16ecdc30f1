//! Agents (bots) and the model references they reply with.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{
    error::InvalidInput,
    ids::{AgentId, HouseId},
    names::Name,
};

/// `provider/model…`, e.g. `openrouter/anthropic/claude-haiku-4.5` or `ollama/llama3.2`.
///
/// The provider is `[a-z][a-z0-9-]*`; the model is everything after the first `/`, non-empty,
/// with no whitespace or control characters, 200 characters at most in all.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct ModelRef(String);

impl ModelRef {
    /// The default every agent gets unless told otherwise (seed 000).
    pub const DEFAULT: &'static str = "openrouter/anthropic/claude-haiku-4.5";

    /// Parses a model reference.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let err =
            || InvalidInput::new("model", "must be <provider>/<model>, e.g. openrouter/anthropic/claude-haiku-4.5");
        if s.len() > 200 {
            return Err(InvalidInput::new("model", "must be at most 200 characters"));
        }
        let (provider, model) = s.split_once('/').ok_or_else(err)?;
        let pb = provider.as_bytes();
        let provider_ok = !pb.is_empty()
            && pb[0].is_ascii_lowercase()
            && pb.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        let model_ok = !model.is_empty() && !model.chars().any(|c| c.is_whitespace() || c.is_control());
        if provider_ok && model_ok { Ok(Self(s.to_owned())) } else { Err(err()) }
    }

    /// The provider part (`openrouter`).
    pub fn provider(&self) -> &str {
        self.0.split_once('/').expect("validated").0
    }

    /// The model part as the provider names it (`anthropic/claude-haiku-4.5`).
    pub fn model(&self) -> &str {
        self.0.split_once('/').expect("validated").1
    }

    /// The whole reference.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ModelRef {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ModelRef {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for ModelRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A bot that replies in threads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Agent {
    /// Its id.
    pub id: AgentId,
    /// The house it belongs to.
    pub house_id: HouseId,
    /// Its name, unique in the house.
    pub name: Name,
    /// The model it replies with, unless the thread pins another.
    pub model: ModelRef,
    /// Its system prompt.
    pub system_prompt: String,
    /// The house's default agent replies when a thread names none.
    pub is_default: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_refs_split_provider_and_model() {
        let m = ModelRef::default();
        assert_eq!((m.provider(), m.model()), ("openrouter", "anthropic/claude-haiku-4.5"));
        let m = ModelRef::parse("ollama/llama3.2").unwrap();
        assert_eq!((m.provider(), m.model()), ("ollama", "llama3.2"));
        for bad in ["", "gpt-4o", "/x", "openrouter/", "Open/x", "openrouter/a b"] {
            assert!(ModelRef::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ModelRef::parse("nope").unwrap_err().to_string(),
            "invalid model: must be <provider>/<model>, e.g. openrouter/anthropic/claude-haiku-4.5"
        );
    }
}
