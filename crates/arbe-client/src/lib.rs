#![doc = include_str!("../README.md")]

use std::time::Duration;

use arbe_api::{
    Bound, Cancelled, EnvVar, EnvironmentDiagnosis, HouseView, NewKey, Ping, Posted, Problem, SandboxDiagnosis, Unbound,
};
use arbe_core::{
    Agent, ApiKeyMeta, Entry, Environment, ErrorKind, HouseId, Sandbox, SecretMeta, SecretName, Thread, ThreadId, sse,
};
use futures_util::{Stream, StreamExt};
use reqwest::{Method, StatusCode, header};
use serde::{Serialize, de::DeserializeOwned};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused it: its problem document says why.
    #[error("{}", .problem.detail)]
    Api {
        /// The HTTP status.
        status: u16,
        /// The problem document.
        problem: Problem,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the arbe server at {url}: {reason}")]
    Unreachable {
        /// The server's base URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered something this client does not understand.
    #[error("unexpected answer from the arbe server: {0}")]
    Protocol(String),
    /// The client was given something it cannot use.
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    /// The error's kind: the problem's, or `Unavailable` when the server could not be reached.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Api { problem, .. } => problem.kind().unwrap_or(ErrorKind::Internal),
            Self::Unreachable { .. } => ErrorKind::Unavailable,
            Self::Protocol(_) => ErrorKind::Internal,
            Self::Invalid(_) => ErrorKind::InvalidInput,
        }
    }
}

/// A result of a call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A client of one server with one API key. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("key", &"[redacted]").finish()
    }
}

/// How long a call may take (a tail has no limit: it lasts as long as its dispatch).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Reconnections a tail attempts in a row before it gives up.
const RECONNECTS: u32 = 10;

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:8080`) acting with API key `key`.
    pub fn new(base: &str, key: &str) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(ClientError::Invalid("the server URL must start with http:// or https://".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Invalid(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { http, base, key: key.to_owned() })
    }

    fn unreachable(&self, err: &reqwest::Error) -> ClientError {
        // The innermost cause says what happened ("Connection refused"); reqwest's own message
        // only says a request failed. Neither holds the key.
        let mut cause: &dyn std::error::Error = err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let reason = if err.is_timeout() { "timed out".to_owned() } else { cause.to_string() };
        ClientError::Unreachable { url: self.base.clone(), reason }
    }

    /// The response of a request that was answered with success; a refusal becomes
    /// [`ClientError::Api`] with the server's problem document.
    async fn answered(&self, sent: reqwest::Result<reqwest::Response>) -> Result<reqwest::Response> {
        let response = sent.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        let problem = serde_json::from_slice::<Problem>(&bytes)
            .map_err(|_| ClientError::Protocol(format!("{status} without a problem document")))?;
        Err(ClientError::Api { status: status.as_u16(), problem })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Option<T>> {
        let mut request =
            self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key).timeout(CALL_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.answered(request.send().await).await?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// A call whose answer has a body.
    async fn answer<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        self.call(method, path, body).await?.ok_or_else(|| ClientError::Protocol("no body".into()))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.answer::<(), T>(Method::GET, path, None).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.call::<(), serde::de::IgnoredAny>(Method::DELETE, path, None).await.map(drop)
    }

    async fn send<B: Serialize, T: DeserializeOwned>(&self, method: Method, path: &str, body: &B) -> Result<T> {
        self.answer(method, path, Some(body)).await
    }

    /// The caller's houses and its membership in each.
    pub async fn houses(&self) -> Result<Vec<HouseView>> {
        self.get("/api/houses").await
    }

    /// Creates a house; the caller owns it.
    pub async fn create_house(&self, name: &str) -> Result<HouseView> {
        self.send(Method::POST, "/api/houses", &arbe_api::CreateHouse { name: name.to_owned() }).await
    }

    /// The caller's API keys (never a key itself).
    pub async fn keys(&self) -> Result<Vec<ApiKeyMeta>> {
        self.get("/api/keys").await
    }

    /// A new API key for the caller, shown this once.
    pub async fn create_key(&self, label: &str) -> Result<NewKey> {
        self.send(Method::POST, "/api/keys", &arbe_api::CreateKey { label: label.to_owned() }).await
    }

    /// Revokes one of the caller's keys.
    pub async fn revoke_key(&self, key: &str) -> Result<()> {
        self.delete(&format!("/api/keys/{}", segment(key)?)).await
    }

    /// The house's secrets (never a value).
    pub async fn secrets(&self, house: HouseId) -> Result<Vec<SecretMeta>> {
        self.get(&format!("/api/secrets?house_id={house}")).await
    }

    /// One secret's metadata.
    pub async fn secret(&self, house: HouseId, name: &str) -> Result<SecretMeta> {
        self.get(&format!("/api/secrets/{}?house_id={house}", secret_name(name)?)).await
    }

    /// Creates or rotates a secret.
    pub async fn set_secret(&self, house: HouseId, name: &str, body: &arbe_api::SetSecret) -> Result<SecretMeta> {
        self.send(Method::PUT, &format!("/api/secrets/{}?house_id={house}", secret_name(name)?), body).await
    }

    /// Deletes a secret.
    pub async fn delete_secret(&self, house: HouseId, name: &str) -> Result<()> {
        self.delete(&format!("/api/secrets/{}?house_id={house}", secret_name(name)?)).await
    }

    /// The house's environments.
    pub async fn environments(&self, house: HouseId) -> Result<Vec<Environment>> {
        self.get(&format!("/api/environments?house_id={house}")).await
    }

    /// One environment, by name (without regard to case) or id.
    pub async fn environment(&self, house: HouseId, env: &str) -> Result<Environment> {
        self.get(&format!("/api/environments/{}?house_id={house}", segment(env)?)).await
    }

    /// Creates an environment (seed 001).
    pub async fn create_environment(&self, house: HouseId, body: &arbe_api::CreateEnvironment) -> Result<Environment> {
        self.send(Method::POST, &format!("/api/environments?house_id={house}"), body).await
    }

    /// Deletes an environment (soft; owners only).
    pub async fn delete_environment(&self, house: HouseId, env: &str) -> Result<()> {
        self.delete(&format!("/api/environments/{}?house_id={house}", segment(env)?)).await
    }

    /// Binds a secret to an environment by name; the same flag again changes nothing.
    pub async fn bind_secret(&self, house: HouseId, env: &str, name: &str, required: bool) -> Result<Bound> {
        let path = format!("/api/environments/{}/secrets/{}?house_id={house}", segment(env)?, secret_name(name)?);
        self.send(Method::PUT, &path, &arbe_api::BindSecret { required }).await
    }

    /// Removes a binding.
    pub async fn unbind_secret(&self, house: HouseId, env: &str, name: &str) -> Result<Unbound> {
        let path = format!("/api/environments/{}/secrets/{}?house_id={house}", segment(env)?, secret_name(name)?);
        self.answer::<(), _>(Method::DELETE, &path, None).await
    }

    /// The dispatch preflight of an environment, for `model` (default: the house's default).
    pub async fn diagnose_environment(
        &self,
        house: HouseId,
        env: &str,
        model: Option<&str>,
    ) -> Result<EnvironmentDiagnosis> {
        let mut path = format!("/api/environments/{}/diagnose?house_id={house}", segment(env)?);
        if let Some(model) = model {
            path.push_str(&format!("&model={}", segment(model)?));
        }
        self.get(&path).await
    }

    /// The house's sandboxes, of one runtime or of all.
    pub async fn sandboxes(&self, house: HouseId, runtime: Option<&str>) -> Result<Vec<Sandbox>> {
        match runtime {
            Some(runtime) => self.get(&format!("/api/sandboxes?house_id={house}&runtime={}", segment(runtime)?)).await,
            None => self.get(&format!("/api/sandboxes?house_id={house}")).await,
        }
    }

    /// One sandbox, by id or name.
    pub async fn sandbox(&self, house: HouseId, sandbox: &str) -> Result<Sandbox> {
        self.get(&format!("/api/sandboxes/{}?house_id={house}", segment(sandbox)?)).await
    }

    /// Starts (or resumes) a sandbox.
    pub async fn start_sandbox(&self, house: HouseId, sandbox: &str) -> Result<Sandbox> {
        self.send(Method::POST, &format!("/api/sandboxes/{}/start?house_id={house}", segment(sandbox)?), &()).await
    }

    /// Stops a sandbox, keeping its files.
    pub async fn stop_sandbox(&self, house: HouseId, sandbox: &str) -> Result<Sandbox> {
        self.send(Method::POST, &format!("/api/sandboxes/{}/stop?house_id={house}", segment(sandbox)?), &()).await
    }

    /// Destroys a sandbox and its files.
    pub async fn destroy_sandbox(&self, house: HouseId, sandbox: &str) -> Result<Sandbox> {
        self.answer::<(), _>(Method::DELETE, &format!("/api/sandboxes/{}?house_id={house}", segment(sandbox)?), None)
            .await
    }

    /// Pings a sandbox: its state and, when started, a round trip.
    pub async fn ping_sandbox(&self, house: HouseId, sandbox: &str) -> Result<Ping> {
        self.get(&format!("/api/sandboxes/{}/ping?house_id={house}", segment(sandbox)?)).await
    }

    /// What the sandbox's runtime finds about it.
    pub async fn diagnose_sandbox(&self, house: HouseId, sandbox: &str) -> Result<SandboxDiagnosis> {
        self.get(&format!("/api/sandboxes/{}/diagnose?house_id={house}", segment(sandbox)?)).await
    }

    /// The variables commands in the sandbox get, by name.
    pub async fn sandbox_env(&self, house: HouseId, sandbox: &str) -> Result<Vec<EnvVar>> {
        self.get(&format!("/api/sandboxes/{}/env?house_id={house}", segment(sandbox)?)).await
    }

    /// The house's agents.
    pub async fn agents(&self, house: HouseId) -> Result<Vec<Agent>> {
        self.get(&format!("/api/agents?house_id={house}")).await
    }

    /// One agent, by name or id.
    pub async fn agent(&self, house: HouseId, agent: &str) -> Result<Agent> {
        self.get(&format!("/api/agents/{}?house_id={house}", segment(agent)?)).await
    }

    /// Creates an agent.
    pub async fn create_agent(&self, house: HouseId, body: &arbe_api::CreateAgent) -> Result<Agent> {
        self.send(Method::POST, &format!("/api/agents?house_id={house}"), body).await
    }

    /// Deletes an agent.
    pub async fn delete_agent(&self, house: HouseId, agent: &str) -> Result<()> {
        self.delete(&format!("/api/agents/{}?house_id={house}", segment(agent)?)).await
    }

    /// The house's threads, newest first.
    pub async fn threads(&self, house: HouseId, limit: u32) -> Result<Vec<Thread>> {
        self.get(&format!("/api/threads?house_id={house}&limit={limit}")).await
    }

    /// Creates a thread.
    pub async fn create_thread(&self, house: HouseId, body: &arbe_api::CreateThread) -> Result<Thread> {
        self.send(Method::POST, &format!("/api/threads?house_id={house}"), body).await
    }

    /// A thread.
    pub async fn thread(&self, house: HouseId, thread: ThreadId) -> Result<Thread> {
        self.get(&format!("/api/threads/{thread}?house_id={house}")).await
    }

    /// Cancels a thread's queued and running dispatches.
    pub async fn cancel_thread(&self, house: HouseId, thread: ThreadId) -> Result<Cancelled> {
        self.send(Method::POST, &format!("/api/threads/{thread}/cancel?house_id={house}"), &()).await
    }

    /// Posts a user message, which dispatches the thread's agents.
    pub async fn post_entry(&self, house: HouseId, thread: ThreadId, text: &str) -> Result<Posted> {
        let body = arbe_api::CreateEntry { text: text.to_owned() };
        self.send(Method::POST, &format!("/api/threads/{thread}/entries?house_id={house}"), &body).await
    }

    /// The thread's entries after sequence number `after`.
    pub async fn entries(&self, house: HouseId, thread: ThreadId, after: i64) -> Result<Vec<Entry>> {
        self.get(&format!("/api/threads/{thread}/entries?house_id={house}&after={after}")).await
    }

    /// The thread's entries after `after`, as they are written, until no dispatch of the thread
    /// is queued or running. A cut connection is resumed with `Last-Event-ID`: every entry comes
    /// once, in order.
    pub fn follow(
        &self,
        house: HouseId,
        thread: ThreadId,
        after: i64,
    ) -> impl Stream<Item = Result<Entry>> + Send + 'static {
        let state = Tail {
            client: self.clone(),
            house,
            thread,
            last: after,
            body: None,
            parser: sse::Parser::default(),
            ready: Default::default(),
            failures: 0,
        };
        futures_util::stream::unfold(Some(state), |state| async move {
            let mut tail = state?;
            match tail.next().await {
                Ok(Some(entry)) => Some((Ok(entry), Some(tail))),
                Ok(None) => None,
                Err(err) => Some((Err(err), None)),
            }
        })
    }
}

/// A name or id as one path segment: everything but unreserved characters percent-encoded, and
/// `.` and `..` refused (URL parsers resolve them, even encoded), so no input can reach another
/// route.
fn segment(text: &str) -> Result<String> {
    if matches!(text, "" | "." | "..") {
        return Err(ClientError::Invalid(format!("a name or id cannot be `{text}`: it must name one object")));
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(out)
}

/// A secret's name, checked by core's own rule before it goes into a path.
fn secret_name(name: &str) -> Result<SecretName> {
    SecretName::parse(name).map_err(|e| ClientError::Invalid(e.to_string()))
}

type Body = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// Where a tail stands.
struct Tail {
    client: Client,
    house: HouseId,
    thread: ThreadId,
    /// The last sequence number yielded.
    last: i64,
    body: Option<Body>,
    /// Cuts the body into events (bounded, as for model providers' streams).
    parser: sse::Parser,
    /// Events parsed and not yet yielded.
    ready: std::collections::VecDeque<sse::Event>,
    failures: u32,
}

impl Tail {
    async fn connect(&mut self) -> Result<()> {
        let url = format!("{}/api/threads/{}/entries/stream?house_id={}", self.client.base, self.thread, self.house);
        let request = self
            .client
            .http
            .get(url)
            .bearer_auth(&self.client.key)
            .header(header::ACCEPT, "text/event-stream")
            .header("last-event-id", self.last.to_string());
        let response = self.client.answered(request.send().await).await?;
        // A new stream starts with a new event: whatever was cut off is read again.
        self.parser = sse::Parser::default();
        self.ready.clear();
        self.body = Some(Box::pin(response.bytes_stream()));
        Ok(())
    }

    /// The next entry, `None` once the server ended the stream.
    async fn next(&mut self) -> Result<Option<Entry>> {
        loop {
            if let Some(entry) = self.take_event()? {
                self.failures = 0;
                if entry.seq > self.last {
                    self.last = entry.seq;
                    return Ok(Some(entry));
                }
                continue;
            }
            let Some(body) = self.body.as_mut() else {
                match self.connect().await {
                    Ok(()) => continue,
                    Err(err @ ClientError::Api { .. }) => return Err(err),
                    Err(err) => {
                        self.retry(err).await?;
                        continue;
                    }
                }
            };
            match body.next().await {
                Some(Ok(bytes)) => {
                    let events =
                        self.parser.push(&bytes).map_err(|_| ClientError::Protocol("an event too large".into()))?;
                    self.ready.extend(events);
                }
                // The server ended the stream: the dispatch is over.
                None => return Ok(None),
                // Cut: resume after the last entry yielded.
                Some(Err(err)) => {
                    self.body = None;
                    let err = self.client.unreachable(&err);
                    self.retry(err).await?;
                }
            }
        }
    }

    /// Waits before the next connection, or gives up after [`RECONNECTS`] failures in a row.
    async fn retry(&mut self, err: ClientError) -> Result<()> {
        self.failures += 1;
        if self.failures > RECONNECTS {
            return Err(err);
        }
        tokio::time::sleep(Duration::from_millis(100 * u64::from(self.failures.min(10)))).await;
        Ok(())
    }

    /// The entry of the next parsed event, if there is one (keep-alives carry no data).
    fn take_event(&mut self) -> Result<Option<Entry>> {
        while let Some(event) = self.ready.pop_front() {
            if !event.data.is_empty() {
                return serde_json::from_str(&event.data).map(Some).map_err(|e| ClientError::Protocol(e.to_string()));
            }
        }
        Ok(None)
    }
}
