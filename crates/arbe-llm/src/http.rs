//! What both wire formats share: posting a request, turning an error answer into a classified
//! failure, and reading a streamed body as SSE events.

use arbe_core::{SecretValue, sse};
use futures_util::StreamExt;

use crate::{LlmError, ProviderFailure, Result, classify_provider_error, classify_transport_error, retry_after};

/// Who is being called, for classifying failures and scrubbing the key out of messages.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) provider: &'a str,
    pub(crate) model: &'a str,
    pub(crate) key: Option<&'a SecretValue>,
}

impl Target<'_> {
    /// Removes the key from a provider's message, should the provider echo it.
    fn scrub(&self, mut failure: ProviderFailure) -> ProviderFailure {
        if let Some(key) = self.key
            && failure.message.contains(key.expose())
        {
            failure.message = failure.message.replace(key.expose(), "[redacted]");
        }
        failure
    }

    /// A classified failure from an error body. The key is scrubbed from the raw body before
    /// anything reads or cuts it, so a key echoed near the message cap cannot survive in part.
    pub(crate) fn fail(&self, status: Option<u16>, body: &str, wait: Option<std::time::Duration>) -> LlmError {
        let body = match self.key {
            Some(key) if body.contains(key.expose()) => {
                std::borrow::Cow::Owned(body.replace(key.expose(), "[redacted]"))
            }
            _ => std::borrow::Cow::Borrowed(body),
        };
        LlmError::Provider(self.scrub(classify_provider_error(self.provider, self.model, status, &body, wait)))
    }

    pub(crate) fn transport(&self, err: &reqwest::Error) -> LlmError {
        LlmError::Provider(classify_transport_error(self.provider, self.model, err))
    }

    /// A stream that ended before the reply was complete: retryable, as a network failure.
    pub(crate) fn truncated(&self) -> LlmError {
        LlmError::Provider(ProviderFailure {
            class: arbe_core::ErrorClass::Network,
            message: format!("{} ended the stream before the reply was complete", self.provider),
            provider: self.provider.to_owned(),
            model: self.model.to_owned(),
            status: None,
            retryable: true,
            retry_after: None,
        })
    }

    /// An answer that is not what the wire format promises.
    pub(crate) fn malformed(&self, what: &str) -> LlmError {
        LlmError::Provider(ProviderFailure {
            class: arbe_core::ErrorClass::Unknown,
            message: format!("{} sent a malformed {what}", self.provider),
            provider: self.provider.to_owned(),
            model: self.model.to_owned(),
            status: None,
            retryable: false,
            retry_after: None,
        })
    }
}

/// Sends `request`; a non-2xx answer becomes a classified failure.
pub(crate) async fn send(target: Target<'_>, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
    let response = request.send().await.map_err(|err| target.transport(&err))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let wait = retry_after(response.headers());
    let body = capped_text(response, ERROR_BODY_MAX).await;
    Err(target.fail(Some(status.as_u16()), &body, wait))
}

/// The most of an error body that is read: a provider (or anything claiming to be one) cannot
/// make the control plane buffer more.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// Up to `max` bytes of a body, as text.
async fn capped_text(response: reqwest::Response, max: usize) -> String {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk[..chunk.len().min(max - body.len())]);
        if body.len() >= max {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// Reads a whole JSON body.
pub(crate) async fn json(target: Target<'_>, response: reqwest::Response) -> Result<serde_json::Value> {
    let bytes = response.bytes().await.map_err(|err| target.transport(&err))?;
    serde_json::from_slice(&bytes).map_err(|_| target.malformed("response body"))
}

/// A streamed body, event by event.
pub(crate) struct Events {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: sse::Parser,
    ready: std::collections::VecDeque<sse::Event>,
}

impl Events {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self { body: response.bytes_stream().boxed(), parser: sse::Parser::default(), ready: Default::default() }
    }

    /// The next event; `None` at the end of the body.
    pub(crate) async fn next(&mut self, target: Target<'_>) -> Result<Option<sse::Event>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            match self.body.next().await {
                Some(Ok(bytes)) => {
                    self.ready.extend(self.parser.push(&bytes).map_err(|_| target.malformed("event (too large)"))?)
                }
                Some(Err(err)) => return Err(target.transport(&err)),
                None => {
                    // A last event without its blank line still counts.
                    if self.parser.has_partial() {
                        self.ready
                            .extend(self.parser.push(b"\n\n").map_err(|_| target.malformed("event (too large)"))?);
                        if let Some(event) = self.ready.pop_front() {
                            return Ok(Some(event));
                        }
                    }
                    return Ok(None);
                }
            }
        }
    }
}
