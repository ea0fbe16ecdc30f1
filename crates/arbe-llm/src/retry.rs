//! Retries for failures that can succeed later, and a fallback model for quota and network
//! failures. Both act only before any piece of the reply reached the sink: a reply that started
//! streaming cannot be taken back.

use std::time::Duration;

use arbe_core::ErrorClass;

use crate::{ChatProvider, ChatRequest, ChatResponse, Delta, DeltaSink, LlmError, Result};

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; it doubles each attempt.
    pub base_delay: Duration,
    /// The longest wait, also capping a provider's `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 3, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: the provider's `Retry-After` when given, else
    /// exponential backoff with up to 25% jitter.
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let backoff = self.base_delay.saturating_mul(1 << attempt.min(16)).min(self.max_delay);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        backoff + backoff.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }
}

/// Counts what passes to the sink, so a wrapper knows whether the reply started.
struct Watch<'a> {
    inner: &'a mut dyn DeltaSink,
    started: bool,
}

impl DeltaSink for Watch<'_> {
    fn delta(&mut self, delta: Delta) {
        self.started = true;
        self.inner.delta(delta);
    }
}

/// Wraps a provider with retries of retryable failures (network, rate limits), honouring
/// `Retry-After`, and only while nothing has streamed yet.
#[derive(Debug)]
pub struct Retrying<P> {
    inner: P,
    policy: RetryPolicy,
}

impl<P> Retrying<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }
}

#[async_trait::async_trait]
impl<P: ChatProvider> ChatProvider for Retrying<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn chat(&self, request: &ChatRequest, sink: &mut dyn DeltaSink) -> Result<ChatResponse> {
        let mut attempt = 0;
        loop {
            let mut watch = Watch { inner: &mut *sink, started: false };
            let res = self.inner.chat(request, &mut watch).await;
            let started = watch.started;
            match res {
                Err(LlmError::Provider(failure))
                    if failure.retryable && !started && attempt + 1 < self.policy.max_attempts =>
                {
                    let wait = self.policy.delay(attempt, failure.retry_after);
                    tracing::info!(
                        provider = %failure.provider, class = %failure.class, attempt = attempt + 1,
                        wait_ms = wait.as_millis() as u64, "retrying a model call"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                res => return res,
            }
        }
    }
}

/// Tries `primary`, and `fallback` with its own model when the primary fails with a quota or
/// network failure before anything streamed.
#[derive(Debug)]
pub struct WithFallback<P, F> {
    primary: P,
    fallback: F,
    fallback_model: String,
}

impl<P, F> WithFallback<P, F> {
    /// `fallback_model` is the wire model id the fallback provider expects.
    pub fn new(primary: P, fallback: F, fallback_model: impl Into<String>) -> Self {
        Self { primary, fallback, fallback_model: fallback_model.into() }
    }
}

#[async_trait::async_trait]
impl<P: ChatProvider, F: ChatProvider> ChatProvider for WithFallback<P, F> {
    fn name(&self) -> &str {
        self.primary.name()
    }

    async fn chat(&self, request: &ChatRequest, sink: &mut dyn DeltaSink) -> Result<ChatResponse> {
        let mut watch = Watch { inner: &mut *sink, started: false };
        let res = self.primary.chat(request, &mut watch).await;
        match res {
            Err(LlmError::Provider(failure))
                if !watch.started && matches!(failure.class, ErrorClass::Quota | ErrorClass::Network) =>
            {
                tracing::info!(
                    provider = %failure.provider, class = %failure.class, fallback = %self.fallback_model,
                    "primary model failed; trying the fallback"
                );
                let request = ChatRequest { model: self.fallback_model.clone(), ..request.clone() };
                self.fallback.chat(&request, sink).await
            }
            res => res,
        }
    }
}
