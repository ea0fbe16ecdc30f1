//! Where the agent loop gets a model provider from: the house's key, the worker's base URLs.

use std::{collections::HashMap, sync::Arc, time::Duration};

use arbe_core::SecretValue;
use arbe_llm::{ChatProvider, ProviderConfig, ProviderKind, ResolvedModel, RetryPolicy, Retrying, provider_for};

/// Builds the provider for one agent's model. The default, [`HttpModels`], speaks HTTP to each
/// provider; tests and demos may wrap it (a cassette) or replace it.
pub trait ModelFactory: Send + Sync + std::fmt::Debug {
    /// The provider to call `model` with, authenticated by `key` (`None` for providers that
    /// need none).
    fn provider(&self, model: &ResolvedModel, key: Option<SecretValue>) -> Arc<dyn ChatProvider>;
}

/// Real providers over HTTP, with retries for retryable failures before any token streamed.
#[derive(Clone, Debug, Default)]
pub struct HttpModels {
    /// Base-URL overrides (`OPENROUTER_BASE_URL`, `OLLAMA_HOST`, …), read by the binaries.
    pub base_urls: HashMap<ProviderKind, String>,
    /// Limit for one model call, including a streamed reply; `None` is the provider default.
    pub timeout: Option<Duration>,
    /// Retries of a failed call; `None` is the default policy.
    pub retry: Option<RetryPolicy>,
}

impl ModelFactory for HttpModels {
    fn provider(&self, model: &ResolvedModel, key: Option<SecretValue>) -> Arc<dyn ChatProvider> {
        let mut config = ProviderConfig::new(model.provider, key);
        config.base_url = self.base_urls.get(&model.provider).cloned();
        if let Some(timeout) = self.timeout {
            config.timeout = timeout;
        }
        let policy = self.retry.unwrap_or_default();
        Arc::new(Retrying::new(provider_for(config), policy))
    }
}

/// Every model answered by one provider: a scripted one ([`arbe_llm::FnProvider`]) in tests,
/// demos and benchmarks, or a cassette replaying recorded exchanges.
#[derive(Clone, Debug)]
pub struct OneProvider(pub Arc<dyn ChatProvider>);

impl ModelFactory for OneProvider {
    fn provider(&self, _: &ResolvedModel, _: Option<SecretValue>) -> Arc<dyn ChatProvider> {
        self.0.clone()
    }
}
