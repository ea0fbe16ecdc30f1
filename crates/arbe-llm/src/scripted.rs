//! A provider that answers from a function of the request: for tests, demos and benchmarks that
//! need a model without a network. Its reply streams to the sink as one text piece, like a
//! very fast real model's.

use crate::{ChatProvider, ChatRequest, ChatResponse, Delta, DeltaSink, Result};

/// Answers each turn with `f(request)`.
pub struct FnProvider<F> {
    name: &'static str,
    f: F,
}

impl<F> std::fmt::Debug for FnProvider<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnProvider").field("name", &self.name).finish_non_exhaustive()
    }
}

impl<F> FnProvider<F>
where
    F: Fn(&ChatRequest) -> ChatResponse + Send + Sync,
{
    /// A provider called `name` (for messages) answering with `f`.
    pub fn new(name: &'static str, f: F) -> Self {
        Self { name, f }
    }
}

#[async_trait::async_trait]
impl<F> ChatProvider for FnProvider<F>
where
    F: Fn(&ChatRequest) -> ChatResponse + Send + Sync,
{
    fn name(&self) -> &str {
        self.name
    }

    async fn chat(&self, request: &ChatRequest, sink: &mut dyn DeltaSink) -> Result<ChatResponse> {
        let reply = (self.f)(request);
        if !reply.text.is_empty() {
            sink.delta(Delta::Text { text: reply.text.clone() });
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Collect, Message, StopReason, Usage};

    #[tokio::test]
    async fn answers_from_the_function_and_streams_the_text() {
        let provider = FnProvider::new("script", |req: &ChatRequest| ChatResponse {
            text: format!("{} messages", req.messages.len()),
            tool_calls: vec![],
            stop: StopReason::EndTurn,
            usage: Usage::default(),
        });
        let mut sink = Collect::default();
        let req = ChatRequest::new("m", vec![Message::User { text: "hi".into() }]);
        let reply = provider.chat(&req, &mut sink).await.unwrap();
        assert_eq!(reply.text, "1 messages");
        assert_eq!(sink.0, [Delta::Text { text: "1 messages".into() }]);
    }
}
