//! The provider trait: one tool-calling chat turn.

use std::{sync::Arc, time::Duration};

use arbe_core::SecretValue;

use crate::{AnthropicProvider, ChatRequest, ChatResponse, Delta, OpenAiProvider, ProviderKind, Result, model::Wire};

/// Receives a reply's pieces as they stream in.
pub trait DeltaSink: Send {
    /// One more piece.
    fn delta(&mut self, delta: Delta);
}

impl DeltaSink for () {
    fn delta(&mut self, _: Delta) {}
}

/// A sink that keeps every piece, in order.
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Delta>);

impl DeltaSink for Collect {
    fn delta(&mut self, delta: Delta) {
        self.0.push(delta);
    }
}

impl<F: FnMut(Delta) + Send> DeltaSink for F {
    fn delta(&mut self, delta: Delta) {
        self(delta)
    }
}

/// A model provider. Runs one turn: streams pieces to `sink` as they come and returns the
/// assembled reply.
///
/// Cancelling is dropping the future (for example losing a `tokio::select!`): the HTTP request
/// is aborted with it.
#[async_trait::async_trait]
pub trait ChatProvider: Send + Sync + std::fmt::Debug {
    /// The provider's name, for messages (`openrouter`).
    fn name(&self) -> &str;

    /// Runs one turn.
    async fn chat(&self, request: &ChatRequest, sink: &mut dyn DeltaSink) -> Result<ChatResponse>;
}

#[async_trait::async_trait]
impl<P: ChatProvider + ?Sized> ChatProvider for Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn chat(&self, request: &ChatRequest, sink: &mut dyn DeltaSink) -> Result<ChatResponse> {
        (**self).chat(request, sink).await
    }
}

#[async_trait::async_trait]
impl<P: ChatProvider + ?Sized> ChatProvider for Box<P> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn chat(&self, request: &ChatRequest, sink: &mut dyn DeltaSink) -> Result<ChatResponse> {
        (**self).chat(request, sink).await
    }
}

/// How to reach one provider. The binaries fill it from the house secret or the key lookup and
/// from the base-URL variables; the library reads nothing itself.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Which provider.
    pub kind: ProviderKind,
    /// Overrides the default base URL (`OPENROUTER_BASE_URL`, `OLLAMA_HOST`, …).
    pub base_url: Option<String>,
    /// The API key; `None` sends no credentials (Ollama, or a local gateway).
    pub api_key: Option<SecretValue>,
    /// Ask for a streamed reply (the default) or a whole one.
    pub stream: bool,
    /// Limit for the whole request, including a streamed body.
    pub timeout: Duration,
}

impl ProviderConfig {
    /// The defaults for `kind`: its default base URL, streaming, a 10-minute limit.
    pub fn new(kind: ProviderKind, api_key: Option<SecretValue>) -> Self {
        Self { kind, base_url: None, api_key, stream: true, timeout: Duration::from_secs(600) }
    }

    pub(crate) fn endpoint(&self) -> String {
        self.kind.endpoint(self.base_url.as_deref().unwrap_or(self.kind.default_base_url()))
    }

    pub(crate) fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("a reqwest client with rustls builds")
    }
}

/// The provider for `config`, speaking its wire format.
pub fn provider_for(config: ProviderConfig) -> Arc<dyn ChatProvider> {
    match config.kind.wire() {
        Wire::OpenAiChat => Arc::new(OpenAiProvider::new(config)),
        Wire::AnthropicMessages => Arc::new(AnthropicProvider::new(config)),
    }
}
