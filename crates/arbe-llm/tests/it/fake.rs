//! A scripted fake model server on a loopback port: each request takes the next scripted
//! reply, which may stream its body in paced chunks or cut the connection mid-body.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};

/// What the fake sends back for one request.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) chunks: Vec<String>,
    /// Cut the connection after the chunks instead of ending the body.
    pub(crate) abort: bool,
}

impl Reply {
    pub(crate) fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            chunks: vec![body.to_string()],
            abort: false,
        }
    }

    pub(crate) fn text(status: u16, body: &str) -> Self {
        Self { status, headers: vec![], chunks: vec![body.to_owned()], abort: false }
    }

    /// An SSE body; each chunk is sent separately with a short pause.
    pub(crate) fn sse(chunks: &[&str]) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            chunks: chunks.iter().map(|c| (*c).to_owned()).collect(),
            abort: false,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub(crate) fn aborted(mut self) -> Self {
        self.abort = true;
        self
    }
}

/// A request the fake received.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: serde_json::Value,
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    received: Vec<Received>,
}

pub(crate) struct FakeServer {
    pub(crate) url: String,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    pub(crate) async fn start(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Mutex::new(Script { replies: replies.into(), received: vec![] }));
        let app = Router::new().fallback(handle).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, script, task }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(script): State<Arc<Mutex<Script>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut script = script.lock().unwrap();
        script.received.push(Received {
            path: uri.path().to_owned(),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        });
        script.replies.pop_front().unwrap_or_else(|| Reply::text(500, "the fake server has no more scripted replies"))
    };
    let abort = reply.abort;
    let chunks = reply.chunks.clone();
    let stream = futures_util::stream::unfold((chunks.into_iter(), false), move |(mut it, ended)| async move {
        if ended {
            return None;
        }
        match it.next() {
            Some(chunk) => {
                tokio::time::sleep(Duration::from_millis(2)).await;
                Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), (it, false)))
            }
            None if abort => {
                // Let the chunks reach the client before the connection drops.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((Err(std::io::Error::other("connection cut by the fake")), (it, true)))
            }
            None => None,
        }
    });
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from_stream(stream)).unwrap()
}
