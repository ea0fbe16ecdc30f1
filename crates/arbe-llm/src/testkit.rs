//! A fake model server as strict as the real peers (`../shared/reference/llm-providers.md`), for
//! every crate's tests (feature `testkit`).
//!
//! It serves the OpenAI-compatible `POST /chat/completions` (and Ollama's `/v1/chat/completions`)
//! and Anthropic's `POST /v1/messages` on a loopback port. Each request is checked as the real
//! API checks it: method, path, headers, body shape, tool names, and the conversation rule both
//! providers enforce (every tool call answered by its result before anything else). A request
//! that breaks a rule gets the provider's 400 and is recorded; dropping the fake with recorded
//! violations fails the test. Each valid request takes the next scripted [`Reply`], encoded in the
//! format of the endpoint that was called, streamed when the request asked for a stream.

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::Response,
};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A final text answer.
    Text(String),
    /// Tool calls `(name, arguments)`, each call's fragments sent back to back.
    Tools(Vec<(String, Value)>),
    /// Tool calls that all carry this one id (as a buggy gateway might send).
    ToolsWithId(String, Vec<(String, Value)>),
    /// Parallel tool calls: OpenAI fragments interleaved across calls, several Anthropic
    /// `tool_use` blocks.
    ParallelTools(Vec<(String, Value)>),
    /// An HTTP error with this status and JSON body.
    Error(u16, Value),
    /// Exactly these bytes.
    Raw(Raw),
    /// Wait until the notify fires, then answer with the inner reply.
    Gated(Arc<Notify>, Box<Reply>),
}

/// A reply sent as is.
#[derive(Clone, Debug)]
pub struct Raw {
    /// The status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body, each chunk sent separately.
    pub chunks: Vec<String>,
    /// How the body ends.
    pub end: End,
}

/// How a raw body ends.
#[derive(Clone, Debug)]
pub enum End {
    /// Normally.
    Complete,
    /// The connection is cut after the chunks.
    Cut,
    /// The connection is cut once the notify fires (the test's sink saw what it needed).
    CutWhen(Arc<Notify>),
}

impl Reply {
    /// A final text answer.
    pub fn text_answer(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// Tool calls.
    pub fn tools<N: Into<String>>(calls: impl IntoIterator<Item = (N, Value)>) -> Self {
        Self::Tools(calls.into_iter().map(|(n, v)| (n.into(), v)).collect())
    }

    /// A JSON body with `status`.
    pub fn json(status: u16, body: Value) -> Self {
        Self::Raw(Raw {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![body.to_string()],
            end: End::Complete,
        })
    }

    /// A plain body with `status`.
    pub fn text(status: u16, body: &str) -> Self {
        Self::Raw(Raw { status, headers: vec![], chunks: vec![body.to_owned()], end: End::Complete })
    }

    /// An event-stream body; each chunk is sent separately.
    pub fn sse(chunks: &[&str]) -> Self {
        Self::Raw(Raw {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: chunks.iter().map(|c| (*c).to_owned()).collect(),
            end: End::Complete,
        })
    }

    /// Adds a header to a raw reply.
    pub fn header(self, name: &str, value: &str) -> Self {
        self.raw(|raw| raw.headers.push((name.to_owned(), value.to_owned())))
    }

    /// Cuts a raw reply's connection after its chunks.
    pub fn aborted(self) -> Self {
        self.raw(|raw| raw.end = End::Cut)
    }

    /// Cuts a raw reply's connection once `when` fires.
    pub fn cut_when(self, when: Arc<Notify>) -> Self {
        self.raw(|raw| raw.end = End::CutWhen(when))
    }

    fn raw(mut self, change: impl FnOnce(&mut Raw)) -> Self {
        match &mut self {
            Self::Raw(raw) => change(raw),
            other => panic!("only a raw reply takes headers or a cut, not {other:?}"),
        }
        self
    }
}

/// A request the fake received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The path.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Value,
}

impl Received {
    /// The credential it carried: the bearer token or the `x-api-key`.
    pub fn key(&self) -> Option<&str> {
        let header = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        header("authorization").and_then(|v| v.strip_prefix("Bearer ")).or_else(|| header("x-api-key"))
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    received: Vec<Received>,
    invalid: Vec<String>,
    expect_key: Option<String>,
    pace: Duration,
    calls: usize,
}

/// The fake model server; stopped when dropped.
pub struct FakeModel {
    /// Its base URL (`http://127.0.0.1:<port>`), to pass as a provider's base URL.
    pub url: String,
    script: Arc<Mutex<Script>>,
    _server: arbe_testkit::Loopback,
}

impl std::fmt::Debug for FakeModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeModel").field("url", &self.url).finish_non_exhaustive()
    }
}

impl FakeModel {
    /// A fake answering with `replies` in order (a 500 once they run out).
    pub async fn start(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            replies: replies.into(),
            pace: Duration::from_millis(1),
            ..Script::default()
        }));
        let app = Router::new().fallback(handle).with_state(script.clone());
        let server = arbe_testkit::serve(app).await;
        Self { url: server.url.clone(), script, _server: server }
    }

    /// Answers 401, as the provider does, to any request without exactly this key.
    pub fn expect_key(self, key: &str) -> Self {
        self.lock().expect_key = Some(key.to_owned());
        self
    }

    /// Waits this long before each streamed chunk (1 ms by default).
    pub fn pace(self, pace: Duration) -> Self {
        self.lock().pace = pace;
        self
    }

    /// Adds replies to the end of the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().replies.extend(replies);
    }

    /// Every valid request so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// The bodies of every valid request so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.lock().received.iter().map(|r| r.body.clone()).collect()
    }

    /// Why each refused request was refused.
    pub fn invalid(&self) -> Vec<String> {
        self.lock().invalid.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        let invalid = self.invalid();
        if !invalid.is_empty() && !std::thread::panicking() {
            panic!("the fake model refused requests a real provider would refuse: {invalid:?}");
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    OpenAi,
    Anthropic,
}

fn respond(status: u16, body: Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid response")
}

fn bad_request(format: Format, message: &str) -> Response {
    match format {
        Format::OpenAi => {
            respond(400, json!({"error": {"code": 400, "message": message, "type": "invalid_request_error"}}))
        }
        Format::Anthropic => {
            respond(400, json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}))
        }
    }
}

async fn handle(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let format = match uri.path() {
        "/chat/completions" | "/v1/chat/completions" => Format::OpenAi,
        "/v1/messages" => Format::Anthropic,
        path => {
            let problem = format!("no endpoint at {method} {path}");
            script.lock().unwrap_or_else(|e| e.into_inner()).invalid.push(problem.clone());
            return respond(404, json!({"error": {"message": problem}}));
        }
    };
    let checked = if method != Method::POST {
        Err(format!("{method} {} must be POST", uri.path()))
    } else {
        check(format, &headers, &body)
    };
    let parsed = match checked {
        Ok(parsed) => parsed,
        Err(problem) => {
            script.lock().unwrap_or_else(|e| e.into_inner()).invalid.push(problem.clone());
            return bad_request(format, &problem);
        }
    };
    let (reply, n, pace, stream) = {
        let mut s = script.lock().unwrap_or_else(|e| e.into_inner());
        let received = Received { path: uri.path().to_owned(), headers, body: parsed };
        if let Some(expected) = &s.expect_key
            && received.key() != Some(expected.as_str())
        {
            return match format {
                Format::OpenAi => respond(401, json!({"error": {"code": 401, "message": "No auth credentials found"}})),
                Format::Anthropic => respond(
                    401,
                    json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
                ),
            };
        }
        let stream = received.body["stream"].as_bool().unwrap_or(false);
        s.received.push(received);
        s.calls += 1;
        let reply = s
            .replies
            .pop_front()
            .unwrap_or_else(|| Reply::Error(500, json!({"error": {"message": "the fake model's script ran out"}})));
        (reply, s.calls, s.pace, stream)
    };
    let mut reply = reply;
    while let Reply::Gated(gate, inner) = reply {
        gate.notified().await;
        reply = *inner;
    }
    let raw = match reply {
        Reply::Raw(raw) => raw,
        Reply::Error(status, body) => return respond(status, body),
        reply => encode(format, &reply, n, stream),
    };
    send(raw, pace)
}

fn send(raw: Raw, pace: Duration) -> Response {
    let Raw { status, headers, chunks, end } = raw;
    let stream = futures_util::stream::unfold((chunks.into_iter(), false), move |(mut it, ended)| {
        let end = end.clone();
        async move {
            if ended {
                return None;
            }
            match it.next() {
                Some(chunk) => {
                    tokio::time::sleep(pace).await;
                    Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), (it, false)))
                }
                None => match end {
                    End::Complete => None,
                    End::Cut => Some((Err(std::io::Error::other("connection cut by the fake")), (it, true))),
                    End::CutWhen(when) => {
                        when.notified().await;
                        Some((Err(std::io::Error::other("connection cut by the fake")), (it, true)))
                    }
                },
            }
        }
    });
    let mut response = Response::builder().status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    for (name, value) in &headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response.body(Body::from_stream(stream)).expect("a valid response")
}

/// `^[a-zA-Z0-9_-]{1,64}$`, the tool-name rule both providers enforce.
fn tool_name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check(format: Format, headers: &HeaderMap, body: &Bytes) -> Result<Value, String> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(format!("content-type must be application/json, not {content_type:?}"));
    }
    let body: Value = serde_json::from_slice(body).map_err(|err| format!("the body is not JSON: {err}"))?;
    if !body.is_object() {
        return Err("the body must be a JSON object".into());
    }
    if body["model"].as_str().is_none_or(str::is_empty) {
        return Err("model must be a non-empty string".into());
    }
    if !(body["stream"].is_null() || body["stream"].is_boolean()) {
        return Err("stream must be a boolean".into());
    }
    match format {
        Format::OpenAi => check_openai(&body)?,
        Format::Anthropic => {
            if headers.get("anthropic-version").is_none() {
                return Err("the anthropic-version header is required".into());
            }
            check_anthropic(&body)?;
        }
    }
    Ok(body)
}

fn check_openai(body: &Value) -> Result<(), String> {
    if let Some(max) = body.get("max_tokens")
        && !max.is_null()
        && max.as_u64().is_none_or(|n| n == 0)
    {
        return Err("max_tokens must be a positive integer".into());
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        let name = tool["function"]["name"].as_str().unwrap_or_default();
        if tool["type"] != "function" || !tool_name_ok(name) || !tool["function"]["parameters"].is_object() {
            return Err(format!(
                "tool {name:?} must be a function with a name matching ^[a-zA-Z0-9_-]{{1,64}}$ and object parameters"
            ));
        }
    }
    let messages = body["messages"].as_array().filter(|m| !m.is_empty()).ok_or("messages must be a non-empty array")?;
    let mut pending: Vec<String> = Vec::new();
    for m in messages {
        let role = m["role"].as_str().unwrap_or_default();
        if role == "tool" {
            let id =
                m["tool_call_id"].as_str().filter(|id| !id.is_empty()).ok_or("a tool message needs tool_call_id")?;
            if !m["content"].is_string() {
                return Err(format!("tool message {id} needs string content"));
            }
            let at = pending.iter().position(|p| p == id).ok_or(format!("tool result {id} answers no open call"))?;
            pending.remove(at);
            continue;
        }
        if !pending.is_empty() {
            return Err(format!("a {role} message came while tool calls {pending:?} were unanswered"));
        }
        match role {
            "system" | "developer" | "user" => {
                if m["content"].is_null() {
                    return Err(format!("a {role} message needs content"));
                }
            }
            "assistant" => {
                let calls = m["tool_calls"].as_array().map(Vec::as_slice).unwrap_or_default();
                if m["content"].is_null() && calls.is_empty() {
                    return Err("an assistant message needs content or tool_calls".into());
                }
                let mut seen = HashSet::new();
                for call in calls {
                    let id = call["id"].as_str().filter(|id| !id.is_empty()).ok_or("a tool call needs an id")?;
                    let name = call["function"]["name"].as_str().unwrap_or_default();
                    if call["type"] != "function" || !tool_name_ok(name) || !call["function"]["arguments"].is_string() {
                        return Err(format!(
                            "tool call {id} must be a function with a valid name and string arguments"
                        ));
                    }
                    if !seen.insert(id) {
                        return Err(format!("tool call id {id} is used twice in one message"));
                    }
                    pending.push(id.to_owned());
                }
            }
            other => return Err(format!("unknown message role {other:?}")),
        }
    }
    if pending.is_empty() { Ok(()) } else { Err(format!("tool calls {pending:?} were never answered")) }
}

fn check_anthropic(body: &Value) -> Result<(), String> {
    if body["max_tokens"].as_u64().is_none_or(|n| n == 0) {
        return Err("max_tokens: field required (a positive integer)".into());
    }
    if !(body["system"].is_null() || body["system"].is_string() || body["system"].is_array()) {
        return Err("system must be a string or an array of blocks".into());
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        let name = tool["name"].as_str().unwrap_or_default();
        if !tool_name_ok(name) || !tool["input_schema"].is_object() {
            return Err(format!(
                "tool {name:?} needs a name matching ^[a-zA-Z0-9_-]{{1,64}}$ and an input_schema object"
            ));
        }
    }
    let messages = body["messages"].as_array().filter(|m| !m.is_empty()).ok_or("messages must be a non-empty array")?;
    if messages[0]["role"] != "user" {
        return Err("the first message must be the user's".into());
    }
    let mut ids = HashSet::new();
    let mut pending: Vec<String> = Vec::new();
    for m in messages {
        let role = m["role"].as_str().unwrap_or_default();
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(text) => vec![json!({"type": "text", "text": text})],
            Value::Array(blocks) if !blocks.is_empty() => blocks.clone(),
            _ => return Err(format!("a {role} message needs string content or a non-empty array of blocks")),
        };
        match role {
            "user" => {
                // The results of the previous turn's tool_use blocks come first.
                let results: Vec<&str> = blocks
                    .iter()
                    .take_while(|b| b["type"] == "tool_result")
                    .map(|b| b["tool_use_id"].as_str().unwrap_or_default())
                    .collect();
                for id in &pending {
                    if !results.contains(&id.as_str()) {
                        return Err(format!(
                            "tool_use {id} has no tool_result block at the start of the next user message"
                        ));
                    }
                }
                for id in &results {
                    if !pending.iter().any(|p| p == id) {
                        return Err(format!("tool_result {id} answers no tool_use of the previous message"));
                    }
                }
                if blocks.iter().skip(results.len()).any(|b| b["type"] == "tool_result") {
                    return Err("tool_result blocks must come first in a user message".into());
                }
                pending.clear();
            }
            "assistant" => {
                if !pending.is_empty() {
                    return Err(format!("an assistant message came while tool_use {pending:?} were unanswered"));
                }
                for block in &blocks {
                    match block["type"].as_str() {
                        Some("text") if block["text"].is_string() => {}
                        Some("tool_use") => {
                            let id = block["id"].as_str().filter(|id| !id.is_empty()).ok_or("tool_use needs an id")?;
                            let name = block["name"].as_str().unwrap_or_default();
                            if !tool_name_ok(name) || !block["input"].is_object() {
                                return Err(format!("tool_use {id} needs a valid name and an object input"));
                            }
                            if !ids.insert(id.to_owned()) {
                                return Err(format!("tool_use ids must be unique: {id} is used twice"));
                            }
                            pending.push(id.to_owned());
                        }
                        other => return Err(format!("an assistant message cannot hold a {other:?} block")),
                    }
                }
            }
            other => return Err(format!("messages: role must be user or assistant, not {other:?}")),
        }
    }
    if pending.is_empty() { Ok(()) } else { Err(format!("tool_use {pending:?} were never answered")) }
}

/// The tool calls of a reply, with their ids.
fn calls(reply: &Reply, n: usize) -> Vec<(String, String, String)> {
    match reply {
        Reply::Tools(calls) | Reply::ParallelTools(calls) => calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| (format!("call_{n}_{i}"), name.clone(), args.to_string()))
            .collect(),
        Reply::ToolsWithId(id, calls) => {
            calls.iter().map(|(name, args)| (id.clone(), name.clone(), args.to_string())).collect()
        }
        _ => Vec::new(),
    }
}

fn encode(format: Format, reply: &Reply, n: usize, stream: bool) -> Raw {
    let text = match reply {
        Reply::Text(text) => text.clone(),
        _ => String::new(),
    };
    let calls = calls(reply, n);
    let interleave = matches!(reply, Reply::ParallelTools(_));
    let (content_type, chunks) = match (format, stream) {
        (Format::OpenAi, true) => ("text/event-stream", openai_stream(&text, &calls, interleave)),
        (Format::OpenAi, false) => ("application/json", vec![openai_whole(&text, &calls).to_string()]),
        (Format::Anthropic, true) => ("text/event-stream", anthropic_stream(&text, &calls)),
        (Format::Anthropic, false) => ("application/json", vec![anthropic_whole(&text, &calls).to_string()]),
    };
    Raw { status: 200, headers: vec![("content-type".into(), content_type.into())], chunks, end: End::Complete }
}

fn split_half(s: &str) -> (&str, &str) {
    let mut at = s.len() / 2;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.split_at(at)
}

fn openai_chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

fn openai_stream(text: &str, calls: &[(String, String, String)], interleave: bool) -> Vec<String> {
    let mut out = vec![": keep-alive\n\n".to_owned()];
    if calls.is_empty() {
        let (a, b) = split_half(text);
        out.push(openai_chunk(json!({"role": "assistant", "content": a}), None));
        out.push(openai_chunk(json!({"content": b}), None));
        out.push(openai_chunk(json!({}), Some("stop")));
    } else {
        let first = |i: usize, (id, name, args): &(String, String, String)| {
            let (a, _) = split_half(args);
            openai_chunk(
                json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": a}}]}),
                None,
            )
        };
        let second = |i: usize, (_, _, args): &(String, String, String)| {
            let (_, b) = split_half(args);
            openai_chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}), None)
        };
        if interleave {
            // Every call's first fragment, then the second fragments in reverse order: a parser
            // that ignores `index` joins them wrongly.
            out.extend(calls.iter().enumerate().map(|(i, c)| first(i, c)));
            out.extend(calls.iter().enumerate().rev().map(|(i, c)| second(i, c)));
        } else {
            for (i, call) in calls.iter().enumerate() {
                out.push(first(i, call));
                out.push(second(i, call));
            }
        }
        out.push(openai_chunk(json!({}), Some("tool_calls")));
    }
    let usage = json!({"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 10}});
    out.push(format!("data: {usage}\n\n"));
    out.push("data: [DONE]\n\n".to_owned());
    out
}

fn openai_whole(text: &str, calls: &[(String, String, String)]) -> Value {
    let mut message = json!({"role": "assistant", "content": if calls.is_empty() { json!(text) } else { Value::Null }});
    if !calls.is_empty() {
        message["tool_calls"] = calls
            .iter()
            .map(
                |(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}),
            )
            .collect();
    }
    let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10}
    })
}

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn anthropic_stream(text: &str, calls: &[(String, String, String)]) -> Vec<String> {
    let mut out = vec![anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "fake", "stop_reason": null, "usage": {"input_tokens": 100, "output_tokens": 1}}}),
    )];
    let mut index = 0;
    if calls.is_empty() {
        let (a, b) = split_half(text);
        out.push(anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ));
        for part in [a, b] {
            out.push(anthropic_event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}}),
            ));
        }
        out.push(anthropic_event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
        index = 1;
    }
    out.push(anthropic_event("ping", json!({"type": "ping"})));
    for (id, name, args) in calls {
        out.push(anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ));
        let (a, b) = split_half(args);
        for part in [a, b] {
            out.push(anthropic_event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}}),
            ));
        }
        out.push(anthropic_event("content_block_stop", json!({"type": "content_block_stop", "index": index})));
        index += 1;
    }
    let stop = if calls.is_empty() { "end_turn" } else { "tool_use" };
    out.push(anthropic_event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 10}}),
    ));
    out.push(anthropic_event("message_stop", json!({"type": "message_stop"})));
    out
}

fn anthropic_whole(text: &str, calls: &[(String, String, String)]) -> Value {
    let mut content: Vec<Value> = Vec::new();
    if calls.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for (id, name, args) in calls {
        let input: Value = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
        content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    let stop = if calls.is_empty() { "end_turn" } else { "tool_use" };
    json!({
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "fake",
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 100, "output_tokens": 10}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conversation_rule_is_enforced_in_both_formats() {
        let ok = json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "a", "type": "function", "function": {"name": "run_command", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "done"}
        ]});
        assert_eq!(check_openai(&ok), Ok(()));
        let mut open = ok.clone();
        open["messages"].as_array_mut().unwrap().pop();
        assert!(check_openai(&open).unwrap_err().contains("never answered"));

        let ok = json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "run_command", "input": {}}, {"type": "tool_use", "id": "t2", "name": "run_command", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}, {"type": "tool_result", "tool_use_id": "t2", "content": "y"}]}
        ]});
        assert_eq!(check_anthropic(&ok), Ok(()));
        let mut missing = ok.clone();
        missing["messages"][2]["content"].as_array_mut().unwrap().pop();
        assert!(check_anthropic(&missing).unwrap_err().contains("t2"));
        let mut no_max = ok;
        no_max.as_object_mut().unwrap().remove("max_tokens");
        assert!(check_anthropic(&no_max).unwrap_err().contains("max_tokens"));
    }

    #[test]
    fn interleaved_fragments_alternate_between_calls() {
        let calls = vec![
            ("c0".to_owned(), "run_command".to_owned(), r#"{"command":"ls -la"}"#.to_owned()),
            ("c1".to_owned(), "run_command".to_owned(), r#"{"command":"pwd"}"#.to_owned()),
        ];
        let chunks = openai_stream("", &calls, true);
        let indexes: Vec<u64> = chunks
            .iter()
            .filter_map(|c| c.strip_prefix("data: "))
            .filter_map(|c| serde_json::from_str::<Value>(c.trim()).ok())
            .filter_map(|v| v["choices"][0]["delta"]["tool_calls"][0]["index"].as_u64())
            .collect();
        assert_eq!(indexes, [0, 1, 1, 0]);
    }
}
