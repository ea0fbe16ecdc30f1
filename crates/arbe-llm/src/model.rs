//! Model references → provider, wire model id, and the key and base-URL variables it needs.

use arbe_core::{InvalidInput, ModelRef};

/// The providers arbe speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// OpenRouter (the default): OpenAI-compatible, provider-prefixed model slugs.
    OpenRouter,
    /// OpenAI chat completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini through its OpenAI-compatible endpoint.
    Gemini,
    /// A local Ollama server through its OpenAI-compatible endpoint.
    Ollama,
}

/// The two wire formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// `POST {base}/chat/completions`.
    OpenAiChat,
    /// `POST {base}/v1/messages`.
    AnthropicMessages,
}

impl ProviderKind {
    /// Every provider, in the order docs list them.
    pub const ALL: [ProviderKind; 5] = [Self::OpenRouter, Self::OpenAi, Self::Anthropic, Self::Gemini, Self::Ollama];

    /// The name used in model refs (`openrouter/…`).
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenRouter => "openrouter",
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Ollama => "ollama",
        }
    }

    /// The provider named `name`.
    pub fn parse(name: &str) -> Result<Self, InvalidInput> {
        Self::ALL.into_iter().find(|kind| kind.name() == name).ok_or_else(|| {
            InvalidInput::new("model", "provider must be one of openrouter, openai, anthropic, gemini, ollama")
        })
    }

    /// The variable holding its API key; Ollama needs none.
    pub fn key_var(self) -> Option<&'static str> {
        match self {
            Self::OpenRouter => Some("OPENROUTER_API_KEY"),
            Self::OpenAi => Some("OPENAI_API_KEY"),
            Self::Anthropic => Some("ANTHROPIC_API_KEY"),
            Self::Gemini => Some("GEMINI_API_KEY"),
            Self::Ollama => None,
        }
    }

    /// The conventional variable that overrides its base URL.
    pub fn base_url_var(self) -> &'static str {
        match self {
            Self::OpenRouter => "OPENROUTER_BASE_URL",
            Self::OpenAi => "OPENAI_BASE_URL",
            Self::Anthropic => "ANTHROPIC_BASE_URL",
            Self::Gemini => "GEMINI_BASE_URL",
            Self::Ollama => "OLLAMA_HOST",
        }
    }

    /// Its base URL when no override is given.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::OpenRouter => "https://openrouter.ai/api/v1",
            Self::OpenAi => "https://api.openai.com/v1",
            Self::Anthropic => "https://api.anthropic.com",
            Self::Gemini => "https://generativelanguage.googleapis.com/v1beta/openai",
            Self::Ollama => "http://localhost:11434",
        }
    }

    /// Its wire format.
    pub fn wire(self) -> Wire {
        match self {
            Self::Anthropic => Wire::AnthropicMessages,
            _ => Wire::OpenAiChat,
        }
    }

    /// The URL a request goes to, given a base URL (the override or the default).
    pub fn endpoint(self, base: &str) -> String {
        let base = base.trim_end_matches('/');
        match self {
            Self::Anthropic => format!("{base}/v1/messages"),
            // OLLAMA_HOST names the server; its OpenAI-compatible API lives under /v1.
            Self::Ollama if !base.ends_with("/v1") => format!("{base}/v1/chat/completions"),
            _ => format!("{base}/chat/completions"),
        }
    }
}

/// A model ref resolved to where and how to call it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The provider.
    pub provider: ProviderKind,
    /// The model id the provider expects (`anthropic/claude-haiku-4.5` on OpenRouter,
    /// `claude-haiku-4-5` on Anthropic).
    pub wire_model: String,
}

impl ResolvedModel {
    /// The key variable it needs, if any.
    pub fn key_var(&self) -> Option<&'static str> {
        self.provider.key_var()
    }
}

/// Resolves `provider/model…`.
pub fn resolve_model(model: &ModelRef) -> Result<ResolvedModel, InvalidInput> {
    Ok(ResolvedModel { provider: ProviderKind::parse(model.provider())?, wire_model: model.model().to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_refs_resolve_to_provider_wire_model_and_key() {
        let cases = [
            (
                "openrouter/anthropic/claude-haiku-4.5",
                ProviderKind::OpenRouter,
                "anthropic/claude-haiku-4.5",
                Some("OPENROUTER_API_KEY"),
            ),
            ("anthropic/claude-haiku-4-5", ProviderKind::Anthropic, "claude-haiku-4-5", Some("ANTHROPIC_API_KEY")),
            ("openai/gpt-4o-mini", ProviderKind::OpenAi, "gpt-4o-mini", Some("OPENAI_API_KEY")),
            ("gemini/gemini-2.5-flash", ProviderKind::Gemini, "gemini-2.5-flash", Some("GEMINI_API_KEY")),
            ("ollama/llama3.2", ProviderKind::Ollama, "llama3.2", None),
        ];
        for (input, provider, wire, key) in cases {
            let resolved = resolve_model(&ModelRef::parse(input).unwrap()).unwrap();
            assert_eq!((resolved.provider, resolved.wire_model.as_str(), resolved.key_var()), (provider, wire, key));
        }
        let err = resolve_model(&ModelRef::parse("mystery/x").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid model: provider must be one of openrouter, openai, anthropic, gemini, ollama"
        );
    }

    #[test]
    fn endpoints_follow_each_convention() {
        assert_eq!(
            ProviderKind::OpenRouter.endpoint("https://openrouter.ai/api/v1/"),
            "https://openrouter.ai/api/v1/chat/completions"
        );
        assert_eq!(
            ProviderKind::Anthropic.endpoint("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            ProviderKind::Ollama.endpoint("http://localhost:11434"),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(ProviderKind::Ollama.endpoint("http://gpu:11434/v1"), "http://gpu:11434/v1/chat/completions");
    }
}
