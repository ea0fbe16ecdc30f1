//! A scripted fake of an OpenAI-compatible chat-completions server (OpenRouter's wire format,
//! `../shared/reference/llm-providers.md`): each request takes the next scripted reply and is
//! answered as a real server streams it (SSE chunks, tool-call arguments split across chunks,
//! usage in the last chunk, `data: [DONE]`), or with an error status and body.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::post,
};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One scripted answer.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// A final text answer.
    Text(&'static str),
    /// Tool calls: (name, arguments as JSON).
    Tools(Vec<(&'static str, Value)>),
    /// Tool calls that all carry this same id (as a buggy provider or gateway might).
    ToolsWithId(&'static str, Vec<(&'static str, Value)>),
    /// An HTTP error with this status and JSON body.
    Error(u16, Value),
    /// Wait for `release` to be notified, then answer with the inner reply.
    Gated(Arc<Notify>, Box<Reply>),
}

#[derive(Default)]
pub(crate) struct Script {
    pub(crate) replies: VecDeque<Reply>,
    /// Every request body, in order.
    pub(crate) requests: Vec<Value>,
    /// Authorization headers seen (to check the key was the house's).
    pub(crate) auth: Vec<String>,
    /// Requests refused because the conversation broke the providers' rules.
    pub(crate) invalid: Vec<String>,
    calls: usize,
}

pub(crate) type Shared = Arc<Mutex<Script>>;

fn chunk(delta: Value, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

fn sse(reply: &Reply, n: usize) -> Vec<String> {
    let mut out = vec![": keep-alive\n\n".to_owned()];
    match reply {
        Reply::Text(text) => {
            let (a, b) = text.split_at(text.len() / 2);
            out.push(chunk(json!({"role": "assistant", "content": a}), None));
            out.push(chunk(json!({"content": b}), None));
            out.push(chunk(json!({}), Some("stop")));
        }
        Reply::Tools(calls) | Reply::ToolsWithId(_, calls) => {
            for (i, (name, args)) in calls.iter().enumerate() {
                let args = args.to_string();
                let (a, b) = args.split_at(args.len() / 2);
                let id = match reply {
                    Reply::ToolsWithId(id, _) => (*id).to_owned(),
                    _ => format!("call_{n}_{i}"),
                };
                out.push(chunk(
                    json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": a}}]}),
                    None,
                ));
                out.push(chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}), None));
            }
            out.push(chunk(json!({}), Some("tool_calls")));
        }
        Reply::Error(..) | Reply::Gated(..) => unreachable!(),
    }
    out.push(format!(
        "data: {}\n\n",
        json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 10}})
    ));
    out.push("data: [DONE]\n\n".to_owned());
    out
}

/// The rule OpenAI and Anthropic enforce: an assistant message's tool calls are each answered
/// by a tool message, before any other message.
fn check_conversation(body: &Value) -> Result<(), String> {
    let mut pending: Vec<String> = Vec::new();
    for m in body["messages"].as_array().ok_or("no messages")? {
        match m["role"].as_str() {
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                let at =
                    pending.iter().position(|p| p == id).ok_or(format!("tool result {id} answers no open call"))?;
                pending.remove(at);
            }
            role if !pending.is_empty() => return Err(format!("{role:?} message while calls {pending:?} are open")),
            Some("assistant") => {
                for call in m["tool_calls"].as_array().into_iter().flatten() {
                    pending.push(call["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            _ => {}
        }
    }
    if pending.is_empty() { Ok(()) } else { Err(format!("calls {pending:?} never answered")) }
}

async fn chat(State(script): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Err(problem) = check_conversation(&body) {
        script.lock().unwrap().invalid.push(problem.clone());
        let body = json!({"error": {"code": 400, "message": format!("invalid conversation: {problem}")}});
        return Response::builder()
            .status(400)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
    }
    let (mut reply, n) = {
        let mut s = script.lock().unwrap();
        s.requests.push(body);
        s.auth.push(headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned());
        s.calls += 1;
        let reply = s.replies.pop_front().unwrap_or(Reply::Error(500, json!({"error": {"message": "script ran out"}})));
        (reply, s.calls)
    };
    while let Reply::Gated(gate, inner) = reply {
        gate.notified().await;
        reply = *inner;
    }
    if let Reply::Error(status, body) = &reply {
        return Response::builder()
            .status(StatusCode::from_u16(*status).unwrap())
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
    }
    let chunks = sse(&reply, n);
    let stream = futures_util::stream::iter(chunks.into_iter().map(|c| Ok::<_, std::io::Error>(c.into_bytes()))).then(
        |c| async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            c
        },
    );
    Response::builder().status(200).header("content-type", "text/event-stream").body(Body::from_stream(stream)).unwrap()
}

use futures_util::StreamExt;

/// Starts the fake with `replies`; returns its base URL and the shared script.
pub(crate) async fn start(replies: Vec<Reply>) -> (String, Shared) {
    let script: Shared = Arc::new(Mutex::new(Script { replies: replies.into(), ..Default::default() }));
    let app = Router::new().route("/chat/completions", post(chat)).with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, script)
}
